"""Reminders (X3) in a real browser: the Settings screen's reminder section and reminder template
(with its preview), and pausing and resuming one bill's reminders on Invoices, with the bill's
next reminder date and its sent emails."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from playwright.sync_api import expect

from tests.e2e.test_payments import send_bills


def test_reminder_settings_are_shown_checked_previewed_and_saved(staff, new_firm) -> None:
    firm, _ = new_firm()
    page = staff.open(firm.firm_id, "#/settings")
    section = page.get_by_role("region", name="Payment reminders")
    enabled = section.get_by_label("Send payment reminders")
    expect(enabled).not_to_be_checked()
    first = section.get_by_label("First reminder, days after the bill was sent")
    expect(first).to_have_value("15")
    expect(section.get_by_label("Then every, in days")).to_have_value("15")
    expect(section.get_by_label("At most this many reminders a bill")).to_have_value("3")

    template = page.get_by_role("group", name="Payment reminder email")
    preview = template.locator(".preview")
    expect(preview).to_contain_text("Subject: Reminder: INV-0042, INV-0043 from Your law firm")
    template.get_by_label("Subject").fill("Still open: {{ bill_numbers }} ({{ amount_due }})")
    expect(preview).to_contain_text("Subject: Still open: INV-0042, INV-0043 ($1,500.00)")

    # A number out of range is refused before anything is sent, next to its field.
    enabled.check()
    first.fill("0")
    page.get_by_role("button", name="Save settings").click()
    expect(first).to_have_attribute("aria-invalid", "true")
    expect(first).to_be_focused()
    expect(section.locator(".field-error")).to_contain_text("whole number from 1 to 365")
    assert firm.get("/settings").json()["reminders"]["enabled"] is False

    first.fill("10")
    section.get_by_label("Then every, in days").fill("7")
    section.get_by_label("At most this many reminders a bill").fill("4")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("main").get_by_text("Settings saved.")).to_be_visible()
    saved = firm.get("/settings").json()
    assert saved["reminders"] == {
        "enabled": True,
        "first_after_days": 10,
        "repeat_every_days": 7,
        "max_count": 4,
    }
    assert saved["templates"]["reminder"]["subject"] == (
        "Still open: {{ bill_numbers }} ({{ amount_due }})"
    )
    staff.screenshot(page, "settings-reminders")

    # The server's own refusal of a header-breaking subject lands on its field.
    template.get_by_label("Subject").fill("{{ bill_numbers }} {{ balance }}")
    page.get_by_role("button", name="Save settings").click()
    expect(template.locator(".field-error")).to_contain_text("Unknown merge field 'balance'")


def test_a_bills_reminders_are_paused_and_resumed_on_invoices(staff, new_firm) -> None:
    firm, clio = new_firm()
    settings = firm.get("/settings").json()
    settings["reminders"]["enabled"] = True
    assert firm.put("/settings", settings).status_code == 200
    _, (bill_id,), _ = send_bills(firm, clio, [{"total_cents": 31_500}], False)
    listed = next(i for i in firm.all_invoices("awaiting_payment", 50) if i["id"] == bill_id)
    next_at = datetime.fromisoformat(listed["last_sent_at"]) + timedelta(days=15)
    next_text = f"Next {next_at.strftime('%b')} {next_at.day}, {next_at.year}"

    page = staff.open(firm.firm_id, "#/invoices?states=awaiting_payment")
    row = page.locator(f'tr[data-bill-id="{bill_id}"]')
    cell = row.locator('td[data-label="Reminders"]')
    expect(cell).to_contain_text(next_text)
    cell.get_by_role("button", name=f"Pause reminders of bill {bill_id}").click()
    expect(cell.get_by_text("Paused", exact=True)).to_be_visible()
    expect(cell.get_by_role("status")).to_have_text(f"Reminders of bill {bill_id} paused.")
    expect(cell).not_to_contain_text("Next ")
    paused = next(i for i in firm.all_invoices("awaiting_payment", 50) if i["id"] == bill_id)
    assert paused["reminders_paused"] is True and paused["next_reminder_at"] is None
    staff.screenshot(page, "invoices-reminders-paused", full_page=False)

    # Still paused after a reload: it is the bill's, not the screen's.
    page.reload()
    expect(cell.get_by_text("Paused", exact=True)).to_be_visible()
    cell.get_by_role("button", name=f"Resume reminders of bill {bill_id}").click()
    expect(cell).to_contain_text(next_text)
    expect(cell.get_by_role("button", name=f"Pause reminders of bill {bill_id}")).to_be_focused()
    resumed = next(i for i in firm.all_invoices("awaiting_payment", 50) if i["id"] == bill_id)
    assert resumed["reminders_paused"] is False and resumed["next_reminder_at"] is not None

    # The bill's sent emails: its first send (reminders are listed apart as "Reminder N").
    cell.get_by_role("button", name=f"Sent emails of bill {bill_id}").click()
    history = cell.get_by_role("list", name=f"Emails that carried bill {bill_id}")
    expect(history.get_by_role("listitem")).to_have_count(1)
    expect(history.get_by_role("listitem")).to_contain_text(re.compile(r"^First send "))
