"""Payments and refunds as this product knows them (P2-P7, X2, X4): what a client may pay, how
a payment is allocated across bills and split between trust and operating money, how a
transaction's status may move, and the refund rules. Pure rules, no I/O.

Money held per bill, beside Clio's own Outstanding (Clio):
- `paid_gl_cents`: settled payments minus succeeded refunds (Paid (GL)).
- `pending_cents`: ACH payments begun but not settled; they are not Paid (GL), yet they are
  not payable again either.
- `refunded_cents`: succeeded refunds and lost chargebacks (Clio is never told of them: staff
  record them there).
- `disputed_cents`: money a chargeback took back while the bank decides (Stripe withdrew it:
  not Paid (GL), yet not payable again either; it returns to Paid (GL) if the firm wins).
- `baseline_outstanding_cents`: Clio's outstanding when our first payment on the bill was
  recorded. How far Clio's balance has fallen since then is how much of our money Clio shows.

Only a bill awaiting payment in Clio is payable: a void, deleted, draft or paid bill is not,
whatever its balance. Money that reaches a bill anyway (it was voided between checkout and
payment, or two payments crossed) is recorded and flagged, never lost.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from billbridge.domain.bills import BillKind, BillState
from billbridge.domain.errors import InvalidInput, RuleViolation
from billbridge.domain.money import format_money

# Stripe refuses charges below 50 cents (USD); a session of less cannot be paid.
MINIMUM_CHARGE_CENTS = 50

# The one state in which a client may pay a bill.
PAYABLE_STATES = frozenset({BillState.AWAITING_PAYMENT})
_NOT_PAYABLE_BECAUSE = {
    BillState.VOID: "the firm voided it",
    BillState.DELETED: "the firm deleted it",
    BillState.DRAFT: "it has not been issued yet",
    BillState.AWAITING_APPROVAL: "it has not been issued yet",
    BillState.PAID: "it is paid",
}


def is_payable_state(state: BillState) -> bool:
    return state in PAYABLE_STATES


def not_payable_reason(state: BillState) -> str:
    """Why a bill in this state cannot be paid, in words a client reads."""
    return _NOT_PAYABLE_BECAUSE.get(state, "it cannot be paid online")


class Account(StrEnum):
    TRUST = "trust"
    OPERATING = "operating"


class Method(StrEnum):
    CARD = "card"
    ACH = "ach"


class TxnKind(StrEnum):
    PAYMENT = "payment"
    REFUND = "refund"


class TxnStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


def account_for(kind: BillKind) -> Account:
    """Trust requests are paid into trust; every other bill into operating."""
    return Account.TRUST if kind is BillKind.TRUST_REQUEST else Account.OPERATING


@dataclass(frozen=True)
class Allocation:
    bill_id: int
    account: Account
    amount_cents: int


def encode_allocations(allocations: Iterable[Allocation]) -> str:
    """Compact enough for a Stripe metadata value (500 characters): ten bills fit easily."""
    return ";".join(f"{a.bill_id}:{a.account.value}:{a.amount_cents}" for a in allocations)


def decode_allocations(text: str) -> tuple[Allocation, ...]:
    allocations = []
    for part in filter(None, (text or "").split(";")):
        bill_id, account, amount = part.split(":")
        allocations.append(Allocation(int(bill_id), Account(account), int(amount)))
    return tuple(allocations)


# --- what a client may pay -------------------------------------------------------------------


@dataclass(frozen=True)
class BillMoney:
    """A bill's money as the store holds it (see the module docstring)."""

    outstanding_clio_cents: int
    paid_gl_cents: int = 0
    pending_cents: int = 0
    refunded_cents: int = 0
    baseline_outstanding_cents: int | None = None
    state: BillState = BillState.AWAITING_PAYMENT
    disputed_cents: int = 0

    @property
    def payable_state(self) -> bool:
        return is_payable_state(self.state)

    @property
    def recorded_cents(self) -> int:
        """Money we hold or expect for the bill: settled (net of refunds), pending, and what an
        open chargeback holds."""
        return self.paid_gl_cents + self.pending_cents + self.disputed_cents

    @property
    def clio_reflected_cents(self) -> int:
        """How far Clio's outstanding has fallen since our first payment (may be negative when
        it rose, e.g. after staff recorded one of our refunds in Clio)."""
        if self.baseline_outstanding_cents is None:
            return 0
        return self.baseline_outstanding_cents - self.outstanding_clio_cents

    @property
    def unreflected_cents(self) -> int:
        """Our recorded money that Clio's balance does not show yet."""
        reflected = min(max(self.clio_reflected_cents, 0), self.recorded_cents)
        return self.recorded_cents - reflected

    @property
    def payable_cents(self) -> int:
        """Outstanding (Clio) minus the payments we recorded that Clio does not yet show; nothing
        when the bill is not awaiting payment."""
        if not self.payable_state:
            return 0
        return max(0, self.outstanding_clio_cents - self.unreflected_cents)

    @property
    def overpaid_cents(self) -> int:
        """Money we collected beyond what Clio says the bill owes, across all its payment links
        (pending ACH money included)."""
        if not self.payable_state:
            return 0
        return max(0, self.unreflected_cents - self.outstanding_clio_cents)

    @property
    def overpaid_settled_cents(self) -> int:
        """The settled part of the overpayment: what staff can refund now."""
        return max(0, self.overpaid_cents - self.pending_cents - self.disputed_cents)

    @property
    def unpayable_cents(self) -> int:
        """Settled money of ours on a bill that is no longer payable (void, deleted): to refund
        to the client or to apply to another bill."""
        return 0 if self.payable_state else max(0, self.paid_gl_cents)

    @property
    def to_record_in_clio_cents(self) -> int:
        """Positive: a payment staff should record in Clio; negative: a refund. Only money we
        moved counts (Clio's balance falling because of a cheque is not ours to report), never
        more than Clio still owes (the rest is an overpayment to refund), and nothing on a bill
        Clio no longer takes payments on."""
        if self.baseline_outstanding_cents is None or not self.payable_state:
            return 0
        difference = self.paid_gl_cents - self.clio_reflected_cents
        if difference > 0:
            return min(difference, max(0, self.outstanding_clio_cents))
        return -min(-difference, self.refunded_cents)

    def flags(self) -> tuple[str, ...]:
        found = []
        owed = self.to_record_in_clio_cents
        if owed > 0:
            found.append("payment_not_in_clio")
        elif owed < 0:
            found.append("refund_not_in_clio")
        if self.overpaid_cents > 0:
            found.append("overpaid")
        if not self.payable_state and self.paid_gl_cents + self.pending_cents > 0:
            found.append("paid_but_unpayable")
        return tuple(found)


