"""Review and send in a real browser (S1-S4, T1): select a firm's bills, edit an envelope, view
its bill PDF, send one, then send all the rest from one screen; and the Settings screen's
templates with their live preview and the server's validation. Each test has a firm of its own."""

from __future__ import annotations

import re
import time

from playwright.sync_api import expect

CLIENTS = ("Harbor Point Dental", "Ruth Alvarez", "Kestrel Logistics Ltd")


def make_bills(firm, clio, count: int) -> list[dict]:
    """One bill per client, each client with an address of this test's own."""
    bills = []
    for n, name in enumerate(CLIENTS[:count]):
        address = f"{clio.account}-{n}@client.example"
        made = clio.create_bill(
            total_cents=12_500 * (n + 1), client={"name": name, "email": address}
        )
        bills.append(
            {"id": str(made["id"]), "number": made["number"], "email": address, "name": name}
        )
    firm.sync_now()
    return bills


def test_review_edit_view_pdf_send_one_then_send_all(staff, new_firm, mails):
    firm, clio = new_firm()
    bills = make_bills(firm, clio, 3)
    page = staff.open(firm.firm_id)

    expect(page.locator("table.invoices tbody tr")).to_have_count(3)
    page.get_by_role("checkbox", name="Select every bill with a balance on this page").check()
    expect(page.get_by_text("3 bills with a balance selected on this page")).to_be_visible()
    page.get_by_role("button", name="Review and send selected (3)").click()

    # One envelope at a time: recipient, editable subject and message, the bill's PDF.
    expect(page.get_by_role("heading", name="Review and send", level=1)).to_be_visible()
    expect(page.get_by_text("3 envelopes · 0 sent")).to_be_visible()
    panel = page.locator(".envelope-panel")
    expect(panel.get_by_role("heading", level=2)).to_have_text(re.compile(r"^Envelope 1 of 3: "))
    first_name = panel.get_by_role("heading", level=2).inner_text().split(": ", 1)[1]
    first = next(b for b in bills if b["name"] == first_name)
    expect(panel.get_by_text(first["email"])).to_be_visible()
    subject = panel.get_by_label("Subject")
    expect(subject).to_have_value(re.compile(r"^Invoice "))
    subject.fill("Your bill, reviewed in the browser")
    message = panel.get_by_label("Message")
    expect(message).to_have_value(re.compile(f"Dear {first_name},"))
    staff.screenshot(page, "review", docs=True, full_page=False)

    panel.get_by_role("button", name=re.compile(r"^View PDF of ")).click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading")).to_have_text(re.compile(r"\(PDF, \d+ (KB|bytes)\)$"))
    with page.expect_popup() as popup:
        dialog.get_by_role("link", name="Open in new tab").click()
    assert popup.value.url.startswith("blob:")
    popup.value.close()
    staff.screenshot(page, "review-pdf", full_page=False)
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_have_count(0)

    # Continue, then "Send envelope now"; the next envelope follows.
    panel.get_by_role("button", name="Continue").click()
    expect(panel.get_by_text("Your bill, reviewed in the browser")).to_be_visible()
    staff.screenshot(page, "review-confirm", full_page=False)
    panel.get_by_role("button", name="Send envelope now").click()
    expect(page.locator("main").get_by_text(f"Envelope sent to {first['email']}.")).to_be_visible()
    expect(panel.get_by_role("heading", level=2)).to_have_text(re.compile(r"^Envelope 2 of 3: "))
    expect(page.get_by_text("3 envelopes · 1 sent")).to_be_visible()
    (mail,) = mails(first["email"])
    assert mail["subject"] == "Your bill, reviewed in the browser"

    # Send all: every remaining subject and message on one screen; Continue sends them.
    page.get_by_role("link", name="Send all envelopes").click()
    expect(page.get_by_role("heading", name="Send all envelopes", level=1)).to_be_visible()
    cards = page.locator("section.card")
    expect(cards).to_have_count(3)
    expect(cards.nth(0).get_by_text("Already sent")).to_be_visible()
    third = cards.nth(2)
    third_name = (
        third.get_by_role("heading", level=2)
        .inner_text()
        .split(". ", 1)[1]
        .split(" Draft")[0]
        .strip()
    )
    third_bill = next(b for b in bills if third_name.startswith(b["name"]))
    third.get_by_label("Message").fill(
        "Dear client,\n\nEdited on the send-all screen.\n\n{{ pay_link }}"
    )
    staff.screenshot(page, "send-all")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="All 2 envelopes sent.")).to_be_visible(timeout=60_000)
    results = page.locator(".results-list li")
    expect(results).to_have_count(2)
    expect(results.filter(has_text="Sent")).to_have_count(2)
    staff.screenshot(page, "send-all-done")
    (third_mail,) = mails(third_bill["email"])
    assert "Edited on the send-all screen." in third_mail["body"]
    assert "/pay/" in third_mail["body"]

    # Back on Invoices: each bill now has a last-sent date and a payment link.
    page.get_by_role("link", name="Back to Invoices").click()
    for bill in bills:
        row = page.locator(f"tr[data-bill-id='{bill['id']}']")
        expect(row.locator("td[data-label='Last sent']")).not_to_have_text("Never")
        expect(row.get_by_role("link", name=f"Payment link of {bill['number']}")).to_be_visible()


