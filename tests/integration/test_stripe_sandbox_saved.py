# ruff: noqa: F811  (the fixtures imported below are used as parameters)
"""The Stripe sandbox's saved methods, spoken to with the official `stripe` library: Customers,
Checkout in `mode=setup` and with `setup_future_usage`, SetupIntents and ACH mandates, and
PaymentIntents confirmed off-session that succeed, are declined or need authentication."""

from __future__ import annotations

from typing import Any

import pytest
import requests
import stripe

from local.stripe_sandbox import StripeSandbox
from tests.integration.test_stripe_sandbox import (  # noqa: F401 (fixtures)
    CANCEL_URL,
    SUCCESS_URL,
    Receiver,
    client,
    connect_receiver,
    control,
    make_account,
    receiver,
    sandbox,
    session_params,
)


def wait_idle(sandbox: StripeSandbox) -> None:
    assert requests.get(f"{sandbox.url}/_sandbox/idle?timeout=30", timeout=40).json()["idle"]


def customer(client: stripe.StripeClient) -> str:
    made = client.v1.customers.create(params={"email": "client@example.com", "name": "Ann"})
    assert made.object == "customer" and made.email == "client@example.com"
    return str(made.id)


def saved_method(
    client: stripe.StripeClient,
    sandbox: StripeSandbox,
    cus: str,
    method: str = "card",
    test: str | None = None,
) -> Any:
    types = ["card"] if method == "card" else ["us_bank_account"]
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "setup",
            "customer": cus,
            "payment_method_types": types,  # type: ignore[typeddict-item]
            "success_url": SUCCESS_URL,
            "cancel_url": CANCEL_URL,
            "setup_intent_data": {"metadata": {"plan_id": "plan_1"}},
        }
    )
    assert session.mode == "setup" and session.setup_intent
    body: dict[str, Any] = {"method": method}
    if test:
        body["test_method"] = test
    answer = control(sandbox, f"checkout_sessions/{session.id}/pay", body)
    assert answer.status_code == 200, answer.text
    setup = client.v1.setup_intents.retrieve(str(session.setup_intent))
    assert setup.status == "succeeded" and setup.metadata["plan_id"] == "plan_1"
    return setup


def test_given_a_setup_session_when_the_client_saves_a_card_then_the_customer_has_it(
    client: stripe.StripeClient, sandbox: StripeSandbox, receiver: Receiver
) -> None:
    cus = customer(client)
    setup = saved_method(client, sandbox, cus)
    methods = client.v1.customers.payment_methods.list(cus)
    assert [pm.id for pm in methods.data] == [setup.payment_method]
    assert methods.data[0].card is not None and methods.data[0].card.last4 == "4242"
    wait_idle(sandbox)
    types = receiver.types()
    assert "setup_intent.succeeded" in types and types[-1] == "checkout.session.completed"
    completed = receiver.objects()[-1]
    assert completed["mode"] == "setup" and completed["setup_intent"] == setup.id


def test_given_a_saved_card_when_charged_off_session_then_it_succeeds_once_per_key(
    client: stripe.StripeClient, sandbox: StripeSandbox
) -> None:
    cus = customer(client)
    setup = saved_method(client, sandbox, cus)
    params: Any = {
        "amount": 5000,
        "currency": "usd",
        "customer": cus,
        "payment_method": setup.payment_method,
        "off_session": True,
        "confirm": True,
        "metadata": {"plan_id": "plan_1"},
        "transfer_data": {"destination": make_account(client)},
    }
    first = client.v1.payment_intents.create(params=params, options={"idempotency_key": "k1"})
    again = client.v1.payment_intents.create(params=params, options={"idempotency_key": "k1"})
    assert first.status == "succeeded" and again.id == first.id
    assert first.amount_received == 5000


@pytest.mark.parametrize(
    ("test_card", "code"),
    [
        ("pm_card_chargeCustomerFail", "card_declined"),
        ("pm_card_authenticationRequired", "authentication_required"),
    ],
)
def test_given_a_card_that_fails_later_when_charged_off_session_then_402_card_error(
    client: stripe.StripeClient, sandbox: StripeSandbox, test_card: str, code: str
) -> None:
    cus = customer(client)
    setup = saved_method(client, sandbox, cus, test=test_card)
    params: Any = {
        "amount": 5000,
        "currency": "usd",
        "customer": cus,
        "payment_method": setup.payment_method,
        "off_session": True,
        "confirm": True,
    }
    with pytest.raises(stripe.CardError) as raised:
        client.v1.payment_intents.create(params=params, options={"idempotency_key": "k2"})
    assert raised.value.code == code and raised.value.http_status == 402
    intent = raised.value.error.payment_intent if raised.value.error else None
    assert intent is not None and intent.status == "requires_payment_method"
    # The declined answer is kept for the key, as Stripe keeps it: a retry replays it.
    with pytest.raises(stripe.CardError) as replayed:
        client.v1.payment_intents.create(params=params, options={"idempotency_key": "k2"})
    replayed_intent = replayed.value.error.payment_intent if replayed.value.error else None
    assert replayed_intent is not None and replayed_intent.id == intent.id