class ReconciliationAction(StrEnum):
    RECORD_PAYMENT = "record_payment"  # record our payment in Clio
    RECORD_REFUND = "record_refund"  # record our refund (or a lost chargeback) in Clio
    REFUND_OVERPAYMENT = "refund_overpayment"  # collected beyond what the bill owed
    REFUND_OR_APPLY = "refund_or_apply"  # money on a void or deleted bill


def reconciliation_actions(money: BillMoney) -> tuple[tuple[ReconciliationAction, int], ...]:
    """What staff should do about a bill's money (X2), each with its amount in cents."""
    actions = []
    owed = money.to_record_in_clio_cents
    if owed > 0:
        actions.append((ReconciliationAction.RECORD_PAYMENT, owed))
    elif owed < 0:
        actions.append((ReconciliationAction.RECORD_REFUND, -owed))
    if money.overpaid_settled_cents > 0:
        actions.append((ReconciliationAction.REFUND_OVERPAYMENT, money.overpaid_settled_cents))
    if money.unpayable_cents > 0:
        actions.append((ReconciliationAction.REFUND_OR_APPLY, money.unpayable_cents))
    return tuple(actions)


# --- checkouts in progress ---------------------------------------------------------------------


@dataclass(frozen=True)
class Hold:
    """What an open Checkout Session may still collect on one bill. A checkout counts the holds
    of every other session on its bills (any payment link), so no bill is collected beyond what
    is payable; a hold ends when the session's payment is recorded, when the session is closed,
    or when it expires (`expires_at`: the session's own expiry plus time for its webhook)."""

    bill_id: int
    link_id: str
    session_id: str
    amount_cents: int
    expires_at: datetime


def held_cents(holds: Iterable[Hold], bill_id: int) -> int:
    return sum(h.amount_cents for h in holds if h.bill_id == bill_id)


@dataclass(frozen=True)
class PayableBill:
    bill_id: int
    number: str
    kind: BillKind
    due_at: date | None
    issued_at: date | None
    payable_cents: int
    currency: str

    @property
    def account(self) -> Account:
        return account_for(self.kind)


def _oldest_due_first(bill: PayableBill) -> tuple[date, date, int]:
    # Bills with no due date come last; then the earliest issued, then Clio's id.
    return (bill.due_at or date.max, bill.issued_at or date.max, bill.bill_id)


