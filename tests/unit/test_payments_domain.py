"""The payment rules (P2, P3, P7) and the ledger's planning, without AWS or Stripe."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from billbridge.domain import disputes
from billbridge.domain.bills import BillKind, BillState
from billbridge.domain.errors import InvalidInput, RuleViolation
from billbridge.domain.ledger import (
    BillDelta,
    DisputeReport,
    EntryKind,
    dispute_change,
    payment_change,
    refund_change,
    refund_request_change,
)
from billbridge.domain.payments import (
    Account,
    Allocation,
    BillMoney,
    Method,
    PayableBill,
    Transaction,
    TxnKind,
    TxnStatus,
    allocate,
    can_move,
    decode_allocations,
    encode_allocations,
    plan_refund,
    split_by_account,
)

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def bill(
    bill_id: int, payable: int, due: str | None, kind: BillKind = BillKind.INVOICE
) -> PayableBill:
    return PayableBill(
        bill_id=bill_id,
        number=str(bill_id),
        kind=kind,
        due_at=date.fromisoformat(due) if due else None,
        issued_at=date(2026, 1, 1),
        payable_cents=payable,
        currency="USD",
    )


def payment(amount: int = 10_000, method: Method = Method.CARD, **changes: object) -> Transaction:
    txn = Transaction(
        id="pay_cs_1",
        firm_id="f",
        link_id="pl_1",
        kind=TxnKind.PAYMENT,
        method=method,
        account=Account.OPERATING,
        status=TxnStatus.SUCCEEDED,
        amount_cents=amount,
        currency="USD",
        allocations=(
            Allocation(1, Account.OPERATING, amount - 2_500),
            Allocation(2, Account.OPERATING, 2_500),
        ),
        created_at=NOW,
        updated_at=NOW,
        version=2,
        payment_intent_id="pi_1",
    )
    return replace(txn, **changes)  # type: ignore[arg-type]


class TestAllocation:
    def test_given_no_amount_when_allocating_then_each_bill_is_paid_in_full(self) -> None:
        result = allocate([bill(1, 500, "2026-03-01"), bill(2, 700, "2026-02-01")], None)
        assert {(a.bill_id, a.amount_cents) for a in result} == {(1, 500), (2, 700)}

    def test_given_a_partial_amount_then_the_oldest_due_bill_is_paid_first(self) -> None:
        bills = [bill(1, 5_000, "2026-03-01"), bill(2, 3_000, "2026-01-15"), bill(3, 4_000, None)]
        result = allocate(bills, 6_000)
        assert [(a.bill_id, a.amount_cents) for a in result] == [(2, 3_000), (1, 3_000)]

    def test_given_more_than_is_payable_then_it_is_refused(self) -> None:
        with pytest.raises(RuleViolation) as refused:
            allocate([bill(1, 500, None)], 501)
        assert refused.value.code == "amount_exceeds_payable"

    def test_given_nothing_payable_then_it_is_refused(self) -> None:
        with pytest.raises(RuleViolation) as refused:
            allocate([bill(1, 0, None)], None)
        assert refused.value.code == "nothing_payable"

    def test_given_a_zero_amount_then_it_is_malformed(self) -> None:
        with pytest.raises(InvalidInput):
            allocate([bill(1, 500, None)], 0)

    def test_allocations_survive_stripe_metadata(self) -> None:
        allocations = (Allocation(12, Account.TRUST, 500), Allocation(7, Account.OPERATING, 1))
        text = encode_allocations(allocations * 5)
        assert len(text) < 500
        assert decode_allocations(text) == allocations * 5


class TestTrustSplit:
    def test_given_trust_and_operating_bills_then_two_parts_each_with_its_own_bills(self) -> None:
        allocations = allocate(
            [bill(1, 10_000, "2026-01-01"), bill(2, 4_000, "2026-02-01", BillKind.TRUST_REQUEST)],
            None,
        )
        parts = split_by_account(allocations)
        assert set(parts) == {Account.TRUST, Account.OPERATING}
        assert [(a.bill_id, a.amount_cents) for a in parts[Account.TRUST]] == [(2, 4_000)]
        assert [(a.bill_id, a.amount_cents) for a in parts[Account.OPERATING]] == [(1, 10_000)]

    def test_given_a_part_below_stripes_minimum_then_it_is_refused(self) -> None:
        allocations = allocate(
            [bill(1, 10_000, "2026-01-01"), bill(2, 4_000, "2026-02-01", BillKind.TRUST_REQUEST)],
            10_020,
        )
        with pytest.raises(RuleViolation) as refused:
            split_by_account(allocations)
        assert refused.value.code == "amount_below_minimum"


class TestPayable:
    def test_our_unreflected_payments_are_not_payable_again(self) -> None:
        money = BillMoney(
            outstanding_clio_cents=10_000, paid_gl_cents=3_000, baseline_outstanding_cents=10_000
        )
        assert money.payable_cents == 7_000
        assert money.to_record_in_clio_cents == 3_000

    def test_when_clio_shows_the_payment_it_counts_as_reflected(self) -> None:
        money = BillMoney(
            outstanding_clio_cents=7_000, paid_gl_cents=3_000, baseline_outstanding_cents=10_000
        )
        assert money.payable_cents == 7_000
        assert money.to_record_in_clio_cents == 0
        assert money.flags() == ()

    def test_pending_bank_payments_are_not_payable_again(self) -> None:
        money = BillMoney(
            outstanding_clio_cents=10_000, pending_cents=10_000, baseline_outstanding_cents=10_000
        )
        assert money.payable_cents == 0

    def test_a_refund_clio_does_not_show_is_flagged(self) -> None:
        money = BillMoney(
            outstanding_clio_cents=0,
            paid_gl_cents=6_000,
            refunded_cents=4_000,
            baseline_outstanding_cents=10_000,
        )
        assert money.to_record_in_clio_cents == -4_000
        assert money.flags() == ("refund_not_in_clio",)

    def test_a_cheque_recorded_in_clio_is_not_reported_as_a_refund(self) -> None:
        money = BillMoney(
            outstanding_clio_cents=0, paid_gl_cents=5_000, baseline_outstanding_cents=10_000
        )
        assert money.to_record_in_clio_cents == 0


class TestStatus:
    @pytest.mark.parametrize(
        ("kind", "current", "new", "allowed"),
        [
            (TxnKind.PAYMENT, TxnStatus.PENDING, TxnStatus.SUCCEEDED, True),
            (TxnKind.PAYMENT, TxnStatus.PENDING, TxnStatus.FAILED, True),
            (TxnKind.PAYMENT, TxnStatus.SUCCEEDED, TxnStatus.PENDING, False),
            (TxnKind.PAYMENT, TxnStatus.SUCCEEDED, TxnStatus.FAILED, False),
            (TxnKind.PAYMENT, TxnStatus.FAILED, TxnStatus.SUCCEEDED, False),
            (TxnKind.REFUND, TxnStatus.SUCCEEDED, TxnStatus.FAILED, True),
            (TxnKind.REFUND, TxnStatus.FAILED, TxnStatus.SUCCEEDED, False),
            (TxnKind.REFUND, TxnStatus.SUCCEEDED, TxnStatus.SUCCEEDED, False),
        ],
    )
    def test_status_only_moves_forward(
        self, kind: TxnKind, current: TxnStatus, new: TxnStatus, allowed: bool
    ) -> None:
        assert can_move(kind, current, new) is allowed


class TestRefundRules:
    def test_a_card_payment_can_be_refunded_in_part_latest_bill_first(self) -> None:
        allocations = plan_refund(payment(), 3_000)
        assert [(a.bill_id, a.amount_cents) for a in allocations] == [(2, 2_500), (1, 500)]

    def test_no_amount_refunds_what_is_left(self) -> None:
        paid = payment(refund_claims={2: 2_500})
        assert sum(a.amount_cents for a in plan_refund(paid, None)) == 7_500

    def test_never_beyond_what_is_left(self) -> None:
        with pytest.raises(RuleViolation) as refused:
            plan_refund(payment(refund_claims={1: 7_500}), 2_501)
        assert refused.value.code == "refund_exceeds_paid"

    def test_an_ach_payment_is_refunded_whole_only(self) -> None:
        with pytest.raises(RuleViolation) as refused:
            plan_refund(payment(method=Method.ACH), 5_000)
        assert refused.value.code == "ach_partial_refund"
        whole = plan_refund(payment(method=Method.ACH), 10_000)
        assert sum(a.amount_cents for a in whole) == 10_000

    def test_an_ach_payment_cannot_be_refunded_twice(self) -> None:
        with pytest.raises(RuleViolation) as refused:
            plan_refund(payment(method=Method.ACH, refund_claims={1: 7_500, 2: 2_500}), None)
        assert refused.value.code == "refund_exceeds_paid"

    def test_a_pending_payment_cannot_be_refunded(self) -> None:
        with pytest.raises(RuleViolation) as refused:
            plan_refund(payment(status=TxnStatus.PENDING), None)
        assert refused.value.code == "payment_not_settled"


class TestLedgerPlanning:
    def proposed(self, method: Method = Method.ACH) -> Transaction:
        return payment(method=method, status=TxnStatus.PENDING, version=0)

    def test_an_ach_payment_is_pending_then_settles_into_paid_gl(self) -> None:
        begun = payment_change(None, self.proposed(), TxnStatus.PENDING, NOW, "evt_1")
        assert begun is not None and not begun.ledger
        assert {d.bill_id: d.pending_cents for d in begun.bills} == {1: 7_500, 2: 2_500}
        pending = begun.txns[0].txn
        settled = payment_change(pending, self.proposed(), TxnStatus.SUCCEEDED, NOW, "evt_2")
        assert settled is not None
        assert [e.kind for e in settled.ledger] == [EntryKind.PAYMENT]
        assert {(d.bill_id, d.paid_gl_cents, d.pending_cents) for d in settled.bills} == {
            (1, 7_500, -7_500),
            (2, 2_500, -2_500),
        }
        assert settled.txns[0].expected_version == pending.version

    def test_a_settlement_seen_before_the_completion_records_the_payment_once(self) -> None:
        settled = payment_change(None, self.proposed(), TxnStatus.SUCCEEDED, NOW, "evt_2")
        assert settled is not None
        late = payment_change(settled.txns[0].txn, self.proposed(), TxnStatus.PENDING, NOW, "evt_1")
        assert late is None

    def test_a_failed_ach_payment_releases_the_pending_money_and_records_nothing(self) -> None:
        begun = payment_change(None, self.proposed(), TxnStatus.PENDING, NOW, "evt_1")
        assert begun is not None
        failed = payment_change(begun.txns[0].txn, self.proposed(), TxnStatus.FAILED, NOW, "evt_3")
        assert failed is not None and not failed.ledger
        assert all(d.paid_gl_cents == 0 and d.pending_cents < 0 for d in failed.bills)

    def test_a_refund_lowers_paid_gl_when_it_succeeds_and_a_later_failure_restores_it(self) -> None:
        paid = payment()
        allocations = plan_refund(paid, 3_000)
        refund = replace(
            paid,
            id="rf_1",
            kind=TxnKind.REFUND,
            status=TxnStatus.PENDING,
            amount_cents=3_000,
            allocations=allocations,
            payment_id=paid.id,
            version=1,
        )
        requested = refund_request_change(paid, refund, NOW)
        claimed = requested.txns[1].txn
        assert claimed.claimed_cents == 3_000 and not requested.bills
        done = refund_change(refund, claimed, TxnStatus.SUCCEEDED, NOW, "evt_r1")
        assert done is not None
        assert sum(d.paid_gl_cents for d in done.bills) == -3_000
        assert done.ledger[0].amount_cents == -3_000
        returned = refund_change(
            done.txns[0].txn, done.txns[1].txn, TxnStatus.FAILED, NOW, "evt_r2"
        )
        assert returned is not None
        assert returned.ledger[0].kind is EntryKind.REVERSAL
        assert sum(d.paid_gl_cents for d in returned.bills) == 3_000
        assert returned.txns[1].txn.refundable_cents == 10_000
        assert (
            refund_change(returned.txns[0].txn, returned.txns[1].txn, TxnStatus.SUCCEEDED, NOW, "x")
            is None
        )


def report(status: str, amount: int = 4_000, event: str = "") -> DisputeReport:
    return DisputeReport(status, amount, disputes.funds_reported(event, status, ()))


class TestDisputes:
    """Finding 9: every Stripe dispute status, inquiries apart from chargebacks."""

    def test_an_inquiry_flags_the_bills_and_moves_no_money(self) -> None:
        asked = dispute_change(payment(), report("warning_needs_response"), NOW, "evt_1")
        assert asked is not None and not asked.ledger
        assert {(d.inquiries_open, d.chargebacks_open, d.paid_gl_cents) for d in asked.bills} == {
            (1, 0, 0)
        }
        assert asked.txns[0].txn.refundable_cents == 10_000  # an inquiry can still be refunded

    def test_an_inquiry_closed_as_warning_closed_clears_its_flag(self) -> None:
        asked = dispute_change(payment(), report("warning_needs_response"), NOW, "evt_1")
        assert asked is not None
        closed = dispute_change(asked.txns[0].txn, report("warning_closed"), NOW, "evt_2")
        assert closed is not None and not closed.ledger
        assert {d.inquiries_open for d in closed.bills} == {-1}
        assert all(d.paid_gl_cents == 0 for d in closed.bills)

    def test_a_chargeback_takes_the_money_out_of_paid_gl_latest_bill_first(self) -> None:
        opened = dispute_change(payment(), report("needs_response"), NOW, "evt_1")
        assert opened is not None
        assert opened.ledger[0].kind is EntryKind.CHARGEBACK
        assert opened.ledger[0].amount_cents == -4_000
        assert [(d.bill_id, d.paid_gl_cents, d.disputed_cents) for d in opened.bills] == [
            (1, -1_500, 1_500),
            (2, -2_500, 2_500),
        ]
        assert opened.txns[0].txn.refundable_cents == 6_000

    def test_a_won_chargeback_puts_the_money_back_and_clears_the_flag(self) -> None:
        opened = dispute_change(payment(), report("needs_response"), NOW, "evt_1")
        assert opened is not None
        won = dispute_change(opened.txns[0].txn, report("won"), NOW, "evt_2")
        assert won is not None
        assert won.ledger[0].kind is EntryKind.CHARGEBACK_REVERSAL
        assert sum(d.paid_gl_cents for d in won.bills) == 4_000
        assert {d.chargebacks_open for d in won.bills} == {-1}
        assert won.txns[0].txn.refundable_cents == 10_000

    def test_a_lost_chargeback_keeps_the_money_out_and_counts_it_as_refunded(self) -> None:
        opened = dispute_change(payment(), report("needs_response"), NOW, "evt_1")
        assert opened is not None
        lost = dispute_change(opened.txns[0].txn, report("lost"), NOW, "evt_2")
        assert lost is not None and not lost.ledger  # the money moved at the withdrawal
        assert sum(d.paid_gl_cents for d in lost.bills) == 0
        assert sum(d.refunded_cents for d in lost.bills) == 4_000
        assert sum(d.disputed_cents for d in lost.bills) == -4_000
        assert {(d.chargebacks_open, d.chargebacks_lost) for d in lost.bills} == {(-1, 1)}

    def test_a_closed_dispute_never_reopens_and_a_repeat_changes_nothing(self) -> None:
        lost = dispute_change(payment(), report("lost"), NOW, "evt_1")
        assert lost is not None
        done = lost.txns[0].txn
        for later in ("needs_response", "under_review", "lost", "won", "warning_closed"):
            assert dispute_change(done, report(later), NOW, "evt_x") is None

    def test_prevented_moves_no_money(self) -> None:
        prevented = dispute_change(payment(), report("prevented"), NOW, "evt_1")
        assert prevented is not None and not prevented.ledger
        assert all(d == BillDelta(d.bill_id) for d in prevented.bills) or not prevented.bills


class TestPayableState:
    """Finding 1: only a bill awaiting payment is payable, whatever its balance."""

    @pytest.mark.parametrize(
        "state", [BillState.VOID, BillState.DELETED, BillState.DRAFT, BillState.PAID]
    )
    def test_given_a_bill_not_awaiting_payment_then_nothing_is_payable(
        self, state: BillState
    ) -> None:
        money = BillMoney(outstanding_clio_cents=10_000, state=state)
        assert money.payable_cents == 0

    def test_given_money_on_a_void_bill_then_it_is_to_refund_or_apply(self) -> None:
        money = BillMoney(
            outstanding_clio_cents=10_000,
            paid_gl_cents=10_000,
            baseline_outstanding_cents=10_000,
            state=BillState.VOID,
        )
        assert money.to_record_in_clio_cents == 0
        assert money.unpayable_cents == 10_000
        assert "paid_but_unpayable" in money.flags()


class TestOverpayment:
    """Finding 2: money beyond what the bill owes is flagged and to refund."""

    def test_given_a_bill_paid_twice_then_one_payment_is_to_record_and_one_to_refund(
        self,
    ) -> None:
        money = BillMoney(
            outstanding_clio_cents=20_000,
            paid_gl_cents=40_000,
            baseline_outstanding_cents=20_000,
        )
        assert money.to_record_in_clio_cents == 20_000
        assert money.overpaid_settled_cents == 20_000
        assert set(money.flags()) == {"payment_not_in_clio", "overpaid"}
