"""Amounts at send, as the clerk sees them (issue 13; docs/sending.md, "Amounts at send"): a
bill changes in Clio between the draft and the send. An unedited draft is re-rendered and sent,
and its card says what changed, in money format; an edited one is refused with the API's
sentence (409 amounts_changed) on the screen, not a generic error. Each test has its own firm."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

# (client, Clio total, Clio balance after the draft)
BILLS = (
    ("Harbor Point Dental", 50_000, 40_000),
    ("Ruth Alvarez", 25_000, 15_000),
    ("Kestrel Logistics Ltd", 40_000, 30_000),
)


def money(cents: int) -> str:
    return f"${cents // 100:,}.{cents % 100:02d}"


def current(page: Page, bills: dict[str, dict]) -> dict:
    """The bill of the envelope on screen, by the client named in its heading."""
    heading = page.locator(".envelope-panel").get_by_role("heading", level=2)
    expect(heading).to_have_text(re.compile(r"^Envelope \d of 3: "))
    return bills[heading.inner_text().split(": ", 1)[1]]


def change_in_clio(firm, clio, bill: dict) -> None:
    """Someone changes the bill's balance in Clio after the draft; a sync brings it."""
    clio.change_bill(int(bill["id"]), balance_cents=bill["after"])
    firm.sync_now()
    items = firm.get("/invoices", page_size=50).json()["items"]
    stored = next(i for i in items if i["id"] == bill["id"])
    assert stored["payable_cents"] == bill["after"], stored


