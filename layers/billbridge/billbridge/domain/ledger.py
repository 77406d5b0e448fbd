"""The ledger (X4, P4, P7): every money movement is an append-only entry, and every change to
money is planned here as one `PaymentChange` that the store writes in a single transaction
(the transactions' new states, the ledger entry, each bill's money, the event's dedupe record),
so a crash can never leave one without the others.

Planning is pure: given the stored transactions and what Stripe says, it answers the change,
or None when what Stripe says is old news (a duplicate, or an event overtaken by a later one).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from billbridge.domain.payments import (
    Account,
    Allocation,
    Method,
    Transaction,
    TxnKind,
    TxnStatus,
    can_move,
    take_back,
    with_claims,
)


class EntryKind(StrEnum):
    PAYMENT = "payment"  # money in: a payment settled
    REFUND = "refund"  # money out: a refund succeeded
    REVERSAL = "reversal"  # a refund that succeeded came back (the bank returned it)
    CHARGEBACK = "chargeback"  # money out: a dispute the firm lost


@dataclass(frozen=True)
class LedgerEntry:
    """One money movement; amounts are signed (money in is positive)."""

    id: str
    firm_id: str
    link_id: str
    txn_id: str
    kind: EntryKind
    method: Method
    account: Account
    amount_cents: int
    currency: str
    allocations: tuple[Allocation, ...]
    created_at: datetime
    stripe_event_id: str | None


@dataclass(frozen=True)
class BillDelta:
    bill_id: int
    paid_gl_cents: int = 0
    pending_cents: int = 0
    refunded_cents: int = 0
    # Remember Clio's outstanding now, unless already remembered (first payment on the bill).
    set_baseline: bool = False
    flags: tuple[str, ...] = ()
    clear_flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class TxnWrite:
    txn: Transaction
    expected_version: int | None  # None: the transaction must not exist yet


@dataclass(frozen=True)
class PaymentChange:
    firm_id: str
    event_id: str | None
    txns: tuple[TxnWrite, ...]
    ledger: tuple[LedgerEntry, ...] = ()
    bills: tuple[BillDelta, ...] = ()
    # A payment's Stripe PaymentIntent, so a dispute (which names only that) finds it.
    payment_intent_id: str | None = None


def _bump(txn: Transaction, now: datetime, **changes: object) -> Transaction:
    return replace(txn, version=txn.version + 1, updated_at=now, **changes)  # type: ignore[arg-type]


def _entry(
    txn: Transaction,
    kind: EntryKind,
    sign: int,
    now: datetime,
    event_id: str | None,
    allocations: tuple[Allocation, ...] | None = None,
) -> LedgerEntry:
    """The entry for a movement of the transaction's money: all of it, or `allocations`."""
    moved = txn.allocations if allocations is None else allocations
    return LedgerEntry(
        id=f"{txn.id}:{kind.value}",
        firm_id=txn.firm_id,
        link_id=txn.link_id,
        txn_id=txn.id,
        kind=kind,
        method=txn.method,
        account=txn.account,
        amount_cents=sign * sum(a.amount_cents for a in moved),
        currency=txn.currency,
        allocations=tuple(Allocation(a.bill_id, a.account, sign * a.amount_cents) for a in moved),
        created_at=now,
        stripe_event_id=event_id,
    )


def payment_change(
    existing: Transaction | None,
    proposed: Transaction,
    target: TxnStatus,
    now: datetime,
    event_id: str | None,
) -> PaymentChange | None:
    """A Checkout Session's payment moved to `target` (pending: ACH begun; succeeded: card paid
    or ACH settled; failed: ACH returned). `proposed` is the transaction as the event describes
    it, used when the store has none yet (events can arrive in any order)."""
    if existing is None:
        txn = replace(proposed, status=target, version=1, created_at=now, updated_at=now)
        before = None
    else:
        if not can_move(existing.kind, existing.status, target):
            return None
        txn = _bump(
            existing,
            now,
            status=target,
            payment_intent_id=existing.payment_intent_id or proposed.payment_intent_id,
        )
        before = existing.status
    deltas = []
    for a in txn.allocations:
        pending = paid = 0
        if before is TxnStatus.PENDING:
            pending -= a.amount_cents
        if target is TxnStatus.PENDING:
            pending += a.amount_cents
        elif target is TxnStatus.SUCCEEDED:
            paid += a.amount_cents
        deltas.append(
            BillDelta(a.bill_id, paid_gl_cents=paid, pending_cents=pending, set_baseline=True)
        )
    ledger: tuple[LedgerEntry, ...] = ()
    if target is TxnStatus.SUCCEEDED:
        ledger = (_entry(txn, EntryKind.PAYMENT, +1, now, event_id),)
    return PaymentChange(
        firm_id=txn.firm_id,
        event_id=event_id,
        txns=(TxnWrite(txn, existing.version if existing else None),),
        ledger=ledger,
        bills=tuple(deltas),
        payment_intent_id=txn.payment_intent_id,
    )


