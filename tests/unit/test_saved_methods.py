"""Saved cards and bank accounts on the pay page (issue 12), on fakes: saved at checkout for
that client of that firm, once; paid with later through the same holds, split and ledger as a
checkout; forgotten (detached) for good; never offered to another client's link."""

from __future__ import annotations

from typing import Any

import pytest

from billbridge.domain.errors import NotFound, RuleViolation
from billbridge.domain.payments import Account, Method
from tests.fakes import stored_bill
from tests.unit.pay_harness import FIRM, Pay


class Saved(Pay):
    def __init__(self) -> None:
        super().__init__()
        from billbridge import bootstrap
        from billbridge.config import PayConfig
        from tests.fakes import fake_config

        self.saved = bootstrap.build_saved_methods(fake_config(PayConfig), self.world.adapters())

    def client_bill(
        self, bill_id: int, total: int, client_id: int = 7, kind: str = "invoice"
    ) -> int:
        self.world.bills.items[(FIRM, bill_id)] = stored_bill(
            bill_id, total=total, client_id=client_id, kind=kind
        )
        return bill_id

    def save_by_paying(
        self,
        token: str,
        bill_ids: list[int],
        amount: int | None = None,
        test: str = "4242",
        method: str = "card",
    ) -> list[dict[str, Any]]:
        sessions = self.page.checkout(
            token,
            bill_ids,
            amount,
            Method(method),
            save_method=True,
            mandate_accepted=method == "ach",
        )
        events = []
        for _, session in sessions:
            events.extend(self.world.stripe.pay(session.id, test=test))
        return events

    def method_id(self, token: str) -> str:
        _, methods, _ = self.saved.for_token(token)
        (only,) = methods
        return only.id

    def saved_on_link(self) -> str:
        """The token of link pl_1 (bill 1, $200.00), on which the client saved a card paying
        $50.00."""
        token = self.link("pl_1", self.client_bill(1, 20_000))
        self.deliver(self.save_by_paying(token, [1], 5_000))
        return token

    def later_link(self, test: str = "4242", method: str = "card") -> str:
        """A card (or bank account) saved by paying bill 1 ($100.00) in full on link pl_1; the
        token of the client's later link pl_2, with bill 2 ($200.00) to pay with it."""
        first = self.link("pl_1", self.client_bill(1, 10_000))
        self.deliver(self.save_by_paying(first, [1], test=test, method=method))
        return self.link("pl_2", self.client_bill(2, 20_000))


def test_ticking_save_makes_checkout_for_the_clients_customer_and_the_webhook_keeps_it_once() -> (
    None
):
    pay = Saved()
    bill = pay.client_bill(1, 20_000)
    token = pay.link("pl_1", bill)
    ((_, session),) = pay.page.checkout(token, [bill], 5_000, Method.CARD, save_method=True)
    sent = pay.world.stripe.sessions[session.id]
    # What the gateway sends Stripe: the Customer (not customer_email) and setup_future_usage.
    assert sent["customer"] == pay.world.plans.customer(FIRM, 7)
    assert sent["customer_email"] is None
    assert sent["payment_intent_data"]["setup_future_usage"] == "off_session"
    assert sent["metadata"]["save_method"] == "1" and sent["metadata"]["client_id"] == "7"
    events = pay.world.stripe.pay(session.id)
    assert pay.deliver(events) == ["applied"]
    assert pay.deliver(events) == ["duplicate"]  # the payment and the method, once
    _, methods, _ = pay.saved.for_token(token)
    assert [(m.method.label, m.display) for m in methods] == [
        ("Visa ending 4242", "Visa \u2022\u2022\u2022\u2022 4242")
    ]
    assert len(pay.world.plans.methods) == 1
    assert pay.money(bill).paid_gl_cents == 5_000


def test_without_the_tick_checkout_sends_the_email_and_nothing_is_saved() -> None:
    pay = Saved()
    bill = pay.client_bill(1, 20_000)
    token = pay.link("pl_1", bill)
    session_id = pay.checkout(token, [bill])
    sent = pay.world.stripe.sessions[session_id]
    assert sent["customer"] is None and sent["customer_email"] == "client@example.com"
    assert "setup_future_usage" not in sent["payment_intent_data"]
    pay.pay(session_id)
    assert pay.saved.for_token(token)[1] == []


