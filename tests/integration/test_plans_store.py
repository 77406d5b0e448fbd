"""Payment plans on DynamoDB (moto) and Stripe's wire (the sandbox, through StripeGateway and
the official library): the client saves a card by Checkout `mode=setup`, installments are
charged off-session with their idempotency keys, declines come back as failed charges, and two
plans can never hold one bill."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

import pytest
import requests

from billbridge.adapters.dynamo import DynamoBillRepository, DynamoPaymentLinkRepository
from billbridge.adapters.dynamo_payments import DynamoPaymentStore
from billbridge.adapters.dynamo_plans import DynamoPlanStore
from billbridge.adapters.stripe_gateway import StripeGateway
from billbridge.domain.bills import BillKind
from billbridge.domain.errors import RuleViolation
from billbridge.domain.payments import Method
from billbridge.domain.plans import Every, InstallmentStatus, PlanStatus
from billbridge.services.payments import StripeEvents
from billbridge.services.plans import PaymentPlans
from billbridge.services.ports import PaymentAccounts, StaleTransaction
from local.aws_template import create_dynamodb_tables
from local.stripe_sandbox import StripeSandbox
from tests.fakes import FakeMailer, FakeSettings
from tests.integration.test_store import make_bill, no_sleep, template

FIRM = "firm-plans"
NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
TODAY = NOW.date()
API_KEY = "sk_test_plans"
_numbers = itertools.count(1)


@dataclass
class World:
    plans: PaymentPlans
    store: DynamoPlanStore
    bills: DynamoBillRepository
    events: StripeEvents
    sandbox: StripeSandbox
    mailer: FakeMailer

    def paid(self, bill_id: int) -> int:
        stored = self.bills.get(FIRM, bill_id)
        assert stored is not None
        return stored.paid_gl_cents

    def save_card(self, plan_id: str, test_method: str | None = None) -> None:
        plan = self.plans.get(FIRM, plan_id)
        view = self.plans.start_setup(plan, Method.CARD, "tok", "Demo Law", "Acme", False)
        session_id = str(view.setup_url).rsplit("/", 1)[1]
        body: dict[str, Any] = {"method": "card"}
        if test_method:
            body["test_method"] = test_method
        paid = requests.post(
            f"{self.sandbox.url}/_sandbox/checkout_sessions/{session_id}/pay", json=body, timeout=10
        )
        assert paid.status_code == 200, paid.text
        session = paid.json()["checkout_session"]
        assert self.plans.setup_completed(session) == "applied"


@pytest.fixture
def world(aws: Any) -> Iterator[World]:
    number = next(_numbers)
    table = create_dynamodb_tables(aws, template(), name_for=lambda t: f"plans-{t}-{number}")[
        "AppTable"
    ]
    bills = DynamoBillRepository(aws, table, sleep=no_sleep)
    bills.save_clio_bills(
        FIRM,
        [
            make_bill(1, total_cents=10_000),
            replace(make_bill(2, total_cents=4_000), kind=BillKind.TRUST_REQUEST),
        ],
        NOW,
    )
    links = DynamoPaymentLinkRepository(aws, table)
    payments = DynamoPaymentStore(aws, table, sleep=no_sleep)
    sandbox = StripeSandbox(port=0, api_key=API_KEY)
    sandbox.start()
    gateway = StripeGateway(API_KEY, api_base=sandbox.url)
    trust = gateway._client.v1.accounts.create(params={"type": "express"})
    operating = gateway._client.v1.accounts.create(params={"type": "express"})
    for account in (trust, operating):  # onboarded: destination charges need `transfers`
        done = requests.post(f"{sandbox.url}/_sandbox/accounts/{account.id}/complete", timeout=10)
        assert done.status_code == 200, done.text
    payments.save_payment_accounts(PaymentAccounts(FIRM, str(trust.id), str(operating.id)))
    store = DynamoPlanStore(aws, table, sleep=no_sleep)
    mailer = FakeMailer()
    plans = PaymentPlans(
        plans=store,
        bills=bills,
        links=links,
        store=payments,
        gateway=lambda: gateway,
        settings=FakeSettings(),
        mailer=lambda: mailer,
        pay_link_key=lambda: b"k" * 32,
        pay_base_url="https://pay.test",
        firm_notice_address="billing@firm.test",
        clock=lambda: NOW,
    )
    yield World(
        plans, store, bills, StripeEvents(payments, clock=lambda: NOW, plans=plans), sandbox, mailer
    )
    sandbox.stop()
    aws.delete_table(TableName=table)


def test_given_a_saved_card_then_installments_are_charged_on_stripe_and_recorded(
    world: World,
) -> None:
    plan = world.plans.create(FIRM, [1, 2], 7_000, Every.WEEK, TODAY)
    assert world.store.covering(FIRM, [1, 2]) == {}  # waiting for its method: not active yet
    world.save_card(plan.id)
    assert world.store.covering(FIRM, [1, 2]) == {1: plan.id, 2: plan.id}
    assert world.store.covered_bill_ids(FIRM, [1, 2, 3]) == {1, 2}  # the reminders' port
    assert world.store.due(TODAY) == [(FIRM, plan.id)]

    world.plans.run_due(TODAY)
    world.plans.run_due(TODAY)  # a duplicate tick

    stored = world.plans.get(FIRM, plan.id)
    assert stored.installments[0].status is InstallmentStatus.PAID
    assert stored.method is not None and stored.method.label == "Visa ending 4242"
    # Same due dates: the lower bill id first, so the invoice takes the whole installment.
    assert (world.paid(1), world.paid(2)) == (7_000, 0)

    world.plans.run_due(date(2026, 12, 2))
    stored = world.plans.get(FIRM, plan.id)
    assert stored.status is PlanStatus.COMPLETED
    assert (world.paid(1), world.paid(2)) == (10_000, 4_000)
    assert world.store.covering(FIRM, [1, 2]) == {} and world.store.due(date(2027, 1, 1)) == []
    intents = [o for o in world.sandbox.state.objects.values() if o["object"] == "payment_intent"]
    # The second installment in two parts, one per account: operating 3,000, trust 4,000.
    assert sorted(i["amount"] for i in intents) == [3_000, 4_000, 7_000]
    assert all(i["status"] == "succeeded" for i in intents)
    destinations = {i["amount"]: i["transfer_data"]["destination"] for i in intents}
    fees = {i["amount"]: i["application_fee_amount"] for i in intents}
    assert fees[4_000] is None and fees[3_000] > 0  # no fee ever taken from the trust part
    assert destinations[4_000] != destinations[3_000] == destinations[7_000]


def test_given_a_card_declined_on_stripe_then_the_installment_is_retried(world: World) -> None:
    plan = world.plans.create(FIRM, [1], 5_000, Every.MONTH, TODAY)
    world.save_card(plan.id, "pm_card_chargeCustomerFail")

    world.plans.run_due(TODAY)

    first = world.plans.get(FIRM, plan.id).installments[0]
    assert (first.status, first.failure) == (InstallmentStatus.RETRY_SCHEDULED, "card_declined")
    assert world.paid(1) == 0
    assert {m.to[0] for m in world.mailer.sent} == {"ap@acme.example", "billing@firm.test"}


def test_given_two_plans_racing_for_one_bill_then_the_second_is_refused(world: World) -> None:
    first = world.plans.create(FIRM, [1], 5_000, Every.MONTH, TODAY)
    # The second was planned before the first was written: the bill's marker refuses it.
    other = replace(first, id="plan_other", version=0)
    with pytest.raises(RuleViolation) as refused:
        world.store.save(other, NOW)
    assert refused.value.code == "bill_in_plan"
    assert world.store.get(FIRM, "plan_other") is None


def test_given_a_stale_plan_then_its_save_is_refused(world: World) -> None:
    plan = world.plans.create(FIRM, [1], 5_000, Every.MONTH, TODAY)
    world.plans.cancel(FIRM, plan.id)
    with pytest.raises(StaleTransaction):
        world.store.save(replace(plan, status=PlanStatus.CANCELED), NOW)


def test_given_saved_methods_on_dynamodb_then_kept_once_per_client_and_forgotten_for_good(
    world: World,
) -> None:
    from datetime import timedelta

    from billbridge.domain.plans import SavedMethod
    from billbridge.domain.saved_methods import StoredMethod, saved_method_id

    def kept(client_id: int, pm: str) -> StoredMethod:
        return StoredMethod(
            id=saved_method_id(FIRM, client_id, pm),
            firm_id=FIRM,
            client_id=client_id,
            customer_id="cus_1",
            method=SavedMethod(pm, Method.CARD, "Visa ending 4242"),
            saved_at=NOW,
            consent_text="By saving this card you allow Demo Law to charge it.",
        )

    store = world.store
    card = kept(12, "pm_a")
    assert store.save_method(card) is True
    assert store.save_method(card) is False  # a repeat keeps nothing twice
    assert store.save_method(kept(123, "pm_b")) is True  # another client, a longer id
    assert store.saved_methods(FIRM, 12) == [card]
    assert [m.method.payment_method_id for m in store.saved_methods(FIRM, 123)] == ["pm_b"]
    assert store.saved_methods("another-firm", 12) == []
    later = NOW + timedelta(minutes=5)
    assert store.forget_method(FIRM, 12, card.id, later) == card
    assert store.forget_method(FIRM, 12, card.id, later) is None  # once
    (tombstone,) = store.saved_methods(FIRM, 12)
    assert tombstone.forgotten_at == later and not tombstone.live
    assert store.save_method(card) is False  # a late webhook never brings it back
    assert store.forget_method(FIRM, 12, "sm_none", later) is None
