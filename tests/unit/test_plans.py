"""Payment plans (domain/plans.py, services/plans.py) on fakes: schedules, allocation oldest bill
first split into trust and operating, installments charged once per attempt whatever the
ticks, failures retried on the stated policy and told, plans ending when their bills are paid,
and the money invariants for every ordering of an installment's webhooks."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billbridge.domain.errors import RuleViolation
from billbridge.domain.ledger import EntryKind
from billbridge.domain.payments import Method
from billbridge.domain.plans import (
    RETRY_AFTER_DAYS,
    Every,
    InstallmentStatus,
    PlanSettings,
    PlanStatus,
    add_months,
    check_plan_request,
    schedule,
)
from tests.unit.pay_harness import FIRM, Pay

TODAY = date(2026, 11, 1)  # the fakes' T0


# --- schedules -----------------------------------------------------------------------------------


def test_given_a_total_and_an_installment_then_equal_installments_and_the_last_the_remainder() -> (
    None
):
    plan = schedule(100_000, 30_000, Every.MONTH, date(2026, 1, 31))
    assert [i.amount_cents for i in plan] == [30_000, 30_000, 30_000, 10_000]
    # A month without the 31st takes its last day; the next month its 31st again.
    assert [i.due_on for i in plan] == [
        date(2026, 1, 31),
        date(2026, 2, 28),
        date(2026, 3, 31),
        date(2026, 4, 30),
    ]


def test_given_weekly_then_seven_days_apart() -> None:
    plan = schedule(10_000, 5_000, Every.WEEK, date(2026, 12, 28))
    assert [i.due_on for i in plan] == [date(2026, 12, 28), date(2027, 1, 4)]


@given(
    total=st.integers(min_value=1, max_value=10_000_000),
    installment=st.integers(min_value=1, max_value=1_000_000),
    every=st.sampled_from(list(Every)),
    start=st.dates(min_value=date(2026, 1, 1), max_value=date(2030, 12, 31)),
)
def test_property_a_schedule_pays_exactly_the_total_in_order(
    total: int, installment: int, every: Every, start: date
) -> None:
    if total // installment > 2_000:
        return  # schedules that long are refused by the limits anyway
    plan = schedule(total, installment, every, start)
    amounts = [i.amount_cents for i in plan]
    assert sum(amounts) == total
    assert all(a == installment for a in amounts[:-1]) and 0 < amounts[-1] <= installment
    dates = [i.due_on for i in plan]
    assert dates == sorted(dates) and len(set(dates)) == len(dates) and dates[0] == start


@given(
    start=st.dates(min_value=date(2026, 1, 1), max_value=date(2030, 12, 31)),
    months=st.integers(min_value=0, max_value=60),
)
def test_property_a_month_later_keeps_the_day_or_the_months_last(start: date, months: int) -> None:
    later = add_months(start, months)
    assert (later.year - start.year) * 12 + later.month - start.month == months
    assert later.day == start.day or (later.day < start.day and (later + timedelta(1)).day == 1)


@pytest.mark.parametrize(
    ("installment", "start", "code"),
    [
        (1_000, TODAY, "installment_too_small"),  # below the firm's minimum
        (5_000, TODAY - timedelta(days=1), "start_in_past"),
        (100_000, TODAY, "installment_too_large"),
        (5_000, TODAY + timedelta(days=61), "start_too_late"),
    ],
)
def test_given_a_clients_plan_outside_the_firms_limits_then_refused(
    installment: int, start: date, code: str
) -> None:
    with pytest.raises(RuleViolation) as refused:
        check_plan_request(100_000, installment, start, TODAY, PlanSettings())
    assert refused.value.code == code


def test_given_more_installments_than_the_firm_allows_then_refused() -> None:
    with pytest.raises(RuleViolation) as refused:
        check_plan_request(100_000, 5_000, TODAY, TODAY, PlanSettings(max_installments=12))
    assert refused.value.code == "too_many_installments"


# --- the service -----------------------------------------------------------------------------


class Plans(Pay):
    def __init__(self) -> None:
        super().__init__()
        self.plans = self.world.payment_plans()

    def active_plan(
        self,
        bill_ids: list[int],
        installment: int,
        every: Every = Every.MONTH,
        method: Method = Method.CARD,
        start: date = TODAY,
    ) -> str:
        plan = self.plans.create(FIRM, bill_ids, installment, every, start)
        assert plan.status is PlanStatus.AWAITING_METHOD
        view = self.plans.start_setup(
            plan, method, "tok", "Demo Law", "Acme Ltd", mandate_accepted=True
        )
        session_id = view.setup_url.rsplit("/", 1)[1]
        assert self.deliver(self.world.stripe.save_method(session_id)) == ["applied"]
        return plan.id

    def plan(self, plan_id: str):  # type: ignore[no-untyped-def]
        return self.plans.get(FIRM, plan_id)

    def tick(self, day: date) -> None:
        self.world.clock.now = self.world.clock.now.replace(
            year=day.year, month=day.month, day=day.day
        )
        self.plans.run_due(day)

    def paid_gl(self, bill_id: int) -> int:
        return self.money(bill_id).money.paid_gl_cents


@pytest.fixture
def plans() -> Plans:
    return Plans()


def test_given_a_plan_when_its_dates_come_then_each_installment_is_charged_oldest_bill_first(
    plans: Plans,
) -> None:
    trust = plans.bill(3, 6_000, kind="trust_request")  # due soonest (bill id % 28 days)
    invoice = plans.bill(5, 14_000)
    plan_id = plans.active_plan([invoice, trust], 10_000)

    plans.tick(TODAY)

    first = plans.plan(plan_id).installments[0]
    assert first.status is InstallmentStatus.PAID
    # Oldest due first: the trust request in full, then 4,000 of the invoice, one charge each.
    charged = {c.destination_account_id: c.amount_cents for c in plans.world.stripe.charges}
    assert charged == {"acct_trust": 6_000, "acct_operating": 4_000}
    # The platform's fee as on checkout: operating parts only, never trust money.
    fees = {c.destination_account_id: c.application_fee_cents for c in plans.world.stripe.charges}
    assert fees["acct_trust"] == 0 and fees["acct_operating"] == 146  # 2.9% + 30 cents
    assert (plans.paid_gl(trust), plans.paid_gl(invoice)) == (6_000, 4_000)

    plans.tick(add_months(TODAY, 1))  # the last installment: what is left

    plan = plans.plan(plan_id)
    assert plan.status is PlanStatus.COMPLETED
    assert [i.status for i in plan.installments] == [InstallmentStatus.PAID] * 2
    assert (plans.paid_gl(trust), plans.paid_gl(invoice)) == (6_000, 14_000)


def test_given_duplicate_ticks_then_an_installment_is_charged_once(plans: Plans) -> None:
    bill = plans.bill(1, 30_000)
    plan_id = plans.active_plan([bill], 10_000)

    for _ in range(3):
        plans.tick(TODAY)
        plans.tick(TODAY + timedelta(days=1))

    assert len({c.idempotency_key for c in plans.world.stripe.charges}) == 1
    assert plans.paid_gl(bill) == 10_000
    payments = [e for e in plans.world.payments.ledger if e.kind is EntryKind.PAYMENT]
    assert len(payments) == 1
    assert plans.plan(plan_id).installments[1].status is InstallmentStatus.SCHEDULED


def test_given_a_tick_that_died_after_claiming_then_the_next_charges_with_the_same_key(
    plans: Plans,
) -> None:
    bill = plans.bill(1, 30_000)
    plan_id = plans.active_plan([bill], 10_000)
    plans.world.stripe.charge_off_session = _die  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        plans.plans.charge_due(FIRM, plan_id, TODAY)
    assert plans.plan(plan_id).installments[0].status is InstallmentStatus.CHARGING
    del plans.world.stripe.charge_off_session  # the real fake again

    plans.tick(TODAY)

    assert plans.plan(plan_id).installments[0].status is InstallmentStatus.PAID
    assert [c.idempotency_key for c in plans.world.stripe.charges] == [
        f"installment-{plan_id}-1-1-operating"
    ]


def _die(charge: object) -> object:
    raise RuntimeError("the Lambda timed out before Stripe answered")


def test_given_a_declined_installment_then_told_retried_after_the_policy_days_and_paid(
    plans: Plans,
) -> None:
    bill = plans.bill(1, 30_000)
    plan_id = plans.active_plan([bill], 10_000)
    plans.world.stripe.card_outcome = "card_declined"

    plans.tick(TODAY)

    first = plans.plan(plan_id).installments[0]
    assert first.status is InstallmentStatus.RETRY_SCHEDULED
    assert first.next_attempt_on == TODAY + timedelta(days=RETRY_AFTER_DAYS[0])
    assert first.failure == "card_declined" and plans.paid_gl(bill) == 0
    told = plans.world.mailer.sent
    assert sorted(m.to[0] for m in told) == ["billing@firm.test", "client@example.com"]
    assert "$100.00" in told[0].subject and "card was declined" in told[0].text
    assert "try again on 2026-11-04" in told[0].text

    plans.tick(TODAY + timedelta(days=1))  # not yet
    assert len(plans.world.stripe.charge_answers) == 1

    plans.world.stripe.card_outcome = "succeeded"
    plans.tick(TODAY + timedelta(days=RETRY_AFTER_DAYS[0]))

    first = plans.plan(plan_id).installments[0]
    assert (first.status, first.attempts) == (InstallmentStatus.PAID, 2)
    assert plans.paid_gl(bill) == 10_000
    assert len(plans.world.mailer.sent) == 2  # the success tells nobody of a failure


def test_given_every_attempt_fails_then_the_installment_fails_and_the_plan_goes_on(
    plans: Plans,
) -> None:
    bill = plans.bill(1, 30_000)
    plan_id = plans.active_plan([bill], 10_000)
    plans.world.stripe.card_outcome = "authentication_required"
    day = TODAY
    for wait in (*RETRY_AFTER_DAYS, 0):
        plans.tick(day)
        day += timedelta(days=wait)

    plan = plans.plan(plan_id)
    assert plan.installments[0].status is InstallmentStatus.FAILED
    assert plan.installments[0].attempts == 3
    assert plan.status is PlanStatus.ACTIVE
    assert len(plans.world.mailer.sent) == 6  # client and firm, each attempt
    assert "will not try this installment again" in plans.world.mailer.sent[-1].text

    plans.world.stripe.card_outcome = "succeeded"
    plans.tick(add_months(TODAY, 1))
    plans.tick(add_months(TODAY, 2))  # the last takes what the failed one left
    assert plans.paid_gl(bill) == 30_000
    assert plans.plan(plan_id).status is PlanStatus.COMPLETED


def test_given_the_bills_paid_elsewhere_then_the_plan_ends_without_charging(
    plans: Plans,
) -> None:
    bill = plans.bill(1, 30_000)
    plan_id = plans.active_plan([bill], 10_000)
    plans.tick(TODAY)
    stored = plans.money(bill)  # the client paid the rest by cheque: Clio shows it paid
    plans.world.bills.items[(FIRM, bill)] = replace(
        stored, bill=replace(stored.bill, outstanding_clio_cents=0)
    )

    plans.tick(add_months(TODAY, 1))

    plan = plans.plan(plan_id)
    assert plan.status is PlanStatus.COMPLETED
    assert [i.status for i in plan.installments] == [
        InstallmentStatus.PAID,
        InstallmentStatus.CANCELED,
        InstallmentStatus.CANCELED,
    ]
    assert len(plans.world.stripe.charge_answers) == 1
    assert plans.plans.covering(FIRM, [bill]) == {}


def test_given_a_canceled_plan_then_nothing_more_is_charged_and_reminders_resume(
    plans: Plans,
) -> None:
    bill = plans.bill(1, 30_000)
    plan_id = plans.active_plan([bill], 10_000)
    assert plans.plans.covering(FIRM, [bill]) == {bill: plan_id}

    plans.plans.cancel(FIRM, plan_id)
    plans.tick(TODAY)

    assert plans.plan(plan_id).status is PlanStatus.CANCELED
    assert plans.world.stripe.charges == []
    assert plans.plans.covering(FIRM, [bill]) == {}
    with pytest.raises(RuleViolation):
        plans.plans.cancel(FIRM, plan_id)


def test_given_a_bill_in_a_plan_when_another_plan_asks_for_it_then_refused(plans: Plans) -> None:
    bill = plans.bill(1, 30_000)
    plans.active_plan([bill], 10_000)
    with pytest.raises(RuleViolation) as refused:
        plans.plans.create(FIRM, [bill], 10_000, Every.MONTH, TODAY)
    assert refused.value.code == "bill_in_plan"


def test_given_two_clients_bills_then_one_plan_cannot_cover_them(plans: Plans) -> None:
    plans.bill(1)
    from tests.fakes import stored_bill

    plans.world.bills.items[(FIRM, 2)] = stored_bill(2, client_id=8)
    with pytest.raises(RuleViolation) as refused:
        plans.plans.create(FIRM, [1, 2], 10_000, Every.MONTH, TODAY)
    assert refused.value.code == "mixed_clients"


def test_given_a_bank_plan_without_the_mandate_accepted_then_refused(plans: Plans) -> None:
    plans.bill(1, 30_000)
    plan = plans.plans.create(FIRM, [1], 10_000, Every.MONTH, TODAY)
    with pytest.raises(RuleViolation) as refused:
        plans.plans.start_setup(plan, Method.ACH, "tok", "Demo Law", "Acme", False)
    assert refused.value.code == "mandate_not_accepted"
    view = plans.plans.start_setup(plan, Method.ACH, "tok", "Demo Law", "Acme", True)
    assert view.plan.mandate_text is not None
    assert "authorize Demo Law to debit it" in view.plan.mandate_text


# --- every ordering of an ACH installment's reports ---------------------------------------------


def test_given_an_ach_installments_reports_in_every_order_then_the_money_is_counted_once() -> None:
    """The tick's answer (processing), Stripe's `processing` and `succeeded` events, and a
    duplicate of each, in every order: Paid (GL) and the ledger end the same, never double."""
    base = Plans()
    bill = base.bill(1, 30_000)
    plan_id = base.active_plan([bill], 10_000, method=Method.ACH)
    base.tick(TODAY)  # the debit is processing: the tick recorded Stripe's answer
    (intent_id,) = base.world.stripe.intents
    processing = base.world.stripe.intent_events(intent_id)[0]
    succeeded = base.world.stripe.settle_intent(intent_id)[0]
    saved = base.world.snapshot()
    saved_plans = dict(base.world.plans.plans)
    outcomes = set()
    for order in itertools.permutations([processing, succeeded, processing, succeeded]):
        base.world.restore(saved)
        base.world.plans.plans = dict(saved_plans)
        assert base.money(bill).money.pending_cents == 10_000
        for event in order:
            base.deliver([event])
            money = base.money(bill).money
            assert money.paid_gl_cents + money.pending_cents == 10_000  # never counted twice
        payments = [e for e in base.world.payments.ledger if e.kind is EntryKind.PAYMENT]
        installment = base.plan(plan_id).installments[0]
        outcomes.add(
            (
                base.paid_gl(bill),
                base.money(bill).money.pending_cents,
                len(payments),
                installment.status,
            )
        )
    assert outcomes == {(10_000, 0, 1, InstallmentStatus.PAID)}


def test_given_an_ach_installment_returned_by_the_bank_then_it_is_retried() -> None:
    plans = Plans()
    bill = plans.bill(1, 30_000)
    plan_id = plans.active_plan([bill], 10_000, method=Method.ACH)
    plans.tick(TODAY)
    (intent_id,) = plans.world.stripe.intents

    plans.deliver(plans.world.stripe.settle_intent(intent_id, succeeded=False))

    first = plans.plan(plan_id).installments[0]
    assert (first.status, first.failure) == (
        InstallmentStatus.RETRY_SCHEDULED,
        "insufficient_funds",
    )
    assert plans.money(bill).money.pending_cents == 0 and plans.paid_gl(bill) == 0
    assert len(plans.world.mailer.sent) == 2


def test_given_an_installments_webhook_before_the_ticks_own_record_then_counted_once(
    plans: Plans,
) -> None:
    """Stripe's `payment_intent.succeeded` can arrive while the tick is still recording
    Stripe's answer: whichever comes first records the payment, the other changes nothing."""
    bill = plans.bill(1, 30_000)
    plan_id = plans.active_plan([bill], 10_000)
    stripe = plans.world.stripe
    answer_of = type(stripe).charge_off_session

    def charge_then_webhook(charge):  # type: ignore[no-untyped-def]
        result = answer_of(stripe, charge)
        assert plans.deliver(stripe.intent_events(result.payment_intent_id)) == ["applied"]
        return result

    stripe.charge_off_session = charge_then_webhook  # type: ignore[method-assign]
    plans.tick(TODAY)

    assert plans.paid_gl(bill) == 10_000
    payments = [e for e in plans.world.payments.ledger if e.kind is EntryKind.PAYMENT]
    assert len(payments) == 1
    assert plans.plan(plan_id).installments[0].status is InstallmentStatus.PAID