def test_a_failed_envelope_is_edited_and_sent_again(staff, new_firm, mails):
    firm, clio = new_firm()
    (bill,) = make_bills(firm, clio, 1)
    # The sync cached the bill's PDF; the bill then changes in Clio (its webhook tells us), so
    # the send must fetch its PDF again.
    clio.change_bill(int(bill["id"]), balance_cents=12_000)
    deadline = time.monotonic() + 60
    while not any(
        i["id"] == bill["id"] and i["outstanding_clio_cents"] == 12_000
        for i in firm.all_invoices("awaiting_payment", 50)
    ):
        assert time.monotonic() < deadline, "the webhook never brought the change"
        time.sleep(0.2)
    page = staff.open(firm.firm_id)
    page.get_by_role("checkbox", name="Select every bill with a balance on this page").check()
    page.get_by_role("button", name="Review and send selected (1)").click()
    panel = page.locator(".envelope-panel")
    panel.get_by_role("button", name="Continue").click()
    # Clio refuses the bill's preview once: the envelope cannot carry its PDF and fails.
    clio.control("faults", {"status": 404, "count": 1, "path": "preview"})

    panel.get_by_role("button", name="Send envelope now").click()

    expect(panel.get_by_text(f"The envelope to {bill['email']} was not sent")).to_be_visible()
    staff.screenshot(page, "review-failed", full_page=False)
    panel.get_by_role("button", name="Edit and send again").click()
    panel.get_by_label("Subject").fill("Your invoice, sent again")
    panel.get_by_role("button", name="Continue").click()
    panel.get_by_role("button", name="Send envelope now").click()
    expect(page.locator("main").get_by_text(f"Envelope sent to {bill['email']}.")).to_be_visible()
    (mail,) = mails(bill["email"])
    assert mail["subject"] == "Your invoice, sent again"


def test_settings_preview_validation_and_default_filter(staff, new_firm):
    firm, clio = new_firm()
    clio.create_bill(state="paid")
    page = staff.open(firm.firm_id, "#/settings")

    invoice = page.get_by_role("group", name="Invoice email")
    subject = invoice.get_by_label("Subject")
    expect(subject).to_have_value("Invoice {{ bill_numbers }} from {{ firm_name }}")
    preview = invoice.locator(".preview")
    expect(preview).to_contain_text("Subject: Invoice INV-0042, INV-0043 from Your law firm")

    # The preview follows the typing; a field that is not a merge field is pointed out, and
    # the server's refusal appears next to the field.
    subject.fill("{{ client_name }}: bill {{ bill_numbers }} {{ balance }}")
    expect(preview).to_contain_text("Subject: Acme Ltd: bill INV-0042, INV-0043 {{ balance }}")
    expect(preview).to_contain_text("Not a merge field: balance.")
    page.get_by_label("Firm name").fill("Okafor & Partners")
    invoice.get_by_label("Message").fill(
        "Hello {{ client_name }}, from {{ firm_name }}: {{ pay_link }}"
    )
    expect(preview).to_contain_text(
        "Hello Acme Ltd, from Okafor & Partners: https://pay.example.com/pay/abc"
    )
    page.get_by_role("button", name="Save settings").click()
    error = invoice.locator(".field-error")
    expect(error).to_have_text(re.compile(r"^Unknown merge field 'balance'\. Allowed: "))
    expect(subject).to_have_attribute("aria-invalid", "true")
    expect(subject).to_be_focused()
    staff.screenshot(page, "settings-error", full_page=False)

    subject.fill("{{ client_name }}: bill {{ bill_numbers }}")
    page.get_by_label("Aggregate Payment Links").check()
    page.get_by_role("group", name="Default Clio Status filter").get_by_label(
        "Awaiting payment"
    ).uncheck()
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("main").get_by_text("Settings saved.")).to_be_visible()
    expect(error).to_have_count(0)
    saved = firm.get("/settings").json()
    assert saved["aggregate_payment_links"] is True
    assert saved["default_states"] == ["paid"]
    assert saved["firm_name"] == "Okafor & Partners"
    assert saved["templates"]["invoice"]["subject"] == "{{ client_name }}: bill {{ bill_numbers }}"
    staff.screenshot(page, "settings")

    # Invoices now opens on the new default filter.
    page.get_by_role("link", name="Invoices").click()
    expect(page.locator("summary")).to_have_text("Clio Status: Paid")
    expect(page.locator("table.invoices tbody tr")).to_have_count(1)


def test_settings_previews_the_mixed_template_with_its_merge_fields(staff, new_firm):
    firm, _ = new_firm()
    page = staff.open(firm.firm_id, "#/settings")

    mixed = page.get_by_role("group", name="Invoices and trust requests together")
    for field in ("invoice_lines", "invoice_amount_due", "trust_request_lines", "trust_amount_due"):
        expect(mixed.locator(".mixed-fields dt", has_text=f"{{{{ {field} }}}}")).to_be_visible()
    preview = mixed.locator(".preview")
    expect(preview).to_contain_text("Trust requests ($500.00):")

    mixed.get_by_label("Message").fill(
        "Invoices {{ invoice_amount_due }}:\n{{ invoice_lines }}\n"
        "Trust {{ trust_amount_due }}:\n{{ trust_request_lines }}"
    )
    expect(preview).to_contain_text("Invoices $1,000.00:\nINV-0042: $1,000.00")
    expect(preview).to_contain_text("Trust $500.00:\nTR-0043: $500.00")
    expect(preview.get_by_text("Not a merge field")).to_have_count(0)
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("main").get_by_text("Settings saved.")).to_be_visible()
    saved = firm.get("/settings").json()["templates"]["mixed"]
    assert saved["body"].startswith("Invoices {{ invoice_amount_due }}:")
