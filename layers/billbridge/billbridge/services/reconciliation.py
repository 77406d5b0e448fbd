"""Reconciliation (X2): what staff should do about our money that Clio does not show, line by
line, and a clerk's note that a line is recorded in Clio. Rules: domain/payments.py
(`reconciliation_actions`) and domain/reconciliation.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from billbridge.domain.bills import StoredBill
from billbridge.domain.errors import NotFound, RuleViolation
from billbridge.domain.money import format_money
from billbridge.domain.oauth_state import ConnectingUser
from billbridge.domain.payments import ReconciliationAction, reconciliation_actions
from billbridge.domain.reconciliation import (
    LineTransaction,
    RecordedNote,
    RecordedStatus,
    line_transactions,
    note_for,
)
from billbridge.domain.sync import utcnow
from billbridge.services.ports import BillRepository, PaymentStore

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class ReconciliationLine:
    bill: StoredBill
    action: ReconciliationAction
    amount_cents: int  # positive: the amount to record in Clio, or to refund / apply
    # The payments (or refunds) behind the amount: what the clerk types into Clio.
    transactions: tuple[LineTransaction, ...] = ()
    recorded: RecordedNote | None = None  # a clerk said it is recorded in Clio
    recorded_status: RecordedStatus | None = None

    @property
    def note(self) -> str:
        """What staff should do, in a sentence."""
        bill = self.bill.bill
        amount = format_money(self.amount_cents, bill.currency)
        if self.action is ReconciliationAction.RECORD_PAYMENT:
            return f"Record a payment of {amount} on bill {bill.number} in Clio."
        if self.action is ReconciliationAction.RECORD_REFUND:
            return f"Record a refund of {amount} on bill {bill.number} in Clio."
        if self.action is ReconciliationAction.REFUND_OVERPAYMENT:
            return (
                f"Refund {amount} to the client: bill {bill.number} was paid more than it "
                "owed across its payment links."
            )
        state = bill.state.value
        return (
            f"Refund {amount} to the client, or apply it to another bill: bill {bill.number} "
            f"is {state} in Clio and cannot take the payment."
        )


# The actions a clerk records in Clio (the others are refunds to make, not Clio entries).
RECORDED_IN_CLIO = (ReconciliationAction.RECORD_PAYMENT, ReconciliationAction.RECORD_REFUND)


class Reconciliation:
    """X2: what staff should do about our money that Clio does not show: payments and refunds
    to record (Clio's API cannot record a payment), overpayments to refund, money on void or
    deleted bills to refund or apply. Each line names the payments or refunds behind it (date,
    method, account, reference). A line disappears once Clio or a refund settles it; until then
    a clerk may note it as recorded in Clio, which it says until a sync shows Clio caught up."""

    def __init__(
        self,
        store: PaymentStore,
        bills: BillRepository,
        last_synced: Callable[[str], datetime | None] = lambda firm_id: None,
        clock: Clock = utcnow,
    ) -> None:
        self._store = store
        self._bills = bills
        self._last_synced = last_synced
        self._clock = clock

    def report(self, firm_id: str) -> list[ReconciliationLine]:
        ids = self._store.reconciliation_bill_ids(firm_id)
        stored = self._bills.get_many(firm_id, ids)
        actions = {
            bill_id: reconciliation_actions(stored[bill_id].money) for bill_id in sorted(stored)
        }
        if not any(actions.values()):
            return []
        txns = self._store.all_transactions(firm_id)
        notes = self._store.recorded_notes(firm_id)
        synced = self._last_synced(firm_id) if notes else None
        lines = []
        for bill_id, found in actions.items():
            for action, cents in found:
                note = (
                    note_for(notes, bill_id, action, cents) if action in RECORDED_IN_CLIO else None
                )
                lines.append(
                    ReconciliationLine(
                        stored[bill_id],
                        action,
                        cents,
                        transactions=line_transactions(bill_id, action, cents, txns),
                        recorded=note,
                        recorded_status=note.status(synced) if note else None,
                    )
                )
        return lines

    def mark_recorded(
        self,
        firm_id: str,
        bill_id: int,
        action: ReconciliationAction,
        amount_cents: int,
        user: ConnectingUser,
    ) -> ReconciliationLine:
        """A clerk recorded this line in Clio: noted (who, when) on the line as it is now."""
        if action not in RECORDED_IN_CLIO:
            raise RuleViolation(
                "Only payments and refunds to record in Clio can be marked as recorded.",
                field="action",
                code="not_a_clio_entry",
            )
        for line in self.report(firm_id):
            if line.bill.bill.id != bill_id or line.action is not action:
                continue
            if line.amount_cents != amount_cents:
                currency = line.bill.bill.currency
                raise RuleViolation(
                    f"This line changed: {line.bill.bill.number} now has "
                    f"{format_money(line.amount_cents, currency)} to record, not "
                    f"{format_money(amount_cents, currency)}. Reload the report.",
                    field="amount_cents",
                    code="line_changed",
                )
            note = RecordedNote(
                bill_id=bill_id,
                action=action,
                amount_cents=amount_cents,
                user_id=user.user_id,
                email=user.email,
                at=self._clock(),
            )
            self._store.save_recorded_note(firm_id, note)
            return replace(
                line,
                recorded=note,
                recorded_status=note.status(self._last_synced(firm_id)),
            )
        raise NotFound(
            "This bill has nothing to record in Clio now: Clio may have caught up already.",
            field="bill_id",
            code="no_such_line",
        )