def allocate(bills: Sequence[PayableBill], amount_cents: int | None) -> tuple[Allocation, ...]:
    """Allocate a payment over the chosen bills: each in full when no amount is given, else the
    amount oldest due date first. Nothing is ever allocated beyond a bill's payable amount."""
    if not bills:
        raise InvalidInput("Choose at least one bill to pay.", field="bill_ids")
    currencies = {b.currency for b in bills}
    if len(currencies) > 1:
        raise RuleViolation(
            "Bills in different currencies must be paid separately.",
            field="bill_ids",
            code="mixed_currencies",
        )
    currency = next(iter(currencies))
    total = sum(b.payable_cents for b in bills)
    if total <= 0:
        raise RuleViolation(
            "Nothing is left to pay on the chosen bills.", field="bill_ids", code="nothing_payable"
        )
    if amount_cents is None:
        remaining = total
    else:
        if amount_cents <= 0:
            raise InvalidInput("The amount must be more than zero.", field="amount_cents")
        if amount_cents > total:
            from billbridge.domain.envelopes import money

            currency = bills[0].currency
            raise RuleViolation(
                f"The amount, {money(amount_cents, currency)}, is more than is due on the "
                f"chosen bills: at most {money(total, currency)} can be paid.",
                field="amount_cents",
                code="amount_exceeds_payable",
            )
        remaining = amount_cents
    allocations = []
    for bill in sorted(bills, key=_oldest_due_first):
        share = min(bill.payable_cents, remaining)
        if share > 0:
            allocations.append(Allocation(bill.bill_id, bill.account, share))
            remaining -= share
    return tuple(allocations)


def split_by_account(
    allocations: Sequence[Allocation], currency: str = "USD", *, defer_small: bool = False
) -> dict[Account, tuple[Allocation, ...]]:
    """One payment per account (P3): trust money and operating money never share a charge.
    Each part must be chargeable on its own: a part below Stripe's minimum is refused (a
    checkout: the client chooses another amount) or, with `defer_small`, left out (a plan's
    installment: the next installment takes it). The one split a checkout and an installment
    both use."""
    parts: dict[Account, tuple[Allocation, ...]] = {}
    for account in (Account.TRUST, Account.OPERATING):
        mine = tuple(a for a in allocations if a.account is account)
        if not mine:
            continue
        amount = sum(a.amount_cents for a in mine)
        if amount < MINIMUM_CHARGE_CENTS and defer_small:
            continue
        if amount < MINIMUM_CHARGE_CENTS:
            raise RuleViolation(
                f"The {account.value} part of this payment ({format_money(amount, currency)}) "
                "is below the minimum card or bank payment of "
                f"{format_money(MINIMUM_CHARGE_CENTS, currency)}.",
                field="amount_cents",
                code="amount_below_minimum",
            )
        parts[account] = mine
    return parts


# --- transactions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Transaction:
    """A payment (one Stripe Checkout Session, into one account) or a refund of one.

    Status only moves forward: a payment pending -> succeeded or failed; a refund pending ->
    succeeded -> failed (a bank can return an ACH refund after it succeeded)."""

    id: str
    firm_id: str
    link_id: str
    kind: TxnKind
    method: Method
    account: Account
    status: TxnStatus
    amount_cents: int
    currency: str
    allocations: tuple[Allocation, ...]
    created_at: datetime
    updated_at: datetime
    version: int = 0
    checkout_session_id: str | None = None
    payment_intent_id: str | None = None
    stripe_refund_id: str | None = None
    payment_id: str | None = None  # refunds: the payment refunded
    # Payments: refunds claimed per bill (pending and succeeded), so that concurrent refunds
    # can never together exceed what was paid.
    refund_claims: Mapping[int, int] = field(default_factory=dict)
    refunded_cents: int = 0  # payments: succeeded refunds
    disputed: bool = False  # a dispute (inquiry or chargeback) was ever opened on it
    dispute_status: str | None = None  # Stripe's latest dispute status (domain/disputes.py)
    dispute_funds: int = 0  # disputes.Funds: none, withdrawn, reinstated
    # Payments: what a chargeback took back, per bill (claimed like refunds while withdrawn).
    chargeback_allocations: tuple[Allocation, ...] = ()
    failure_reason: str | None = None
    # Refunds: the firm user who asked for it (Cognito sub and email; A4).
    requested_by_user_id: str | None = None
    requested_by_email: str | None = None
    # A card surcharge charged beside the bills (domain/surcharge.py): never in Paid (GL).
    # On a refund: the part of the payment's surcharge it gives back with the bills' money.
    surcharge_cents: int = 0
    # Payments: the surcharge claimed by refunds (pending and succeeded) and the part of it
    # whose refunds succeeded; never more than `surcharge_cents` (surcharge.refund_share).
    surcharge_claimed_cents: int = 0
    surcharge_refunded_cents: int = 0

    @property
    def claimed_cents(self) -> int:
        return sum(self.refund_claims.values())

    @property
    def refundable_cents(self) -> int:
        if self.kind is not TxnKind.PAYMENT or self.status is not TxnStatus.SUCCEEDED:
            return 0
        return max(0, self.amount_cents - self.claimed_cents)