def test_saving_a_bank_account_needs_the_debit_authorization() -> None:
    pay = Saved()
    token = pay.link("pl_1", pay.client_bill(1, 20_000))
    with pytest.raises(RuleViolation) as refused:
        pay.page.checkout(token, [1], None, Method.ACH, save_method=True)
    assert refused.value.code == "mandate_not_accepted"
    assert pay.world.stripe.sessions == {}


def test_a_later_link_of_the_client_pays_with_the_saved_card_into_trust_and_operating() -> None:
    pay = Saved()
    first = pay.link("pl_1", pay.client_bill(1, 20_000))
    pay.deliver(pay.save_by_paying(first, [1], 20_000))
    invoice = pay.client_bill(2, 30_000)
    trust = pay.client_bill(3, 10_000, kind="trust_request")
    later = pay.link("pl_2", invoice, trust)
    paid = pay.saved.pay(later, pay.method_id(later), [invoice, trust], None, "attempt-1")
    assert sorted((p.account, p.amount_cents, p.status) for p in paid.parts) == [
        (Account.OPERATING, 30_000, "succeeded"),
        (Account.TRUST, 10_000, "succeeded"),
    ]
    assert paid.message.startswith("Paid $")
    charges = pay.world.stripe.charges
    destinations = {c.metadata["account"]: c.destination_account_id for c in charges}
    assert destinations == {"trust": "acct_trust", "operating": "acct_operating"}
    fees = {c.metadata["account"]: c.application_fee_cents for c in charges}
    assert fees["trust"] == 0 and fees["operating"] > 0  # never a fee on trust money
    assert pay.money(invoice).paid_gl_cents == 30_000 and pay.money(trust).paid_gl_cents == 10_000
    assert pay.world.payments.holds(FIRM, [invoice, trust], pay.world.clock()) == []
    # The same attempt again (a retried request) charges nothing more.
    again = pay.saved.pay(later, pay.method_id(later), [invoice, trust], None, "attempt-1")
    assert len(pay.world.stripe.charges) == 2
    assert {p.txn_id for p in again.parts} == {p.txn_id for p in paid.parts}
    # Stripe's events about those PaymentIntents change nothing more, however often.
    events = [e for i in list(pay.world.stripe.intents) for e in pay.world.stripe.intent_events(i)]
    assert pay.deliver(events) == ["stale", "stale"]
    assert pay.deliver(events) == ["duplicate", "duplicate"]
    assert pay.money(invoice).paid_gl_cents == 30_000


def test_another_clients_link_never_sees_or_uses_the_method() -> None:
    pay = Saved()
    mine = pay.link("pl_1", pay.client_bill(1, 20_000))
    pay.deliver(pay.save_by_paying(mine, [1]))
    method_id = pay.method_id(mine)
    other = pay.link("pl_2", pay.client_bill(2, 20_000, client_id=8))
    assert pay.saved.for_token(other)[1] == []
    with pytest.raises(NotFound):
        pay.saved.pay(other, method_id, [2], None, "a")
    with pytest.raises(NotFound):
        pay.saved.forget(other, method_id)
    assert pay.world.stripe.charges == []


def test_a_card_that_needs_authentication_charges_nothing_and_falls_back_to_checkout() -> None:
    pay = Saved()
    later = pay.later_link(test="3184")
    paid = pay.saved.pay(later, pay.method_id(later), [2], None, "a")
    assert paid.needs_checkout is not None
    assert "confirm" in paid.message and "nothing was charged" in paid.message
    assert pay.money(2).paid_gl_cents == 0
    assert pay.world.payments.holds(FIRM, [2], pay.world.clock()) == []  # Checkout may take it
    session_id = pay.checkout(later, [2])
    pay.pay(session_id)
    assert pay.money(2).paid_gl_cents == 20_000


def test_a_saved_bank_account_debit_is_processing_until_stripe_settles_it() -> None:
    pay = Saved()
    later = pay.later_link(method="ach")
    paid = pay.saved.pay(later, pay.method_id(later), [2], None, "a")
    assert [p.status for p in paid.parts] == ["processing"]
    assert pay.money(2).pending_cents == 20_000 and pay.money(2).paid_gl_cents == 0
    (intent,) = [
        i for i, v in pay.world.stripe.intents.items() if v["metadata"]["link_id"] == "pl_2"
    ]
    assert pay.deliver(pay.world.stripe.settle_intent(intent)) == ["applied"]
    assert pay.money(2).paid_gl_cents == 20_000 and pay.money(2).pending_cents == 0


