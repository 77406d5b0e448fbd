"""Payment plans: one client's bills paid in installments charged off-session on a saved card
or bank account. Pure rules, no I/O.

- The schedule: the total payable when the plan is made, in installments of the chosen amount
  every week or every month from the start date; the last installment takes the remainder. A
  monthly plan keeps the start date's day, or the month's last day when the month lacks it.
- Each installment is allocated when it is charged, over what the plan's bills may still pay
  then, oldest due bill first, and split into trust and operating exactly as a one-off payment
  is (one PaymentIntent per account). The last installment charges all that is left.
- A failed attempt is retried `RETRY_AFTER_DAYS` later (twice); after the third failure the
  installment is `failed` and the plan goes on with the next (the money stays payable, and the
  last installment takes it). Only a failed last installment leaves the plan `failed`.
- A plan ends (`completed`) when nothing is left to pay on its bills, however they were paid;
  its installments not yet charged are then `canceled`.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from billbridge.domain.errors import InvalidInput, RuleViolation
from billbridge.domain.money import format_money as money
from billbridge.domain.payments import (
    MINIMUM_CHARGE_CENTS,
    Account,
    Allocation,
    Method,
    PayableBill,
    TxnStatus,
    allocate,
    split_by_account,
)

# Days after a failed attempt that the next is made; one entry per retry.
RETRY_AFTER_DAYS = (3, 5)
MAX_ATTEMPTS = 1 + len(RETRY_AFTER_DAYS)
# How far ahead a plan may start.
MAX_START_DAYS = 60


class PlanSettings(BaseModel):
    """The firm's limits for plans a client chooses on the pay page (staff may go beyond)."""

    model_config = ConfigDict(extra="forbid")

    client_may_choose: StrictBool = True
    min_installment_cents: StrictInt = Field(default=5_000, ge=MINIMUM_CHARGE_CENTS)
    max_installments: StrictInt = Field(default=12, ge=1, le=120)


class Every(StrEnum):
    WEEK = "week"
    MONTH = "month"


class PlanStatus(StrEnum):
    AWAITING_METHOD = "awaiting_method"  # no saved card or bank account yet
    ACTIVE = "active"
    COMPLETED = "completed"  # its bills are paid
    CANCELED = "canceled"
    FAILED = "failed"  # its last installment failed every attempt


OPEN_PLAN = frozenset({PlanStatus.AWAITING_METHOD, PlanStatus.ACTIVE})


class InstallmentStatus(StrEnum):
    SCHEDULED = "scheduled"
    CHARGING = "charging"  # claimed by a tick; Stripe is being asked
    PROCESSING = "processing"  # an ACH debit is on its way
    PAID = "paid"
    RETRY_SCHEDULED = "retry_scheduled"  # an attempt failed; the next is on `next_attempt_on`
    FAILED = "failed"  # every attempt failed
    CANCELED = "canceled"  # the plan was canceled or ended first


DONE = frozenset({InstallmentStatus.PAID, InstallmentStatus.FAILED, InstallmentStatus.CANCELED})
# Charged, or being charged: its outcome is recorded whatever happens to the plan meanwhile.
IN_FLIGHT = frozenset({InstallmentStatus.CHARGING, InstallmentStatus.PROCESSING})


@dataclass(frozen=True)
class SavedMethod:
    """A Stripe PaymentMethod saved on the client's Customer, as the client would name it."""

    payment_method_id: str
    method: Method
    label: str  # "Visa ending 4242", "STRIPE TEST BANK account ending 6789"


@dataclass(frozen=True)
class Part:
    """One account's share of an installment attempt: one off-session PaymentIntent."""

    account: Account
    allocations: tuple[Allocation, ...]
    txn_id: str
    status: TxnStatus = TxnStatus.PENDING
    payment_intent_id: str | None = None
    failure: str | None = None  # Stripe's error code: card_declined, authentication_required

    @property
    def amount_cents(self) -> int:
        return sum(a.amount_cents for a in self.allocations)


@dataclass(frozen=True)
class Installment:
    number: int  # 1-based
    due_on: date
    amount_cents: int
    status: InstallmentStatus = InstallmentStatus.SCHEDULED
    attempts: int = 0
    next_attempt_on: date | None = None
    collected_cents: int = 0  # settled by earlier attempts (one account paid, the other not)
    parts: tuple[Part, ...] = ()  # the current attempt's
    failure: str | None = None
    attempted_on: date | None = None  # the tick's day of the current attempt

    @property
    def next_action_on(self) -> date | None:
        if self.status is InstallmentStatus.SCHEDULED:
            return self.due_on
        if self.status is InstallmentStatus.RETRY_SCHEDULED:
            return self.next_attempt_on
        if self.status is InstallmentStatus.CHARGING:
            return self.due_on  # a tick that died mid-charge: the next finishes it
        return None


