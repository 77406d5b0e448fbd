"""Property tests (Hypothesis) for the payment rules: allocation, the trust split, refunds and
chargebacks. Each property holds for any bills and amounts Hypothesis can find."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billbridge.domain import disputes
from billbridge.domain.bills import BillKind
from billbridge.domain.errors import InvalidInput, RuleViolation
from billbridge.domain.ledger import DisputeReport, dispute_change
from billbridge.domain.payments import (
    MINIMUM_CHARGE_CENTS,
    Account,
    Allocation,
    Method,
    PayableBill,
    Transaction,
    TxnKind,
    TxnStatus,
    account_for,
    allocate,
    decode_allocations,
    encode_allocations,
    plan_refund,
    split_by_account,
    with_claims,
)

NOW = datetime(2026, 11, 25, tzinfo=UTC)
settings.register_profile("billbridge", max_examples=100, deadline=None)
settings.load_profile("billbridge")

cents = st.integers(min_value=0, max_value=10_000_000)


@st.composite
def bills(draw: st.DrawFn) -> list[PayableBill]:
    count = draw(st.integers(min_value=1, max_value=10))
    return [
        PayableBill(
            bill_id=bill_id,
            number=f"INV-{bill_id}",
            kind=draw(st.sampled_from(list(BillKind))),
            due_at=draw(st.none() | st.dates(date(2025, 1, 1), date(2027, 12, 31))),
            issued_at=date(2025, 1, 1),
            payable_cents=draw(cents),
            currency="USD",
        )
        for bill_id in range(1, count + 1)
    ]


def _due_key(bill: PayableBill) -> tuple[date, date, int]:
    return (bill.due_at or date.max, bill.issued_at or date.max, bill.bill_id)


@given(bills(), st.none() | st.integers(min_value=-100, max_value=100_000_000))
def test_allocation_never_exceeds_a_bill_and_pays_the_oldest_due_first(
    chosen: list[PayableBill], amount: int | None
) -> None:
    total = sum(b.payable_cents for b in chosen)
    try:
        allocations = allocate(chosen, amount)
    except InvalidInput:
        assert amount is not None and amount <= 0
        return
    except RuleViolation as refused:
        assert refused.code in ("nothing_payable", "amount_exceeds_payable")
        assert total == 0 or (amount is not None and amount > total)
        return
    by_id = {b.bill_id: b for b in chosen}
    assert sum(a.amount_cents for a in allocations) == (total if amount is None else amount)
    assert all(0 < a.amount_cents <= by_id[a.bill_id].payable_cents for a in allocations)
    assert len({a.bill_id for a in allocations}) == len(allocations)
    assert all(a.account is account_for(by_id[a.bill_id].kind) for a in allocations)
    # Oldest due first: every bill paid before the last one paid is paid in full.
    order = sorted((b for b in chosen if b.payable_cents > 0), key=_due_key)
    paid = {a.bill_id: a.amount_cents for a in allocations}
    last = max((i for i, b in enumerate(order) if b.bill_id in paid), default=-1)
    assert all(paid.get(b.bill_id) == b.payable_cents for b in order[:last])
    assert all(b.bill_id not in paid for b in order[last + 1 :])
    assert decode_allocations(encode_allocations(allocations)) == allocations


@given(bills(), st.none() | st.integers(min_value=1, max_value=100_000_000))
def test_the_trust_split_keeps_trust_and_operating_money_apart_and_loses_nothing(
    chosen: list[PayableBill], amount: int | None
) -> None:
    try:
        allocations = allocate(chosen, amount)
    except RuleViolation:
        return
    try:
        parts = split_by_account(allocations)
    except RuleViolation as refused:
        assert refused.code == "amount_below_minimum"
        per_account: dict[Account, int] = {}
        for a in allocations:
            per_account[a.account] = per_account.get(a.account, 0) + a.amount_cents
        assert min(per_account.values()) < MINIMUM_CHARGE_CENTS
        return
    assert Counter(a for part in parts.values() for a in part) == Counter(allocations)
    for account, part in parts.items():
        assert {a.account for a in part} == {account}
        assert sum(a.amount_cents for a in part) >= MINIMUM_CHARGE_CENTS


@st.composite
def payments(draw: st.DrawFn) -> Transaction:
    shares = draw(st.lists(st.integers(1, 500_000), min_size=1, max_size=10))
    allocations = tuple(
        Allocation(i + 1, Account.OPERATING, cents) for i, cents in enumerate(shares)
    )
    return Transaction(
        id="pay_cs_1",
        firm_id="f",
        link_id="pl_1",
        kind=TxnKind.PAYMENT,
        method=draw(st.sampled_from(list(Method))),
        account=Account.OPERATING,
        status=TxnStatus.SUCCEEDED,
        amount_cents=sum(shares),
        currency="USD",
        allocations=allocations,
        created_at=NOW,
        updated_at=NOW,
        version=1,
        payment_intent_id="pi_1",
    )


@given(payments(), st.lists(st.none() | st.integers(-10, 600_000), min_size=1, max_size=12))
def test_refunds_one_after_another_never_exceed_the_payment_or_a_bill(
    payment: Transaction, asks: list[int | None]
) -> None:
    claimed = payment
    for ask in asks:
        try:
            allocations = plan_refund(claimed, ask)
        except (RuleViolation, InvalidInput):
            continue
        amount = sum(a.amount_cents for a in allocations)
        if ask is not None:
            assert amount == ask
        if claimed.method is Method.ACH:
            assert amount == payment.amount_cents  # bank payments only in whole, only once
        claimed = with_claims(claimed, allocations, +1)
        assert claimed.claimed_cents <= payment.amount_cents
        for a in payment.allocations:
            assert claimed.refund_claims.get(a.bill_id, 0) <= a.amount_cents
    if claimed.refundable_cents:
        # Whatever is left can always be refunded (card), latest-due bill first.
        rest = plan_refund(claimed, None)
        if claimed.method is Method.CARD:
            assert sum(a.amount_cents for a in rest) == claimed.refundable_cents
            assert [a.bill_id for a in rest] == sorted((a.bill_id for a in rest), reverse=True)


statuses = st.sampled_from(sorted(disputes.STATUSES))
event_types = st.sampled_from(
    [
        *("charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed"),
        *("charge.dispute.funds_withdrawn", "charge.dispute.funds_reinstated"),
    ]
)


@given(
    payments(),
    st.integers(1, 300_000),
    st.lists(st.tuples(event_types, statuses), min_size=1, max_size=8),
)
def test_a_dispute_never_takes_back_more_than_was_paid_and_returns_exactly_what_it_took(
    payment: Transaction, amount: int, reports: list[tuple[str, str]]
) -> None:
    payment = replace(payment, method=Method.CARD)
    paid = {a.bill_id: a.amount_cents for a in payment.allocations}
    current = payment
    for event_type, status in reports:
        report = DisputeReport(status, amount, disputes.funds_reported(event_type, status, ()))
        change = dispute_change(current, report, NOW, None)
        if change is None:
            continue
        for delta in change.bills:
            paid[delta.bill_id] += delta.paid_gl_cents
        current = change.txns[0].txn
    assert all(0 <= cents for cents in paid.values())
    taken = payment.amount_cents - sum(paid.values())
    assert 0 <= taken <= min(amount, payment.amount_cents)
    if current.dispute_funds == disputes.Funds.REINSTATED or current.dispute_status == "won":
        assert taken == 0
    assert current.claimed_cents == (
        taken if current.dispute_funds == disputes.Funds.WITHDRAWN else 0
    )


@pytest.mark.parametrize("status", sorted(disputes.STATUSES))
def test_every_stripe_status_has_a_stage(status: str) -> None:
    assert disputes.stage(status) is not None