def test_forgetting_detaches_it_and_a_late_webhook_never_brings_it_back() -> None:
    pay = Saved()
    token = pay.link("pl_1", pay.client_bill(1, 20_000))
    events = pay.save_by_paying(token, [1], 5_000)
    pay.deliver(events)
    method_id = pay.method_id(token)
    forgotten = pay.saved.forget(token, method_id)
    assert pay.world.stripe.detached == [forgotten.method.payment_method_id]
    assert pay.saved.for_token(token)[1] == []
    pay.world.stripe.keys.clear()  # so a redelivered event is not a duplicate by its id alone
    for event in events:
        event = dict(event, id=event["id"] + "_late")
        pay.events.handle(event)
    assert pay.saved.for_token(token)[1] == []
    with pytest.raises(NotFound):
        pay.saved.pay(token, method_id, [1], None, "a")
    with pytest.raises(NotFound):
        pay.saved.forget(token, method_id)


def test_a_clients_plan_uses_the_saved_card_instead_of_a_second_setup() -> None:
    from billbridge.domain.plans import Every, PlanStatus

    pay = Saved()
    token = pay.saved_on_link()
    plans = pay.world.payment_plans()
    today = pay.world.clock().date()
    view = plans.client_create(token, [1], 5_000, Every.MONTH, today, Method.CARD, False)
    assert view.setup_url is None  # no Checkout in mode=setup
    assert pay.world.stripe.setups == {}
    assert view.plan.status is PlanStatus.ACTIVE
    assert view.plan.method is not None and view.plan.method.label == "Visa ending 4242"
    plans.run_due(today)
    (charge,) = pay.world.stripe.charges
    (card,) = pay.saved.for_token(token)[1]
    assert charge.payment_method_id == card.method.payment_method_id
    assert charge.customer_id == card.customer_id
    assert pay.money(1).paid_gl_cents == 10_000  # the checkout's 5,000 and the installment's


def test_a_bank_plan_does_not_take_a_saved_card_and_a_saved_method_in_a_plan_is_kept() -> None:
    from billbridge.domain.plans import Every

    pay = Saved()
    token = pay.saved_on_link()
    plans = pay.world.payment_plans()
    today = pay.world.clock().date()
    bank = plans.client_create(token, [1], 5_000, Every.MONTH, today, Method.ACH, True)
    assert bank.setup_url is not None  # no saved bank account: Stripe's setup page
    plans.cancel(FIRM, bank.plan.id)
    card_plan = plans.client_create(token, [1], 5_000, Every.MONTH, today, Method.CARD, False)
    (card,) = pay.saved.for_token(token)[1]
    with pytest.raises(RuleViolation) as refused:
        pay.saved.forget(token, card.id)
    assert refused.value.code == "method_in_plan"
    assert card_plan.plan.id in refused.value.message
    assert pay.world.stripe.detached == []


def _clio_lowers(pay: Saved, bill_id: int, outstanding: int) -> None:
    """Clio's balance of the bill falls (a cheque recorded there): the bill changed."""
    from dataclasses import replace

    stored = pay.money(bill_id)
    pay.world.bills.items[(FIRM, bill_id)] = replace(
        stored,
        bill=replace(stored.bill, outstanding_clio_cents=outstanding),
        money_version=stored.money_version + 1,
    )


def _intents(pay: Saved, link_id: str) -> list[str]:
    return [i for i, v in pay.world.stripe.intents.items() if v["metadata"]["link_id"] == link_id]


def _charged_by_stripe(pay: Saved, link_id: str) -> int:
    """What Stripe took on the link's payments (its PaymentIntents that succeeded)."""
    return sum(
        v["amount"]
        for v in pay.world.stripe.intents.values()
        if v["metadata"].get("link_id") == link_id and v["status"] == "succeeded"
    )