def payment_of_metadata(
    txn_id: str,
    metadata: Mapping[str, Any],
    status: TxnStatus,
    currency: str,
    now: datetime,
    *,
    checkout_session_id: str | None = None,
    payment_intent_id: str | None = None,
    surcharge_cents: int = 0,
    failure_reason: str | None = None,
) -> Transaction:
    """The payment a Stripe object of ours reports, from the metadata we gave it (`firm_id`,
    `link_id`, `account`, `method`, `allocations`): its amount is what it allocates."""
    allocations = decode_allocations(str(metadata["allocations"]))
    return Transaction(
        id=txn_id,
        firm_id=str(metadata["firm_id"]),
        link_id=str(metadata["link_id"]),
        kind=TxnKind.PAYMENT,
        method=Method(metadata.get("method") or "card"),
        account=Account(metadata["account"]),
        status=status,
        amount_cents=sum(a.amount_cents for a in allocations),
        currency=currency,
        allocations=allocations,
        created_at=now,
        updated_at=now,
        checkout_session_id=checkout_session_id,
        payment_intent_id=payment_intent_id,
        surcharge_cents=surcharge_cents,
        failure_reason=failure_reason,
    )


def payment_id_for_session(session_id: str) -> str:
    """A payment's id derives from its Checkout Session, so every event about the session
    names the same transaction without a lookup."""
    return f"pay_{session_id}"


def can_move(kind: TxnKind, current: TxnStatus, new: TxnStatus) -> bool:
    if current is new:
        return False
    if current is TxnStatus.PENDING:
        return True
    return kind is TxnKind.REFUND and current is TxnStatus.SUCCEEDED and new is TxnStatus.FAILED


# --- refunds -----------------------------------------------------------------------------------


def plan_refund(payment: Transaction, amount_cents: int | None) -> tuple[Allocation, ...]:
    """Check a refund request against the rules (P7) and allocate it over the payment's bills,
    latest-due bill first (the reverse of how the payment was allocated)."""
    if payment.status is TxnStatus.PENDING:
        raise RuleViolation(
            "This payment has not settled yet. It can be refunded once it has.",
            code="payment_not_settled",
        )
    if payment.status is TxnStatus.FAILED:
        raise RuleViolation(
            "This payment failed: there is nothing to refund.", code="payment_failed"
        )
    left = payment.refundable_cents
    if amount_cents is not None and amount_cents <= 0:
        raise InvalidInput("The refund must be more than zero.", field="amount_cents")
    if payment.method is Method.ACH:
        # A product rule (Stripe itself allows partial ACH refunds): a bank payment is refunded
        # whole, and only once; that covers a payment of several bills as one.
        if payment.claimed_cents > 0:
            raise RuleViolation(
                "This bank (ACH) payment has already been refunded.",
                field="amount_cents",
                code="refund_exceeds_paid",
            )
        if amount_cents is not None and amount_cents != payment.amount_cents:
            raise RuleViolation(
                "Bank (ACH) payments can only be refunded in full "
                f"({format_money(payment.amount_cents, payment.currency)}), not in part.",
                field="amount_cents",
                code="ach_partial_refund",
            )
    amount = left if amount_cents is None else amount_cents
    if amount <= 0 or amount > left:
        raise RuleViolation(
            f"The refund ({format_money(amount, payment.currency)}) is more than is left to "
            f"refund on this payment ({format_money(left, payment.currency)}).",
            field="amount_cents",
            code="refund_exceeds_paid",
        )
    return take_back(payment, amount)


def take_back(payment: Transaction, amount_cents: int) -> tuple[Allocation, ...]:
    """Up to `amount_cents` of the payment's money not yet claimed by refunds, latest-due bill
    first (how refunds and lost disputes are allocated)."""
    allocations = []
    for allocation in reversed(payment.allocations):
        room = allocation.amount_cents - payment.refund_claims.get(allocation.bill_id, 0)
        share = min(room, amount_cents)
        if share > 0:
            allocations.append(Allocation(allocation.bill_id, allocation.account, share))
            amount_cents -= share
    return tuple(allocations)


def with_claims(payment: Transaction, allocations: Iterable[Allocation], sign: int) -> Transaction:
    claims = dict(payment.refund_claims)
    for allocation in allocations:
        claims[allocation.bill_id] = (
            claims.get(allocation.bill_id, 0) + sign * allocation.amount_cents
        )
    return replace(payment, refund_claims={k: v for k, v in claims.items() if v})
