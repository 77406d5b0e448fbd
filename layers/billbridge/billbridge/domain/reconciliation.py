"""What a clerk needs to record our money in Clio (X2): for each reconciliation line, the
payments or refunds behind it (date, method, account, reference), and the clerk's own note
that a line was recorded in Clio, which holds until a sync shows Clio caught up. Pure rules."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from billbridge.domain.payments import (
    Account,
    Method,
    ReconciliationAction,
    Transaction,
    TxnKind,
    TxnStatus,
)

# A recorded-in-Clio note is kept this long (TTL): long after any sync has confirmed it.
RECORDED_NOTE_DAYS = 90


@dataclass(frozen=True)
class LineTransaction:
    """One payment or refund behind a line, as the clerk types it into Clio."""

    id: str
    kind: TxnKind
    date: datetime
    method: Method
    account: Account
    amount_cents: int  # this transaction's money on the line's bill
    reference: str  # Stripe's id of the money movement (pi_…, re_…), else ours


def reference_of(txn: Transaction) -> str:
    """What identifies the money movement for the firm's books: Stripe's PaymentIntent of a
    payment, Stripe's Refund of a refund (both appear on the Stripe payout report), else ours."""
    if txn.kind is TxnKind.REFUND:
        return txn.stripe_refund_id or txn.id
    return txn.payment_intent_id or txn.id


def _wanted_kind(action: ReconciliationAction) -> TxnKind:
    return TxnKind.REFUND if action is ReconciliationAction.RECORD_REFUND else TxnKind.PAYMENT


def line_transactions(
    bill_id: int,
    action: ReconciliationAction,
    amount_cents: int,
    transactions: Iterable[Transaction],
) -> tuple[LineTransaction, ...]:
    """The succeeded payments (or, to record a refund, refunds) on the bill that make up the
    line's amount, newest first: the most recent money is what Clio has not caught up with."""
    kind = _wanted_kind(action)
    mine: list[LineTransaction] = []
    for txn in transactions:
        if txn.kind is not kind or txn.status is not TxnStatus.SUCCEEDED:
            continue
        on_bill = sum(a.amount_cents for a in txn.allocations if a.bill_id == bill_id)
        if on_bill <= 0:
            continue
        account = next(a.account for a in txn.allocations if a.bill_id == bill_id)
        mine.append(
            LineTransaction(
                id=txn.id,
                kind=txn.kind,
                date=txn.updated_at if kind is TxnKind.REFUND else txn.created_at,
                method=txn.method,
                account=account,
                amount_cents=on_bill,
                reference=reference_of(txn),
            )
        )
    mine.sort(key=lambda t: (t.date, t.id), reverse=True)
    chosen: list[LineTransaction] = []
    covered = 0
    for found in mine:
        if covered >= amount_cents:
            break
        chosen.append(found)
        covered += found.amount_cents
    return tuple(chosen)


class RecordedStatus(StrEnum):
    WAITING_FOR_SYNC = "waiting_for_sync"  # no sync has finished since the clerk's note
    NOT_IN_CLIO = "not_in_clio_at_last_sync"  # a sync since the note still found Clio behind


@dataclass(frozen=True)
class RecordedNote:
    """A clerk's "recorded in Clio" on one line: the bill, the action and its amount then."""

    bill_id: int
    action: ReconciliationAction
    amount_cents: int
    user_id: str
    email: str | None
    at: datetime

    def matches(self, action: ReconciliationAction, amount_cents: int) -> bool:
        """A note is about the line it was made on: the same action and amount. A line whose
        amount changed since (another payment) is a new line to record."""
        return self.action is action and self.amount_cents == amount_cents

    def status(self, last_synced_at: datetime | None) -> RecordedStatus:
        if last_synced_at is not None and last_synced_at > self.at:
            return RecordedStatus.NOT_IN_CLIO
        return RecordedStatus.WAITING_FOR_SYNC


def note_for(
    notes: Sequence[RecordedNote], bill_id: int, action: ReconciliationAction, amount_cents: int
) -> RecordedNote | None:
    """The newest note on this very line, if any."""
    found = [n for n in notes if n.bill_id == bill_id and n.matches(action, amount_cents)]
    return max(found, key=lambda n: n.at) if found else None