def refund_request_change(
    payment: Transaction, refund: Transaction, now: datetime
) -> PaymentChange:
    """A refund begins: the refund is stored pending and its amount is claimed on the payment,
    conditional on the payment being unchanged since it was read."""
    claimed = _bump(with_claims(payment, refund.allocations, +1), now)
    return PaymentChange(
        firm_id=payment.firm_id,
        event_id=None,
        txns=(TxnWrite(refund, None), TxnWrite(claimed, payment.version)),
    )


def refund_change(
    refund: Transaction,
    payment: Transaction,
    target: TxnStatus,
    now: datetime,
    event_id: str | None,
    failure_reason: str | None = None,
    stripe_refund_id: str | None = None,
) -> PaymentChange | None:
    """A refund moved to `target`. Paid (GL) falls when it succeeds; a failure releases its
    claim, and a failure after success restores Paid (GL) with a reversal entry."""
    if not can_move(TxnKind.REFUND, refund.status, target):
        return None
    moved = _bump(
        refund,
        now,
        status=target,
        failure_reason=failure_reason if target is TxnStatus.FAILED else None,
        stripe_refund_id=refund.stripe_refund_id or stripe_refund_id,
    )
    ledger: tuple[LedgerEntry, ...] = ()
    deltas: tuple[BillDelta, ...] = ()
    if target is TxnStatus.SUCCEEDED:
        new_payment = _bump(
            payment, now, refunded_cents=payment.refunded_cents + refund.amount_cents
        )
        ledger = (_entry(moved, EntryKind.REFUND, -1, now, event_id),)
        deltas = tuple(
            BillDelta(a.bill_id, paid_gl_cents=-a.amount_cents, refunded_cents=a.amount_cents)
            for a in refund.allocations
        )
    else:
        released = with_claims(payment, refund.allocations, -1)
        if refund.status is TxnStatus.SUCCEEDED:
            new_payment = _bump(
                released, now, refunded_cents=payment.refunded_cents - refund.amount_cents
            )
            ledger = (_entry(moved, EntryKind.REVERSAL, +1, now, event_id),)
            deltas = tuple(
                BillDelta(a.bill_id, paid_gl_cents=a.amount_cents, refunded_cents=-a.amount_cents)
                for a in refund.allocations
            )
        else:
            new_payment = _bump(released, now)
    return PaymentChange(
        firm_id=refund.firm_id,
        event_id=event_id,
        txns=(TxnWrite(moved, refund.version), TxnWrite(new_payment, payment.version)),
        ledger=ledger,
        bills=deltas,
    )


def dispute_change(
    payment: Transaction, now: datetime, event_id: str | None
) -> PaymentChange | None:
    """A chargeback opened: recorded on the payment and flagged on its bills. Paid (GL) does not
    move until the money does (the platform, never trust, carries the disputed amount)."""
    if payment.disputed:
        return None
    return PaymentChange(
        firm_id=payment.firm_id,
        event_id=event_id,
        txns=(TxnWrite(_bump(payment, now, disputed=True), payment.version),),
        bills=tuple(BillDelta(a.bill_id, flags=("disputed",)) for a in payment.allocations),
    )


def dispute_closed_change(
    payment: Transaction, status: str, amount_cents: int, now: datetime, event_id: str | None
) -> PaymentChange | None:
    """The bank decided a dispute. Won: the money stays and the bills' flag is cleared. Lost:
    the disputed amount went back to the client, so Paid (GL) falls (a chargeback entry, counted
    with refunds for reconciliation) and the flag stays for staff."""
    if payment.dispute_status in ("won", "lost") or status not in ("won", "lost"):
        return None
    if status == "won":
        closed = _bump(payment, now, disputed=True, dispute_status="won")
        return PaymentChange(
            firm_id=payment.firm_id,
            event_id=event_id,
            txns=(TxnWrite(closed, payment.version),),
            bills=tuple(
                BillDelta(a.bill_id, clear_flags=("disputed",)) for a in payment.allocations
            ),
        )
    allocations = take_back(payment, amount_cents)
    taken = sum(a.amount_cents for a in allocations)
    closed = _bump(
        with_claims(payment, allocations, +1),
        now,
        disputed=True,
        dispute_status="lost",
        refunded_cents=payment.refunded_cents + taken,
    )
    entry = _entry(payment, EntryKind.CHARGEBACK, -1, now, event_id, allocations)
    return PaymentChange(
        firm_id=payment.firm_id,
        event_id=event_id,
        txns=(TxnWrite(closed, payment.version),),
        ledger=(entry,),
        bills=tuple(
            BillDelta(
                a.bill_id,
                paid_gl_cents=-a.amount_cents,
                refunded_cents=a.amount_cents,
                flags=("disputed",),
            )
            for a in allocations
        ),
    )