def test_the_card_says_what_the_send_changed_and_an_edited_draft_is_refused_in_words(
    staff, new_firm, mails
):
    firm, clio = new_firm()
    bills: dict[str, dict] = {}
    for n, (name, total, after) in enumerate(BILLS):
        address = f"{clio.account}-{n}@client.example"
        made = clio.create_bill(total_cents=total, client={"name": name, "email": address})
        bills[name] = {
            "id": str(made["id"]),
            "number": made["number"],
            "email": address,
            "before": total,
            "after": after,
        }
    firm.sync_now()
    page = staff.open(firm.firm_id)
    page.get_by_role("checkbox", name="Select every bill with a balance on this page").check()
    page.get_by_role("button", name="Review and send selected (3)").click()
    panel = page.locator(".envelope-panel")

    # 1. Not edited: Continue shows the drafted amount; Clio's balance drops before the send.
    first = current(page, bills)
    expect(panel.get_by_label("Message")).to_have_value(
        re.compile(re.escape(money(first["before"])))
    )
    panel.get_by_role("button", name="Continue").click()
    expect(panel.locator(".message-preview")).to_contain_text(money(first["before"]))
    change_in_clio(firm, clio, first)
    panel.get_by_role("button", name="Send envelope now").click()

    said = (
        f"Updated when sent to ask for what was payable then. {first['number']} was "
        f"{money(first['before'])} and is now {money(first['after'])}."
    )
    status = page.get_by_role("status").filter(has_text=f"Envelope sent to {first['email']}.")
    note = status.get_by_role("note", name="Amounts changed when sent")
    expect(note).to_have_text(f"Amounts changed when sent: {said}")
    assert "cents" not in note.inner_text()
    (mail,) = mails(first["email"])
    assert money(first["after"]) in mail["body"] and money(first["before"]) not in mail["body"]
    staff.screenshot(page, "review-send-note", full_page=False)

    # 2. Edited, then the amount changes: the API refuses (409 amounts_changed) and the screen
    # shows its sentence; Send is not offered again, the envelope stays a draft.
    second = current(page, bills)
    panel.get_by_label("Subject").fill("Your bill, in our own words")
    panel.get_by_role("button", name="Continue").click()
    change_in_clio(firm, clio, second)
    panel.get_by_role("button", name="Send envelope now").click()
    alert = panel.get_by_role("alert")
    expect(alert).to_have_text(
        "The envelope could not be sent. What is payable changed since this envelope was "
        f"drafted. {second['number']} was {money(second['before'])} and is now "
        f"{money(second['after'])}. It is not sent, because its subject or message was edited, "
        f"so BillBridge does not rewrite them: draft {second['number']} again to send what is "
        "payable now."
    )
    expect(panel.get_by_role("button", name="Send envelope now")).to_have_count(0)
    staff.screenshot(page, "review-amounts-changed", full_page=False)
    assert mails(second["email"]) == []
    panel.get_by_role("button", name="Skip to the next envelope").click()

    # 3. The third changes too, and goes with Send all (the workflow's own check re-renders
    # it); the edited second is refused there as well, its sentence on its own card.
    third = current(page, bills)
    assert third is not second
    change_in_clio(firm, clio, third)
    page.get_by_role("link", name="Send all envelopes").click()
    expect(page.get_by_role("heading", name="Send all envelopes", level=1)).to_be_visible()

    def card(bill: dict):
        return page.locator("section.card").filter(has_text=bill["email"])

    # The first, sent before: its note is kept (a reload or another browser shows it).
    expect(card(first).get_by_role("note", name="Amounts changed when sent")).to_have_text(
        f"Amounts changed when sent: {said}"
    )
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="1 of 2 envelopes sent; 1 failed.")).to_be_visible(
        timeout=60_000
    )
    expect(card(third).get_by_role("note", name="Amounts changed when sent")).to_have_text(
        "Amounts changed when sent: Updated when sent to ask for what was payable then. "
        f"{third['number']} was {money(third['before'])} and is now {money(third['after'])}."
    )
    expect(card(third).locator(".sent-subject")).to_be_visible()
    refused = card(second).get_by_role("note", name="Why it was not sent")
    expect(refused).to_have_text(
        re.compile(
            r"^Not sent: What is payable changed since this envelope was drafted\. "
            + re.escape(
                f"{second['number']} was {money(second['before'])} and is now "
                f"{money(second['after'])}."
            )
        )
    )
    expect(card(second).get_by_role("note", name="Amounts changed when sent")).to_have_count(0)
    staff.screenshot(page, "send-all-send-note")
    (third_mail,) = mails(third["email"])
    assert money(third["after"]) in third_mail["body"]
    assert money(third["before"]) not in third_mail["body"]
    assert mails(second["email"]) == []

    # On Invoices, the bill's "Sent emails" say what that send changed; the refused one was
    # never sent.
    page.get_by_role("link", name="Back to Invoices").click()
    row = page.locator(f"tr[data-bill-id='{first['id']}']")
    row.get_by_role("button", name=f"Sent emails of bill {first['id']}").click()
    sent = row.get_by_role("list", name=f"Emails that carried bill {first['id']}")
    expect(sent.get_by_role("listitem")).to_have_count(1)
    expect(sent.get_by_role("note", name="Amounts changed when sent")).to_have_text(
        f"Amounts changed when sent: {said}"
    )
    row = page.locator(f"tr[data-bill-id='{second['id']}']")
    expect(row.get_by_text("Not sent yet")).to_be_visible()
    staff.screenshot(page, "invoices-send-note")


def test_a_draft_whose_bill_was_voided_is_refused_in_words_and_not_offered_again(
    staff, new_firm, mails
):
    firm, clio = new_firm()
    address = f"{clio.account}@client.example"
    made = clio.create_bill(total_cents=31_000, client={"name": "Ruth Alvarez", "email": address})
    firm.sync_now()
    page = staff.open(firm.firm_id)
    page.get_by_role("checkbox", name="Select every bill with a balance on this page").check()
    page.get_by_role("button", name="Review and send selected (1)").click()
    panel = page.locator(".envelope-panel")
    panel.get_by_role("button", name="Continue").click()
    clio.change_bill(int(made["id"]), state="void")
    firm.sync_now()

    panel.get_by_role("button", name="Send envelope now").click()

    said = (
        f"{made['number']} cannot be sent: the firm voided it in Clio, so nothing is payable on it."
    )
    expect(panel.get_by_role("alert")).to_have_text(f"The envelope could not be sent. {said}")
    expect(panel.get_by_role("button", name="Send envelope now")).to_have_count(0)
    panel.get_by_role("button", name="See the summary").click()
    expect(panel.get_by_role("heading", level=2)).to_have_text("Nothing left to review")
    expect(panel.locator(".results-list li")).to_have_text(
        re.compile(re.escape(f"Not sent: {said}"))
    )
    expect(panel.get_by_text("still sending")).to_have_count(0)
    assert mails(address) == []