def test_a_retry_after_stripes_answer_was_lost_sends_the_first_request_and_records_it_once() -> (
    None
):
    """The request holds the bill and Stripe charges, but its answer never comes back; the bill
    then changes (Clio's balance falls) and the client's page retries with the same key. The
    retry sends the first request unchanged (kept before Stripe was called), so Stripe answers
    the first charge instead of refusing new parameters: the money is recorded once, and the
    overpayment it now makes is flagged."""
    from billbridge.domain.errors import PaymentProviderError

    pay = Saved()
    later = pay.later_link()
    method_id = pay.method_id(later)
    pay.world.stripe.lose_answers = 1
    with pytest.raises(PaymentProviderError):
        pay.saved.pay(later, method_id, [2], None, "key-1")
    assert _charged_by_stripe(pay, "pl_2") == 20_000  # Stripe did charge
    _clio_lowers(pay, 2, 15_000)
    again = pay.saved.pay(later, method_id, [2], None, "key-1")
    assert [(p.amount_cents, p.status) for p in again.parts] == [(20_000, "succeeded")]
    first, retried = [c for c in pay.world.stripe.charges if c.metadata["link_id"] == "pl_2"]
    assert retried == first  # the same request: Stripe answered the first charge
    assert pay.money(2).paid_gl_cents == _charged_by_stripe(pay, "pl_2") == 20_000
    assert "overpaid" in pay.money(2).money.flags()
    # The first charge's webhook, however often, changes nothing more.
    (intent,) = _intents(pay, "pl_2")
    events = pay.world.stripe.intent_events(intent)
    assert pay.deliver(events) == ["stale"]
    assert pay.deliver(events) == ["duplicate"]
    assert pay.money(2).paid_gl_cents == 20_000


def test_a_retry_after_the_hold_lapsed_charges_nothing_and_the_webhook_records_the_money() -> None:
    """The same, but the retry comes after the 15 minutes the bill was held: it is not sent
    again (no hold keeps the bill: it could take money no longer owed) and says so in a
    sentence; the first charge's webhook records the money, flagged as an overpayment."""
    from datetime import timedelta

    from billbridge.domain.errors import PaymentProviderError

    pay = Saved()
    later = pay.later_link()
    method_id = pay.method_id(later)
    pay.world.stripe.lose_answers = 1
    with pytest.raises(PaymentProviderError):
        pay.saved.pay(later, method_id, [2], None, "key-1")
    pay.world.clock.now += timedelta(minutes=16)
    _clio_lowers(pay, 2, 15_000)
    sent = len(pay.world.stripe.charges)
    with pytest.raises(RuleViolation) as refused:
        pay.saved.pay(later, method_id, [2], None, "key-1")
    assert refused.value.code == "payment_attempt_expired"
    assert "$200.00" in refused.value.message and "20000" not in refused.value.message
    assert len(pay.world.stripe.charges) == sent  # nothing sent to Stripe
    (intent,) = _intents(pay, "pl_2")
    assert pay.deliver(pay.world.stripe.intent_events(intent)) == ["applied"]
    assert pay.money(2).paid_gl_cents == _charged_by_stripe(pay, "pl_2") == 20_000
    assert "overpaid" in pay.money(2).money.flags()


def test_a_replayed_answer_offers_stripes_page_again_for_a_card_that_needs_authentication() -> None:
    pay = Saved()
    later = pay.later_link(test="3184")
    first = pay.saved.pay(later, pay.method_id(later), [2], None, "a")
    again = pay.saved.pay(later, pay.method_id(later), [2], None, "a")
    assert again.needs_checkout is not None and again.needs_checkout == first.needs_checkout
    assert again.message == first.message
    assert len([c for c in pay.world.stripe.charges if c.metadata["link_id"] == "pl_2"]) == 1


def test_a_replay_after_the_failed_webhook_came_first_still_offers_stripes_page() -> None:
    """Stripe's `payment_intent.payment_failed` recorded the payment before the retry: the
    replay still knows why it failed."""
    pay = Saved()
    later = pay.later_link(test="3184")
    method_id = pay.method_id(later)
    pay.world.stripe.lose_answers = 1
    from billbridge.domain.errors import PaymentProviderError

    with pytest.raises(PaymentProviderError):
        pay.saved.pay(later, method_id, [2], None, "a")
    (intent,) = _intents(pay, "pl_2")
    assert pay.deliver(pay.world.stripe.intent_events(intent)) == ["applied"]
    again = pay.saved.pay(later, method_id, [2], None, "a")
    assert again.needs_checkout is not None
    assert "confirm" in again.message


def test_forgetting_a_method_a_plan_on_another_link_of_the_client_charges_is_refused() -> None:
    from billbridge.domain.plans import Every

    pay = Saved()
    first = pay.saved_on_link()
    plans = pay.world.payment_plans()
    today = pay.world.clock().date()
    plan = plans.client_create(first, [1], 5_000, Every.MONTH, today, Method.CARD, False)
    other = pay.link("pl_2", pay.client_bill(2, 30_000))  # another link of the same client
    (card,) = pay.saved.for_token(other)[1]
    with pytest.raises(RuleViolation) as refused:
        pay.saved.forget(other, card.id)
    assert refused.value.code == "method_in_plan"
    assert plan.plan.id in refused.value.message
    assert "open that plan's payment link" in refused.value.message  # not this link's plan
    assert pay.world.stripe.detached == []
    assert pay.saved.for_token(other)[1] == [card]
    # Once the plan ends, the client can forget it.
    plans.cancel(FIRM, plan.plan.id)
    pay.saved.forget(other, card.id)
    assert pay.world.stripe.detached == [card.method.payment_method_id]