@dataclass(frozen=True)
class Plan:
    id: str
    firm_id: str
    link_id: str
    client_id: int
    client_email: str
    bill_ids: tuple[int, ...]
    every: Every
    start_on: date
    installment_cents: int
    installments: tuple[Installment, ...]
    status: PlanStatus
    created_at: datetime
    created_by: str  # "staff" or "client"
    currency: str = "USD"
    method: SavedMethod | None = None
    customer_id: str | None = None
    mandate_text: str | None = None  # the ACH authorization the client accepted, as shown
    mandate_accepted_at: datetime | None = None
    version: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def next_action_on(self) -> date | None:
        if self.status is not PlanStatus.ACTIVE:
            return None
        days = [i.next_action_on for i in self.installments if i.next_action_on is not None]
        return min(days) if days else None

    def current(self, today: date) -> Installment | None:
        """The installment to act on today: one being charged, else the first due."""
        for installment in self.installments:
            if installment.status is InstallmentStatus.CHARGING:
                return installment
        for installment in self.installments:
            when = installment.next_action_on
            if when is not None and when <= today:
                return installment
        return None

    def is_last(self, installment: Installment) -> bool:
        later = [i for i in self.installments if i.number > installment.number]
        return all(i.status is InstallmentStatus.CANCELED for i in later)

    def with_installment(self, installment: Installment) -> Plan:
        return replace(
            self,
            installments=tuple(
                installment if i.number == installment.number else i for i in self.installments
            ),
        )


def add_months(start: date, months: int) -> date:
    """The start date's day `months` later, or that month's last day."""
    month0 = start.month - 1 + months
    year, month = start.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def due_dates(start_on: date, every: Every, count: int) -> list[date]:
    if every is Every.WEEK:
        return [start_on + timedelta(weeks=k) for k in range(count)]
    return [add_months(start_on, k) for k in range(count)]


