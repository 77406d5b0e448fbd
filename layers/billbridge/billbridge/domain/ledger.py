"""The ledger (X4, P4, P7): every money movement is an append-only entry, and every change to
money is planned here as one `PaymentChange` that the store writes in a single transaction
(the transactions' new states, the ledger entry, each bill's money, the event's dedupe record),
so a crash can never leave one without the others.

Planning is pure: given the stored transactions and what Stripe says, it answers the change,
or None when what Stripe says is old news (a duplicate, or an event overtaken by a later one).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from billbridge.domain import disputes
from billbridge.domain.bills import BillState, StoredBill
from billbridge.domain.disputes import DisputeStage, Funds
from billbridge.domain.payments import (
    Account,
    Allocation,
    Hold,
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
    CHARGEBACK = "chargeback"  # money out: a chargeback withdrew the disputed amount
    CHARGEBACK_REVERSAL = "chargeback_reversal"  # money back in: the firm won the chargeback
    SURCHARGE = "surcharge"  # a card surcharge paid into operating: no bill's money
    SURCHARGE_REFUND = "surcharge_refund"  # a refund's share of the surcharge: no bill's money
    SURCHARGE_REVERSAL = "surcharge_reversal"  # that share came back with its refund


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
    # A refund's entries name the firm user who made it (A4); payments have none.
    user_id: str | None = None
    user_email: str | None = None


# The bill attributes a BillDelta ADDs, named as its fields (and the stored attributes).
BILL_MONEY = (
    "paid_gl_cents",
    "pending_cents",
    "refunded_cents",
    "disputed_cents",
    "inquiries_open",
    "chargebacks_open",
    "chargebacks_lost",
)


@dataclass(frozen=True)
class BillDelta:
    """What a change adds to one bill's money (every field is ADDed, so concurrent changes on
    one bill add up). Every delta also moves the bill's `money_version`, which a checkout
    holding the bill is conditional on."""

    bill_id: int
    paid_gl_cents: int = 0
    pending_cents: int = 0
    refunded_cents: int = 0
    disputed_cents: int = 0
    # Remember Clio's outstanding now, unless already remembered (first payment on the bill).
    set_baseline: bool = False
    # Payments on the bill with an open inquiry, an open chargeback, a lost chargeback.
    inquiries_open: int = 0
    chargebacks_open: int = 0
    chargebacks_lost: int = 0


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
    # Checkout holds that end with this change: (bill id, session id). Removing a hold that
    # is already gone changes nothing, so every event about a session may name them.
    released_holds: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True)
class BillGuard:
    """A bill as a checkout read it: the checkout is written only if the bill's money, state
    and Clio balance are still exactly these (so two checkouts cannot both take the same
    payable money)."""

    bill_id: int
    money_version: int
    state: BillState
    outstanding_clio_cents: int


def guards_of(bills: Iterable[StoredBill]) -> tuple[BillGuard, ...]:
    """The guards of bills as just read: a write conditional on them fails if any moved."""
    return tuple(
        BillGuard(b.bill.id, b.money_version, b.bill.state, b.bill.outstanding_clio_cents)
        for b in bills
    )


@dataclass(frozen=True)
class CheckoutHolds:
    """A checkout's write: its sessions' holds, and the holds of the sessions it closed, all
    conditional on its guards."""

    firm_id: str
    guards: tuple[BillGuard, ...]
    holds: tuple[Hold, ...]
    released: tuple[Hold, ...] = ()


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
        user_id=txn.requested_by_user_id,
        user_email=txn.requested_by_email,
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
            failure_reason=(
                proposed.failure_reason or existing.failure_reason
                if target is TxnStatus.FAILED
                else existing.failure_reason
            ),
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
        # The surcharge apart from the bills: Paid (GL) never counts it.
        ledger += _surcharge_entry(txn, EntryKind.SURCHARGE, +1, now, event_id)
    return PaymentChange(
        firm_id=txn.firm_id,
        event_id=event_id,
        txns=(TxnWrite(txn, existing.version if existing else None),),
        ledger=ledger,
        bills=tuple(deltas),
        payment_intent_id=txn.payment_intent_id,
        # The session's money is now pending or paid (or failed): its holds have done their job.
        released_holds=session_holds(txn.checkout_session_id, txn.allocations),
    )


def session_holds(
    session_id: str | None, allocations: tuple[Allocation, ...]
) -> tuple[tuple[int, str], ...]:
    if not session_id:
        return ()
    return tuple((a.bill_id, session_id) for a in allocations)


def checkout_expired_change(
    firm_id: str, session_id: str, allocations: tuple[Allocation, ...], event_id: str
) -> PaymentChange:
    """A session expired (at its time, or closed by a later checkout): it will never be paid,
    so its holds end. No money moves."""
    return PaymentChange(
        firm_id=firm_id,
        event_id=event_id,
        txns=(),
        released_holds=session_holds(session_id, allocations),
    )


def _surcharge_entry(
    txn: Transaction, kind: EntryKind, sign: int, now: datetime, event_id: str | None
) -> tuple[LedgerEntry, ...]:
    """A surcharge's own entry (no bill allocation, so Paid (GL) never counts it), if any."""
    if txn.surcharge_cents <= 0:
        return ()
    entry = _entry(txn, kind, sign, now, event_id, allocations=())
    return (replace(entry, amount_cents=sign * txn.surcharge_cents),)