def test_given_an_active_plan_then_reminders_leave_its_bills_alone_until_it_ends(
    plans: Plans,
) -> None:
    bill, other = plans.bill(1, 30_000), plans.bill(2, 5_000)
    waiting = plans.plans.create(FIRM, [bill], 10_000, Every.MONTH, TODAY)
    assert plans.world.plans.covered_bill_ids(FIRM, [bill, other]) == set()  # not active yet
    plans.plans.cancel(FIRM, waiting.id)
    plan_id = plans.active_plan([bill], 10_000)
    assert plans.world.plans.covered_bill_ids(FIRM, [bill, other]) == {bill}
    plans.plans.cancel(FIRM, plan_id)
    assert plans.world.plans.covered_bill_ids(FIRM, [bill, other]) == set()


# --- installments hold their bills as checkouts do ----------------------------------------------


def test_given_a_checkout_between_an_installments_claim_and_its_hold_then_stripe_is_not_asked(
    plans: Plans,
) -> None:
    """The one-off checkout wins the bill while the tick is between claiming the attempt and
    holding its money: the installment's hold is conditional on the bill's money_version, so
    it fails, the tick gives the claim up without asking Stripe, and the installment is charged
    on a later tick once the checkout's hold has ended."""
    bill = plans.bill(1, 20_000)
    token = plans.link("pl_1", bill)
    plan_id = plans.active_plan([bill], 15_000)
    sessions: list[str] = []

    def client_checks_out_meanwhile(change):  # type: ignore[no-untyped-def]
        assert change.holds[0].link_id == f"plan:{plan_id}"
        ((_, session),) = plans.page.checkout(token, [bill], None, Method.CARD)
        sessions.append(session.id)

    plans.world.payments.before_hold = client_checks_out_meanwhile
    plans.tick(TODAY)

    assert plans.world.stripe.charges == []  # Stripe was never asked
    first = plans.plan(plan_id).installments[0]
    assert (first.status, first.attempts, first.parts) == (InstallmentStatus.SCHEDULED, 0, ())
    (held,) = plans.world.payments.holds(FIRM, [bill], plans.world.clock())
    assert (held.session_id, held.amount_cents) == (sessions[0], 20_000)

    plans.deliver(plans.world.stripe.expire_event(sessions[0]))  # the client did not pay
    plans.tick(TODAY)

    assert [c.amount_cents for c in plans.world.stripe.charges] == [15_000]
    assert plans.paid_gl(bill) == 15_000
    assert plans.plan(plan_id).installments[0].status is InstallmentStatus.PAID
    assert plans.world.payments.holds(FIRM, [bill], plans.world.clock()) == []