def schedule(
    total_cents: int, installment_cents: int, every: Every, start_on: date
) -> tuple[Installment, ...]:
    """Installments of `installment_cents` that pay `total_cents`, the last the remainder."""
    if total_cents <= 0:
        raise RuleViolation(
            "Nothing is left to pay on the chosen bills.", field="bill_ids", code="nothing_payable"
        )
    if installment_cents <= 0:
        raise InvalidInput("The installment must be a positive amount.", field="installment_cents")
    count = -(-total_cents // installment_cents)
    amounts = [installment_cents] * (count - 1) + [total_cents - installment_cents * (count - 1)]
    return tuple(
        Installment(number=n + 1, due_on=when, amount_cents=amount)
        for n, (when, amount) in enumerate(
            zip(due_dates(start_on, every, count), amounts, strict=True)
        )
    )


def check_plan_request(
    total_cents: int,
    installment_cents: int,
    start_on: date,
    today: date,
    limits: PlanSettings | None,
) -> None:
    """The rules every plan keeps; `limits` (the firm's, for a plan the client chooses) too."""
    if start_on < today:
        raise RuleViolation(
            f"The first installment cannot be before today ({today.isoformat()}).",
            field="start_on",
            code="start_in_past",
        )
    if start_on > today + timedelta(days=MAX_START_DAYS):
        raise RuleViolation(
            f"The first installment must be within {MAX_START_DAYS} days.",
            field="start_on",
            code="start_too_late",
        )
    if installment_cents < MINIMUM_CHARGE_CENTS:
        raise RuleViolation(
            f"An installment must be at least {money(MINIMUM_CHARGE_CENTS, 'USD')}.",
            field="installment_cents",
            code="installment_too_small",
        )
    if installment_cents >= total_cents:
        raise RuleViolation(
            "The installment covers the whole amount: pay it at once instead.",
            field="installment_cents",
            code="installment_too_large",
        )
    if limits is None:
        return
    if not limits.client_may_choose:
        raise RuleViolation(
            "This firm does not offer payment plans online.", code="plans_not_offered"
        )
    if installment_cents < limits.min_installment_cents:
        raise RuleViolation(
            f"An installment must be at least {money(limits.min_installment_cents, 'USD')}.",
            field="installment_cents",
            code="installment_too_small",
        )
    count = -(-total_cents // installment_cents)
    if count > limits.max_installments:
        raise RuleViolation(
            f"This plan would take {count} installments; this firm allows at most "
            f"{limits.max_installments}.",
            field="installment_cents",
            code="too_many_installments",
        )


def installment_allocations(
    plan: Plan, installment: Installment, bills: Sequence[PayableBill]
) -> dict[Account, tuple[Allocation, ...]]:
    """What this attempt charges, per account: the installment's amount (everything left,
    for the last) over what the bills may pay now, oldest due first. A part below Stripe's
    minimum charge is left for the next installment."""
    total = sum(b.payable_cents for b in bills)
    if total <= 0:
        return {}
    wanted = installment.amount_cents - installment.collected_cents
    amount = total if plan.is_last(installment) else min(wanted, total)
    if amount <= 0:
        return {}
    allocations = allocate([b for b in bills if b.payable_cents > 0], amount)
    return split_by_account(allocations, plan.currency, defer_small=True)


def unclaimed(plan: Plan, installment: Installment, today: date) -> Plan:
    """The plan with this attempt's claim given up before Stripe was asked (its money was
    taken meanwhile by a checkout's hold): the installment is due again today, to be claimed
    afresh over what the bills may pay then."""
    attempts = installment.attempts - 1
    back = replace(
        installment,
        status=InstallmentStatus.RETRY_SCHEDULED if attempts else InstallmentStatus.SCHEDULED,
        attempts=attempts,
        next_attempt_on=today if attempts else None,
        attempted_on=None,
        parts=(),
    )
    return plan.with_installment(back)


def part_txn_id(plan_id: str, number: int, attempt: int, account: Account) -> str:
    """A part's transaction id, the same from the tick that charges it and from every Stripe
    event about it."""
    return f"pay_{plan_id}_{number}_{attempt}_{account.value}"


def idempotency_key(plan_id: str, number: int, attempt: int, account: Account) -> str:
    """One PaymentIntent per installment attempt and account, however many ticks ask."""
    return f"installment-{plan_id}-{number}-{attempt}-{account.value}"


def settle_installment(plan: Plan, installment: Installment, today: date) -> tuple[Plan, bool]:
    """The installment after its parts moved: paid when all succeeded, processing while one
    is pending, else (a part failed) retried or failed. Answers the plan and whether this
    attempt just failed (so the client and the firm are told once). A retry is counted from
    the day of the attempt (`today` when that is unknown), not from when Stripe told."""
    today = installment.attempted_on or today
    statuses = {p.status for p in installment.parts}
    if TxnStatus.PENDING in statuses:
        moved = replace(installment, status=InstallmentStatus.PROCESSING)
        return plan.with_installment(moved), False
    collected = installment.collected_cents + sum(
        p.amount_cents for p in installment.parts if p.status is TxnStatus.SUCCEEDED
    )
    if TxnStatus.FAILED not in statuses:
        moved = replace(
            installment,
            status=InstallmentStatus.PAID,
            collected_cents=collected,
            parts=installment.parts,
        )
        return finish_if_done(plan.with_installment(moved)), False
    failure = next(p.failure for p in installment.parts if p.status is TxnStatus.FAILED)
    if installment.attempts < MAX_ATTEMPTS:
        wait = RETRY_AFTER_DAYS[installment.attempts - 1]
        moved = replace(
            installment,
            status=InstallmentStatus.RETRY_SCHEDULED,
            next_attempt_on=today + timedelta(days=wait),
            collected_cents=collected,
            failure=failure,
        )
        return plan.with_installment(moved), True
    moved = replace(
        installment, status=InstallmentStatus.FAILED, collected_cents=collected, failure=failure
    )
    updated = plan.with_installment(moved)
    if updated.is_last(moved):
        updated = replace(updated, status=PlanStatus.FAILED)
    return updated, True


def finish_if_done(plan: Plan) -> Plan:
    """A plan whose installments are all done is completed (or failed, if its last failed)."""
    if plan.status is not PlanStatus.ACTIVE:
        return plan
    if all(i.status in DONE for i in plan.installments):
        last = plan.installments[-1]
        status = PlanStatus.FAILED if last.status is InstallmentStatus.FAILED else None
        return replace(plan, status=status or PlanStatus.COMPLETED)
    return plan


def end_paid(plan: Plan) -> Plan:
    """Nothing is left to pay on the plan's bills: it is completed, and what it had not
    charged yet is canceled."""
    return replace(
        plan,
        status=PlanStatus.COMPLETED,
        installments=tuple(
            i
            if i.status in DONE or i.status in IN_FLIGHT
            else replace(i, status=InstallmentStatus.CANCELED)
            for i in plan.installments
        ),
    )


def cancel(plan: Plan) -> Plan:
    if plan.status not in OPEN_PLAN:
        raise RuleViolation(
            f"This plan is {plan.status.value}; only an open plan can be canceled.",
            code="plan_not_open",
        )
    return replace(
        end_paid(plan), status=PlanStatus.CANCELED
    )  # a debit already on its way still settles


def mandate_text(firm_name: str, plan_summary: str) -> str:
    """The ACH debit authorization shown to the client before a bank account is saved for a
    plan (Nacha wants clear consent naming the debits and how to revoke it)."""
    return (
        f"By saving this bank account you authorize {firm_name} to debit it, through its "
        f"payment processor Stripe, for the installments of this payment plan ({plan_summary}), "
        "and if necessary to credit it to correct an erroneous debit. This authorization lasts "
        f"until the plan ends or you revoke it by telling {firm_name}, at least 3 business "
        "days before an installment's date."
    )