def test_the_same_attempt_twice_at_the_same_moment_charges_once_and_both_answer_it() -> None:
    """A request and its retry run together (the retry starts while the first is about to
    hold the bill): one charge, both answers the same payment."""
    pay = Saved()
    later = pay.later_link()
    method_id = pay.method_id(later)
    answers = []

    def retry_meanwhile(change: object) -> None:
        pay.world.payments.before_hold = None
        answers.append(pay.saved.pay(later, method_id, [2], None, "key-1"))

    pay.world.payments.before_hold = retry_meanwhile
    answers.append(pay.saved.pay(later, method_id, [2], None, "key-1"))
    assert [[(p.txn_id, p.amount_cents, p.status) for p in a.parts] for a in answers] == [
        [(answers[0].parts[0].txn_id, 20_000, "succeeded")]
    ] * 2
    assert len(_intents(pay, "pl_2")) == 1
    assert pay.money(2).paid_gl_cents == _charged_by_stripe(pay, "pl_2") == 20_000


def test_a_card_saved_on_the_trust_and_the_operating_page_of_one_checkout_is_kept_once() -> None:
    """A checkout of an invoice and a trust request has a Stripe page for each account: the
    client enters the card twice, Stripe makes two PaymentMethods. One is kept and offered,
    the other detached, so "Forget" forgets the card for good."""
    pay = Saved()
    invoice = pay.client_bill(1, 20_000)
    trust = pay.client_bill(2, 10_000, kind="trust_request")
    token = pay.link("pl_1", invoice, trust)
    events = pay.save_by_paying(token, [invoice, trust])
    assert pay.deliver(events) == ["applied", "applied"]  # both payments recorded
    (card,) = pay.saved.for_token(token)[1]
    spares = [pm for pm in pay.world.stripe.payment_methods if pm != card.method.payment_method_id]
    assert len(spares) == 1 and pay.world.stripe.detached == spares
    pay.saved.forget(token, card.id)
    attached = [pm for pm, v in pay.world.stripe.payment_methods.items() if v["customer"]]
    assert attached == [] and pay.saved.for_token(token)[1] == []


def test_forgetting_a_card_kept_twice_forgets_both() -> None:
    """Both pages' webhooks kept at the same moment (each before seeing the other): forgetting
    the card forgets and detaches both."""
    pay = Saved()
    invoice = pay.client_bill(1, 20_000)
    trust = pay.client_bill(2, 10_000, kind="trust_request")
    token = pay.link("pl_1", invoice, trust)
    events = pay.save_by_paying(token, [invoice, trust])
    store = pay.world.plans
    real_saved_methods = store.saved_methods
    store.saved_methods = lambda firm_id, client_id: []  # type: ignore[method-assign]
    for event in events:  # neither sees the other
        pay.saved.keep_from_session(event["data"]["object"])
    store.saved_methods = real_saved_methods  # type: ignore[method-assign]
    first, second = pay.saved.for_token(token)[1]
    pay.saved.forget(token, second.id)
    assert pay.saved.for_token(token)[1] == []
    assert sorted(pay.world.stripe.detached) == sorted(
        [first.method.payment_method_id, second.method.payment_method_id]
    )


def test_stripes_errors_about_a_saved_method_never_name_stripes_ids() -> None:
    """A refusal's message reaches the client (502): Stripe's ids are left out of it, and an
    idempotency error is not read as "nothing was charged"."""
    import stripe

    from billbridge.adapters.stripe_saved import stripe_error as _error

    refused = _error(
        "forgetting the payment method",
        stripe.InvalidRequestError(
            "No such PaymentMethod: 'pm_1NxYz2AbC'; customer cus_Q9 (request req_7Hk)",
            param="payment_method",
            http_status=400,
        ),
    )
    assert refused.definitive
    assert "pm_" not in str(refused) and "cus_" not in str(refused) and "req_" not in str(refused)
    assert str(refused).startswith("Stripe refused forgetting the payment method: No such")
    reused = _error("the payment", stripe.IdempotencyError("Keys for idempotent requests ..."))
    assert reused.definitive is False