def test_given_an_installment_in_flight_then_a_checkout_may_take_only_what_it_left(
    plans: Plans,
) -> None:
    """While Stripe answers an installment (here: its answer lost, the tick died), its money
    is held on the bill: the pay page's checkout on any link counts it."""
    from billbridge.domain.errors import PaymentProviderError

    bill = plans.bill(1, 20_000)
    token = plans.link("pl_1", bill)
    plan_id = plans.active_plan([bill], 15_000)
    stripe = plans.world.stripe
    charge = type(stripe).charge_off_session

    def answer_lost(request):  # type: ignore[no-untyped-def]
        charge(stripe, request)
        raise PaymentProviderError("no answer", definitive=False)

    stripe.charge_off_session = answer_lost  # type: ignore[method-assign]
    plans.tick(TODAY)
    (held,) = plans.world.payments.holds(FIRM, [bill], plans.world.clock())
    assert (held.link_id, held.amount_cents) == (f"plan:{plan_id}", 15_000)

    with pytest.raises(RuleViolation) as refused:
        plans.page.checkout(token, [bill], 20_000, Method.CARD)
    assert refused.value.code == "amount_exceeds_payable"
    ((_, session),) = plans.page.checkout(token, [bill], None, Method.CARD)
    assert session.amount_cents == 5_000
    assert stripe.expired == []  # the installment is not one of the link's own sessions


def test_given_a_checkout_holding_the_whole_bill_on_the_day_then_the_plan_waits_not_ends(
    plans: Plans,
) -> None:
    """Finding: a bill held by an open checkout counted as paid, so the tick ended the plan
    (completed, its installments canceled) although the client might never pay that session."""
    bill = plans.bill(1, 20_000)
    token = plans.link("pl_1", bill)
    plan_id = plans.active_plan([bill], 15_000)
    ((_, session),) = plans.page.checkout(token, [bill], None, Method.CARD)

    plans.tick(TODAY)

    assert plans.plan(plan_id).status is PlanStatus.ACTIVE
    assert plans.plan(plan_id).installments[0].status is InstallmentStatus.SCHEDULED
    assert plans.world.stripe.charges == []
    plans.deliver(plans.world.stripe.expire_event(session.id))
    plans.tick(TODAY)
    assert plans.paid_gl(bill) == 15_000