def refund_request_change(
    payment: Transaction, refund: Transaction, now: datetime
) -> PaymentChange:
    """A refund begins: the refund is stored pending and its amount (the bills' money and its
    share of the surcharge) is claimed on the payment, conditional on the payment being
    unchanged since it was read."""
    claimed = _bump(
        with_claims(payment, refund.allocations, +1),
        now,
        surcharge_claimed_cents=payment.surcharge_claimed_cents + refund.surcharge_cents,
    )
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
            payment,
            now,
            refunded_cents=payment.refunded_cents + refund.amount_cents,
            surcharge_refunded_cents=payment.surcharge_refunded_cents + refund.surcharge_cents,
        )
        ledger = (_entry(moved, EntryKind.REFUND, -1, now, event_id),)
        ledger += _surcharge_entry(moved, EntryKind.SURCHARGE_REFUND, -1, now, event_id)
        deltas = tuple(
            BillDelta(a.bill_id, paid_gl_cents=-a.amount_cents, refunded_cents=a.amount_cents)
            for a in refund.allocations
        )
    else:
        released = replace(
            with_claims(payment, refund.allocations, -1),
            surcharge_claimed_cents=payment.surcharge_claimed_cents - refund.surcharge_cents,
        )
        if refund.status is TxnStatus.SUCCEEDED:
            new_payment = _bump(
                released,
                now,
                refunded_cents=payment.refunded_cents - refund.amount_cents,
                surcharge_refunded_cents=payment.surcharge_refunded_cents - refund.surcharge_cents,
            )
            ledger = (_entry(moved, EntryKind.REVERSAL, +1, now, event_id),)
            ledger += _surcharge_entry(moved, EntryKind.SURCHARGE_REVERSAL, +1, now, event_id)
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


@dataclass(frozen=True)
class DisputeReport:
    """What one `charge.dispute.*` event says."""

    status: str
    amount_cents: int
    funds: Funds


def _per_bill(allocations: tuple[Allocation, ...], when: bool) -> dict[int, int]:
    return {a.bill_id: a.amount_cents for a in allocations} if when else {}


def dispute_change(
    payment: Transaction, report: DisputeReport, now: datetime, event_id: str | None
) -> PaymentChange | None:
    """Move the payment's dispute forward to what the event reports (domain/disputes.py), or
    None when it says nothing new. Money follows Stripe's: a chargeback's withdrawal takes the
    disputed amount out of Paid (GL) (a `chargeback` entry, held as `disputed_cents` so the bill
    is not payable again meanwhile), a reinstatement puts it back (`chargeback_reversal`), a
    loss makes the withdrawal final (counted with refunds for reconciliation). Inquiries move no
    money. The bills carry one flag per stage (inquiry, chargeback, chargeback lost)."""
    old_status, old_funds = payment.dispute_status, Funds(payment.dispute_funds)
    new_status = disputes.later_status(old_status, report.status)
    new_funds = max(old_funds, report.funds, disputes.funds_reported("", new_status or "", ()))
    if new_status == "lost" and old_funds is not Funds.REINSTATED:
        new_funds = Funds.WITHDRAWN  # a lost chargeback's money stays withdrawn, for good
    if payment.status is not TxnStatus.SUCCEEDED:
        new_funds = old_funds  # only settled money can be taken back (Stripe disputes charges)
    if (new_status, new_funds) == (old_status, old_funds):
        return None
    taken = payment.chargeback_allocations
    claims = payment
    if old_funds is Funds.NONE and new_funds is Funds.WITHDRAWN:
        taken = take_back(payment, report.amount_cents)
        claims = with_claims(payment, taken, +1)
    elif old_funds is Funds.WITHDRAWN and new_funds is Funds.REINSTATED:
        claims = with_claims(payment, taken, -1)
    old_stage, new_stage = disputes.stage(old_status), disputes.stage(new_status)

    def money(funds: Funds, stage: DisputeStage | None) -> tuple[dict[int, int], ...]:
        withdrawn = funds is Funds.WITHDRAWN
        return (
            _per_bill(taken, withdrawn),  # out of Paid (GL)
            _per_bill(taken, withdrawn and stage is not DisputeStage.LOST),  # disputed
            _per_bill(taken, withdrawn and stage is DisputeStage.LOST),  # gone for good
        )

    (out_before, held_before, lost_before) = money(old_funds, old_stage)
    (out_after, held_after, lost_after) = money(new_funds, new_stage)
    lost_total = sum(lost_after.values()) - sum(lost_before.values())
    moved = _bump(
        claims,
        now,
        disputed=True,
        dispute_status=new_status,
        dispute_funds=int(new_funds),
        chargeback_allocations=taken,
        refunded_cents=payment.refunded_cents + lost_total,
    )

    def opened(stage: DisputeStage) -> int:
        return int(new_stage is stage) - int(old_stage is stage)

    deltas = []
    for a in payment.allocations:
        b = a.bill_id
        deltas.append(
            BillDelta(
                b,
                paid_gl_cents=out_before.get(b, 0) - out_after.get(b, 0),
                disputed_cents=held_after.get(b, 0) - held_before.get(b, 0),
                refunded_cents=lost_after.get(b, 0) - lost_before.get(b, 0),
                inquiries_open=opened(DisputeStage.INQUIRY),
                chargebacks_open=opened(DisputeStage.CHARGEBACK),
                chargebacks_lost=opened(DisputeStage.LOST),
            )
        )
    ledger: list[LedgerEntry] = []
    if old_funds is Funds.NONE and new_funds is Funds.WITHDRAWN and taken:
        ledger.append(_entry(payment, EntryKind.CHARGEBACK, -1, now, event_id, taken))
    if old_funds is Funds.WITHDRAWN and new_funds is Funds.REINSTATED and taken:
        ledger.append(_entry(payment, EntryKind.CHARGEBACK_REVERSAL, +1, now, event_id, taken))
    return PaymentChange(
        firm_id=payment.firm_id,
        event_id=event_id,
        txns=(TxnWrite(moved, payment.version),),
        ledger=tuple(ledger),
        bills=tuple(d for d in deltas if d != BillDelta(d.bill_id)),
    )
