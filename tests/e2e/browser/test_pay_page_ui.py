"""The client's pay page in a real browser (issue 13): at phone width with every control
labelled, past-due bills marked, the firm's contact, a part payment's summary (oldest due
first), errors in money format at the field; the confirmation after a card payment and after a
bank payment; a bank payment "processing" (never "Paid" or "$0.00 due") until it settles.
Writes docs/screenshots/pay.png and confirmation.png when UPDATE_DOCS_SCREENSHOTS=1."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import requests
from playwright.sync_api import Page, expect

PAY_URL = re.compile(r"https?://[^\s<>\"']+/pay/[A-Za-z0-9_-]+")
PHONE = {"width": 375, "height": 812}

# Every control a person can reach, with the accessible name the browser computes for it, and
# whether the page scrolls sideways.
AUDIT = """() => {
  const controls = [...document.querySelectorAll('a[href], button, input, select, textarea')]
    .filter((el) => !el.closest('[hidden]') && el.type !== 'hidden');
  const unnamed = controls.filter((el) => {
    const labelled = (el.labels && [...el.labels].some((l) => l.textContent.trim())) ||
      el.getAttribute('aria-label') || el.getAttribute('aria-labelledby');
    const text = (el.textContent || '').trim();
    return !(labelled || ((el.tagName === 'A' || el.tagName === 'BUTTON') && text));
  }).map((el) => el.outerHTML.slice(0, 120));
  return { unnamed, count: controls.length,
           sideways: document.documentElement.scrollWidth > window.innerWidth,
           landmarks: ['header', 'main', 'footer'].filter((t) => document.querySelector(t)) };
}"""


def send_bills(firm, clio, mails, specs: list[dict]) -> tuple[list[dict], str]:
    address = f"{clio.account}@client.example"
    settings = firm.get("/settings").json()
    settings.update(
        aggregate_payment_links=True,
        firm_name="Whitfield & Ortiz LLP",
        sender_name="Maria Ortiz",
        reply_to="billing@whitfield-ortiz.com",
    )
    assert firm.put("/settings", settings).status_code == 200
    made = [
        clio.create_bill(client={"name": "Dana Whitfield", "email": address}, **spec)
        for spec in specs
    ]
    ids = [str(m["id"]) for m in made]
    deadline = time.monotonic() + 90
    while True:
        firm.sync_now()
        listed = {i["id"]: i for i in firm.all_invoices("awaiting_payment", 100)}
        if set(ids) <= set(listed):
            break
        assert time.monotonic() < deadline, "the bills never synced"
    drafted = firm.post("/envelopes", {"bill_ids": ids})
    assert drafted.status_code == 201, drafted.text
    (envelope,) = drafted.json()["envelopes"]
    assert firm.post(f"/envelopes/{envelope['id']}/send").status_code == 202
    deadline = time.monotonic() + 60
    while not mails(address):
        assert time.monotonic() < deadline, "the envelope was never emailed"
        time.sleep(0.2)
    link = PAY_URL.search(mails(address)[0]["body"])
    assert link
    return [listed[i] for i in ids], link.group(0)


def phone(staff) -> Page:
    context = staff.browser.new_context(viewport=PHONE, locale="en-US", timezone_id="UTC")
    staff.contexts.append(context)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.bb_errors = errors  # type: ignore[attr-defined]
    staff.pages.append(page)
    return page


def days_from_today(days: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=days)).isoformat()


def test_pay_page_at_phone_width_labelled_summary_errors_and_card_confirmation(
    staff, new_firm, mails
):
    firm, clio = new_firm()
    bills, pay_url = send_bills(
        firm,
        clio,
        mails,
        [
            {"total_cents": 113_025, "due_at": days_from_today(-10)},  # past due
            {"total_cents": 40_000, "due_at": days_from_today(20)},
            {"total_cents": 25_050, "kind": "trust_request", "due_at": days_from_today(30)},
        ],
    )
    overdue, later, trust = bills
    page = phone(staff)
    page.goto(pay_url)

    expect(page.get_by_role("heading", name="Pay your bills", level=1)).to_be_visible()
    expect(page.get_by_role("banner")).to_contain_text("Whitfield & Ortiz LLP")
    contact = page.get_by_role("contentinfo")
    expect(contact).to_contain_text("Contact Maria Ortiz")
    expect(contact.get_by_role("link", name="billing@whitfield-ortiz.com")).to_have_attribute(
        "href", "mailto:billing@whitfield-ortiz.com"
    )
    card = page.locator(f"li.bill[data-bill-id='{overdue['id']}']")
    expect(card.get_by_text("Past due")).to_be_visible()
    expect(page.get_by_role("region", name="Your payments")).to_have_count(0)  # none yet
    expect(
        page.locator(f"li.bill[data-bill-id='{later['id']}']").get_by_text("Past due")
    ).to_have_count(0)
    expect(card).to_contain_text("$1,130.25")
    expect(
        card.get_by_role("link", name=f"View the PDF of Invoice {overdue['number']}")
    ).to_be_visible()
    expect(
        card.get_by_role("link", name=f"Download the PDF of Invoice {overdue['number']}")
    ).to_be_visible()

    # Pay all: a fixed total, and what it pays.
    summary = page.get_by_role("status").filter(has_text="You will pay")
    expect(summary).to_contain_text("You will pay $1,780.75:")
    expect(summary).to_contain_text("Trust and operating money are paid separately")
    expect(page.get_by_role("button", name="Pay $1,780.75 by card")).to_be_visible()

    # A part payment says which bills it pays, oldest due first, before paying.
    page.get_by_label("Part of it").check()
    amount = page.get_by_label("Amount to pay (USD)")
    amount.fill("1,200")
    expect(summary).to_contain_text("You will pay $1,200.00, oldest due bills first:")
    items = summary.get_by_role("listitem")
    expect(items).to_have_text(
        [
            f"Invoice {overdue['number']}: $1,130.25 (paid in full)",
            f"Invoice {later['number']}: $69.75 (part of $400.00)",
        ]
    )
    page.get_by_label("Bank account (ACH)").check()
    expect(page.get_by_text("A bank payment takes a few business days to clear.")).to_be_visible()
    expect(page.get_by_role("button", name="Pay $1,200.00 by bank transfer")).to_be_visible()

    # Too much: said in money format at the field, which takes focus.
    amount.fill("5000")
    page.get_by_role("button", name=re.compile("^Pay")).click()
    # The pay form's own alert (the installments form, when offered, has one of its own).
    alert = page.get_by_role("form", name="Make a payment").get_by_role("alert")
    expect(alert).to_have_text(
        "That is more than is due on the chosen bills: at most $1,780.75 can be paid."
    )
    expect(amount).to_be_focused()
    expect(amount).to_have_attribute("aria-invalid", "true")

    audit = page.evaluate(AUDIT)
    assert audit["unnamed"] == [] and audit["count"] >= 10, audit
    assert not audit["sideways"], "the page scrolls sideways at 375 px"
    assert audit["landmarks"] == ["header", "main", "footer"]
    page.get_by_role("radio", name=re.compile(r"^Card")).check()
    amount.fill("1,200.00")
    expect(alert).to_have_text("")
    page.evaluate("window.scrollTo(0, 0)")
    staff.screenshot(page, "pay", docs=True)

    # Pay by card on Stripe's page; back on our confirmation, not the same pay page.
    page.get_by_label(f"Pay Trust request {trust['number']}").uncheck()
    page.get_by_role("button", name="Pay $1,200.00 by card").click()
    expect(page).to_have_url(re.compile(r"/c/pay/cs_"))
    page.get_by_role("button", name="Pay by card").click()
    expect(
        page.get_by_role("heading", name="Thank you: your payment was received", level=1)
    ).to_be_visible()
    expect(page).to_have_url(re.compile(r"/pay/[^/]+/confirmation\?session_id=cs_"))
    facts = page.locator("dl.facts")
    expect(facts).to_contain_text("$1,200.00")
    expect(facts).to_contain_text("Card")
    expect(facts).to_contain_text("Whitfield & Ortiz LLP's operating account")
    expect(facts).to_contain_text(str(datetime.now(UTC).year))
    paid = page.get_by_role("region", name="Bills paid").get_by_role("listitem")
    expect(paid).to_have_text(
        [f"Invoice {overdue['number']}: $1,130.25", f"Invoice {later['number']}: $69.75"]
    )
    receipts = requests.get(pay_url, headers={"Accept": "application/json"}, timeout=30).json()
    (receipt,) = receipts["receipts"]
    expect(page.locator("#reference")).to_have_text(receipt["reference"])
    assert not page.evaluate(AUDIT)["sideways"]
    staff.screenshot(page, "confirmation", docs=True)

    page.get_by_role("link", name="Back to your bills").click()
    expect(page.locator(f"li.bill[data-bill-id='{overdue['id']}']")).to_contain_text("Paid")


def test_bank_payment_processing_until_it_settles(staff, new_firm, mails, stripe_sandbox):
    firm, clio = new_firm()
    (bill,), pay_url = send_bills(firm, clio, mails, [{"total_cents": 40_000}])
    page = phone(staff)
    page.goto(pay_url)
    page.get_by_label("Bank account (ACH)").check()
    page.get_by_role("button", name="Pay $400.00 by bank transfer").click()
    expect(page).to_have_url(re.compile(r"/c/pay/cs_"))
    session_id = page.url.split("/c/pay/")[1].split("?")[0]
    page.get_by_role("button", name="Pay by bank").click()

    expect(
        page.get_by_role("heading", name="Thank you: your bank payment is processing", level=1)
    ).to_be_visible()
    expect(page.get_by_role("status").first).to_contain_text("a few business days")
    expect(page.locator("dl.facts")).to_contain_text("Bank account (ACH)")

    page.get_by_role("link", name="Back to your bills").click()
    card = page.locator(f"li.bill[data-bill-id='{bill['id']}']")
    expect(card.locator(".badge")).to_have_text("Processing")
    expect(card).to_contain_text("Bank payment processing: $400.00")
    expect(card).not_to_contain_text("$0.00")
    expect(card.locator(".badge.paid")).to_have_count(0)
    expect(page.get_by_role("form")).to_have_count(0)  # nothing else to pay
    history = page.get_by_role("region", name="Your payments").get_by_role("listitem")
    expect(history).to_have_count(1)
    expect(history).to_contain_text("Bank account (ACH) payment of $400.00 on ")
    expect(history).to_contain_text("processing (bank payments take a few business days)")

    intent = next(
        e["data"]["object"]["payment_intent"]
        for e in stripe_sandbox.events()
        if e["data"]["object"].get("id") == session_id and e["data"]["object"].get("payment_intent")
    )
    stripe_sandbox.control(f"payment_intents/{intent}/settle")
    page.reload()
    expect(card.locator(".badge")).to_have_text("Paid")
    expect(card).to_contain_text("Nothing is due on this bill.")


def test_a_refusal_from_the_server_is_a_sentence_in_the_alert(staff, new_firm, mails):
    firm, clio = new_firm()
    (bill,), pay_url = send_bills(firm, clio, mails, [{"total_cents": 40_000}])
    page = phone(staff)
    page.goto(pay_url)
    expect(page.get_by_role("button", name="Pay $400.00 by card")).to_be_visible()

    # The firm voids the bill in Clio while the client has the page open.
    clio.change_bill(int(bill["id"]), state="void")
    deadline = time.monotonic() + 60
    while (
        requests.get(pay_url, headers={"Accept": "application/json"}, timeout=30).json()["bills"][
            0
        ]["status"]
        != "unavailable"
    ):
        assert time.monotonic() < deadline, "the void never reached the pay page"
        firm.sync_now()
    page.get_by_role("button", name="Pay $400.00 by card").click()

    alert = page.get_by_role("form", name="Make a payment").get_by_role("alert")
    expect(alert).to_have_text(
        f"Bill {bill['number']} can no longer be paid online: the firm voided it."
    )
    expect(alert).to_be_focused()
    assert not page.evaluate(AUDIT)["sideways"]
