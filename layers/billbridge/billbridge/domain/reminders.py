"""Reminders (X3): which reminder slot of a bill is due, and what stops reminders.

A bill's reminder slots are numbered 1 to `max_count`: slot k falls due `first_after_days`
after the bill was first sent plus (k - 1) x `repeat_every_days`. At a schedule's tick a bill
gets the latest slot that has fallen due, if no reminder of that slot or a later one was sent
(slots missed while reminders could not go out, paused or the schedule not running, are
skipped, never sent in a burst). The store claims each (bill, slot) once with a conditional
write before anything is sent (`reminder_slot` only grows), so duplicate or concurrent ticks
and retries send a slot at most once.

A reminder goes only to a bill a client could still pay: in a payable state (awaiting payment)
with something left to pay (Outstanding (Clio) minus Paid (GL), `BillMoney.payable_cents`),
not paused by the clerk, not covered by an active payment plan, already sent once, and with a
client address mail can go to. The same rule is checked again by the send step just before
SES, so a bill paid, voided or paused after the tick but before the send gets no reminder.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from billbridge.domain.bills import StoredBill, unsendable_reason
from billbridge.domain.email_headers import header_safe
from billbridge.domain.envelopes import merge_fields, money
from billbridge.domain.errors import RuleViolation
from billbridge.domain.settings import FirmSettings, ReminderSettings
from billbridge.domain.templates import TemplateProblem, render


def reminder_anchor(stored: StoredBill) -> datetime | None:
    """When the bill was first sent (reminders count from it), or None: never sent."""
    return stored.first_sent_at or stored.last_sent_at


def slot_due_at(anchor: datetime, policy: ReminderSettings, slot: int) -> datetime:
    if slot < 1:
        raise ValueError("reminder slots are numbered from 1")
    days = policy.first_after_days + (slot - 1) * policy.repeat_every_days
    return anchor + timedelta(days=days)


def latest_due_slot(anchor: datetime, policy: ReminderSettings, now: datetime) -> int | None:
    """The highest slot (at most `max_count`) due at `now`, or None before the first."""
    elapsed = now - anchor - timedelta(days=policy.first_after_days)
    if elapsed < timedelta(0):
        return None
    slot = 1 + elapsed // timedelta(days=policy.repeat_every_days)
    return min(int(slot), policy.max_count)


def stop_reason(stored: StoredBill, *, covered_by_plan: bool) -> str | None:
    """Why this bill gets no reminder, in a sentence, or None: it may get one."""
    bill = stored.bill
    name = f"bill {bill.number}"
    if not stored.money.payable_state:
        return f"{name} is {bill.state.value.replace('_', ' ')} in Clio"
    if stored.payable_cents <= 0:
        return f"{name} is paid"
    if stored.reminders_paused:
        return f"reminders of {name} are paused"
    if covered_by_plan:
        return f"a payment plan covers {name}"
    if reminder_anchor(stored) is None:
        return f"{name} was never sent"
    problem = unsendable_reason(bill)
    if problem is not None:
        return problem.message
    return None


def slot_to_send(
    stored: StoredBill, policy: ReminderSettings, now: datetime, *, covered_by_plan: bool
) -> int | None:
    """The slot a tick at `now` should claim and send for this bill, or None."""
    if not policy.enabled or stop_reason(stored, covered_by_plan=covered_by_plan) is not None:
        return None
    anchor = reminder_anchor(stored)
    assert anchor is not None  # stop_reason said it was sent
    slot = latest_due_slot(anchor, policy, now)
    if slot is None or slot <= stored.reminder_slot:
        return None
    return slot


def next_reminder_at(
    stored: StoredBill, policy: ReminderSettings, now: datetime, *, covered_by_plan: bool
) -> datetime | None:
    """When the bill's next reminder is due (possibly already, waiting for the next tick),
    or None: reminders are off, stopped for this bill, or all sent."""
    if not policy.enabled or stop_reason(stored, covered_by_plan=covered_by_plan) is not None:
        return None
    anchor = reminder_anchor(stored)
    assert anchor is not None
    slot = max(stored.reminder_slot + 1, latest_due_slot(anchor, policy, now) or 1)
    if slot > policy.max_count:
        return None
    return slot_due_at(anchor, policy, slot)


def reminder_text(stored: StoredBill, settings: FirmSettings) -> tuple[str, str]:
    """Subject and body of a bill's reminder, from the firm's reminder template and the
    envelope's merge fields; `amount_due` is what is left to pay now. Rendered as envelopes
    are (bounded, and the subject made one header-safe line)."""
    fields = merge_fields([stored], settings)
    fields["amount_due"] = money(stored.payable_cents, stored.bill.currency)
    fields["amounts_due"] = f"{stored.bill.number}: {fields['amount_due']}"
    template = settings.templates.reminder
    rendered = {}
    for part in ("subject", "body"):
        try:
            rendered[part] = render(getattr(template, part), fields)
        except TemplateProblem as exc:
            raise RuleViolation(
                f"The reminder email template's {part} cannot be filled in for "
                f"{stored.bill.number}: {exc} Correct the template in Settings "
                f"(templates.reminder.{part}).",
                field="bill_ids",
                code="template_failed",
            ) from None
    return header_safe(rendered["subject"]).strip(), rendered["body"]