def test_given_a_saved_bank_account_then_it_has_a_mandate_and_debits_go_processing(
    client: stripe.StripeClient, sandbox: StripeSandbox, receiver: Receiver
) -> None:
    cus = customer(client)
    setup = saved_method(client, sandbox, cus, method="ach")
    assert setup.mandate
    mandate = client.v1.mandates.retrieve(str(setup.mandate))
    assert mandate.customer_acceptance.type == "online" and mandate.type == "multi_use"
    intent = client.v1.payment_intents.create(
        params={
            "amount": 7500,
            "currency": "usd",
            "customer": cus,
            "payment_method": str(setup.payment_method),
            "payment_method_types": ["us_bank_account"],
            "off_session": True,
            "confirm": True,
        }
    )
    assert intent.status == "processing"
    settled = control(sandbox, f"payment_intents/{intent.id}/settle")
    assert settled.status_code == 200, settled.text
    assert client.v1.payment_intents.retrieve(intent.id).status == "succeeded"
    wait_idle(sandbox)
    # API-caused events go out after the answer, controls' before theirs: no order between.
    assert {"payment_intent.processing", "payment_intent.succeeded", "charge.succeeded"} <= set(
        receiver.types()
    )


def test_given_setup_future_usage_when_paying_then_the_method_is_saved_on_the_customer(
    client: stripe.StripeClient, sandbox: StripeSandbox
) -> None:
    cus = customer(client)
    params = session_params(make_account(client))
    del params["customer_email"]
    params["customer"] = cus
    params["payment_intent_data"]["setup_future_usage"] = "off_session"
    session = client.v1.checkout.sessions.create(params=params)
    paid = control(sandbox, f"checkout_sessions/{session.id}/pay", {"method": "card"})
    assert paid.status_code == 200, paid.text
    intent = client.v1.payment_intents.retrieve(paid.json()["payment_intent"]["id"])
    assert intent.setup_future_usage == "off_session" and intent.customer == cus
    methods = client.v1.customers.payment_methods.list(cus).data
    assert [m.id for m in methods] == [intent.payment_method]


def test_given_both_customer_and_customer_email_then_stripes_400(
    client: stripe.StripeClient,
) -> None:
    params = session_params(make_account(client))
    params["customer"] = customer(client)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.checkout.sessions.create(params=params)
    assert raised.value.param == "customer"


def test_given_the_clock_control_then_new_objects_are_stamped_with_its_time(
    client: stripe.StripeClient, sandbox: StripeSandbox
) -> None:
    later = 2_000_000_000
    moved = requests.post(f"{sandbox.url}/_sandbox/clock", json={"now": later}, timeout=10)
    assert moved.status_code == 200
    made = client.v1.customers.create(params={"email": "c@example.com"})
    assert later <= made.created < later + 60


def test_given_a_detached_method_then_it_cannot_be_charged_or_detached_again(
    client: stripe.StripeClient, sandbox: StripeSandbox, receiver: Receiver
) -> None:
    cus = customer(client)
    setup = saved_method(client, sandbox, cus)
    pm = str(setup.payment_method)
    detached = client.v1.payment_methods.detach(pm)
    assert detached.customer is None
    assert client.v1.customers.payment_methods.list(cus).data == []
    with pytest.raises(stripe.InvalidRequestError) as again:
        client.v1.payment_methods.detach(pm)
    assert "not attached to a customer" in str(again.value)
    params: Any = {
        "amount": 5_000,
        "currency": "usd",
        "customer": cus,
        "payment_method": pm,
        "off_session": True,
        "confirm": True,
    }
    with pytest.raises(stripe.InvalidRequestError) as charged:
        client.v1.payment_intents.create(params=params)
    assert charged.value.param == "payment_method" and "detached" in str(charged.value)
    wait_idle(sandbox)
    assert "payment_method.detached" in receiver.types()


def test_given_the_gateway_saving_at_checkout_then_it_reads_the_method_and_detaches_it(
    client: stripe.StripeClient, sandbox: StripeSandbox
) -> None:
    """Our StripeGateway on the sandbox's wire: a checkout that saves the method is made for
    the Customer (no customer_email) with setup_future_usage; what it saved reads back as the
    client names it; forgetting it twice is not an error."""
    from datetime import UTC, datetime, timedelta

    from billbridge.adapters.stripe_gateway import StripeGateway
    from billbridge.domain.payments import Account, Allocation, Method
    from billbridge.services.ports import CheckoutRequest

    gateway = StripeGateway(sandbox.api_key, api_base=sandbox.url)
    cus = customer(client)
    made = gateway.create_checkout_session(
        CheckoutRequest(
            firm_id="firm-1",
            link_id="pl_1",
            account=Account.TRUST,
            destination_account_id=make_account(client),
            method=Method.CARD,
            currency="USD",
            allocations=(Allocation(1, Account.TRUST, 5_000),),
            line_items=(("Trust request 1", 5_000),),
            success_url=SUCCESS_URL,
            cancel_url=CANCEL_URL,
            customer_email="client@example.com",
            idempotency_key="checkout-save-1",
            expires_at=datetime.now(UTC) + timedelta(hours=1),
            save_method=True,
            customer_id=cus,
            client_id=7,
        )
    )
    session = client.v1.checkout.sessions.retrieve(made.id)
    assert session.customer == cus and session.customer_email is None
    assert session.metadata is not None and session.metadata["save_method"] == "1"
    paid = control(sandbox, f"checkout_sessions/{made.id}/pay", {"method": "card"})
    assert paid.status_code == 200, paid.text
    saved = gateway.retrieve_intent_method(paid.json()["payment_intent"]["id"])
    assert saved.customer_id == cus and saved.method is not None
    assert saved.method.label == "Visa ending 4242" and saved.method.method is Method.CARD
    gateway.detach_payment_method(saved.method.payment_method_id)
    gateway.detach_payment_method(saved.method.payment_method_id)  # already: nothing to undo
    assert client.v1.customers.payment_methods.list(cus).data == []