def test_a_retry_after_the_kept_requests_expired_answers_from_the_ledger_and_charges_nothing() -> (
    None
):
    """The attempt's kept requests live two days (TTL), Stripe's idempotency keys one: a
    retry after both finds the payment in the ledger: the same answer, no charge, no hold."""
    pay = Saved()
    later = pay.later_link()
    method_id = pay.method_id(later)
    first = pay.saved.pay(later, method_id, [2], None, "key-1")
    pay.world.plans.attempts.clear()  # DynamoDB's TTL removed the kept requests
    pay.world.stripe.charge_answers.clear()  # and Stripe forgot the key
    pay.world.stripe.charge_requests.clear()
    again = pay.saved.pay(later, method_id, [2], None, "key-1")
    assert again.parts == first.parts
    assert len(_intents(pay, "pl_2")) == 1
    assert pay.money(2).paid_gl_cents == _charged_by_stripe(pay, "pl_2") == 20_000
    assert pay.world.payments.holds(FIRM, [2], pay.world.clock()) == []


def test_a_charge_stripe_refuses_outright_is_answered_failed_once_and_frees_the_bill() -> None:
    """Stripe refuses the request itself (made nothing, e.g. HTTP 400): the client is told it
    was declined and nothing was charged, the payment is recorded failed, its hold ends, and a
    retry with the same key answers the same from the ledger without calling Stripe again."""
    from billbridge.domain.errors import PaymentProviderError

    pay = Saved()
    later = pay.later_link()
    method_id = pay.method_id(later)
    calls = []

    def refuse(charge: Any) -> Any:
        calls.append(charge)
        raise PaymentProviderError("Stripe refused the payment: This PaymentMethod was detached.")

    pay.world.stripe.charge_off_session = refuse  # type: ignore[method-assign]
    paid = pay.saved.pay(later, method_id, [2], None, "key-1")
    assert [(p.amount_cents, p.status, p.failure_code) for p in paid.parts] == [
        (20_000, "failed", "refused")
    ]
    assert "was declined: nothing was charged" in paid.message and "$200.00" in paid.message
    assert pay.money(2).paid_gl_cents == 0
    assert pay.world.payments.holds(FIRM, [2], pay.world.clock()) == []
    again = pay.saved.pay(later, method_id, [2], None, "key-1")
    assert again.parts == paid.parts
    assert len(calls) == 1


def test_a_payment_whose_saved_method_stripe_will_not_show_is_still_recorded() -> None:
    """Saving the card is the client's convenience; the payment is money. When Stripe refuses
    to show the method the checkout saved (a definitive 4xx: every retry of the event would be
    refused the same way until Stripe gives up on it), the payment is still recorded, once."""
    from billbridge.domain.errors import PaymentProviderError

    pay = Saved()
    token = pay.link("pl_1", pay.client_bill(1, 20_000))
    events = pay.save_by_paying(token, [1], 5_000)

    def refused(_intent_id: str) -> Any:
        raise PaymentProviderError("Stripe refused reading the saved payment method: no access.")

    pay.world.stripe.retrieve_intent_method = refused  # type: ignore[method-assign]

    assert pay.deliver(events) == ["applied"]
    assert pay.deliver(events) == ["duplicate"]
    assert pay.money(1).paid_gl_cents == 5_000
    assert pay.saved.for_token(token)[1] == []  # nothing saved: the client pays as before


def test_a_payment_whose_saved_method_stripe_did_not_answer_about_is_retried_by_stripe() -> None:
    """No answer from Stripe says nothing about the method: the event fails (Stripe delivers
    it again), and its next delivery keeps the method and records the payment once."""
    from billbridge.domain.errors import PaymentProviderError

    pay = Saved()
    token = pay.link("pl_1", pay.client_bill(1, 20_000))
    events = pay.save_by_paying(token, [1], 5_000)
    answer = pay.world.stripe.retrieve_intent_method

    def silent(_intent_id: str) -> Any:
        raise PaymentProviderError("Stripe did not answer.", definitive=False)

    pay.world.stripe.retrieve_intent_method = silent  # type: ignore[method-assign]
    with pytest.raises(PaymentProviderError):
        pay.deliver(events)
    pay.world.stripe.retrieve_intent_method = answer  # type: ignore[method-assign]

    assert pay.deliver(events) == ["applied"]
    assert pay.money(1).paid_gl_cents == 5_000
    assert len(pay.saved.for_token(token)[1]) == 1
