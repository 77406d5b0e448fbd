"""The Stripe sandbox spoken to as the project speaks to Stripe: the official `stripe` library for
the API, `requests` for the raw wire, the checkout page and the `/_sandbox` controls, and a tiny
local receiver for the signed webhooks."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
import stripe

from local.stripe_sandbox import StripeSandbox
from local.stripe_sandbox.forms import parse_form

API_KEY = "sk_test_sandbox"
SECRET = "whsec_test_secret"
CONNECT_SECRET = "whsec_test_connect_secret"
SUCCESS_URL = "http://127.0.0.1:3000/pay/TOKEN?paid={CHECKOUT_SESSION_ID}"
CANCEL_URL = "http://127.0.0.1:3000/pay/TOKEN"


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    def event(self) -> stripe.Event:
        return stripe.Webhook.construct_event(self.body, self.headers["Stripe-Signature"], SECRET)


class Receiver:
    """A local webhook endpoint that records every POST and answers `status`."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.status = 200
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                owner.received.append(Received(dict(self.headers.items()), body))
                self.send_response(owner.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/stripe"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()

    def types(self) -> list[str]:
        return [json.loads(r.body)["type"] for r in self.received]

    def objects(self) -> list[dict[str, Any]]:
        return [json.loads(r.body)["data"]["object"] for r in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.server.shutdown()
    made.server.server_close()


@pytest.fixture
def connect_receiver() -> Iterator[Receiver]:
    """The Connect endpoint (events about connected accounts), apart as on Stripe."""
    made = Receiver()
    yield made
    made.server.shutdown()
    made.server.server_close()


@pytest.fixture
def sandbox(receiver: Receiver, connect_receiver: Receiver) -> Iterator[StripeSandbox]:
    made = StripeSandbox(
        port=0,
        api_key=API_KEY,
        webhook_url=receiver.url,
        webhook_secret=SECRET,
        connect_webhook_url=connect_receiver.url,
        connect_webhook_secret=CONNECT_SECRET,
    )
    made.start()
    yield made
    made.stop()


@pytest.fixture
def client(sandbox: StripeSandbox) -> stripe.StripeClient:
    return stripe.StripeClient(API_KEY, base_addresses={"api": sandbox.url}, max_network_retries=0)


def make_account(client: stripe.StripeClient) -> str:
    account = client.v1.accounts.create(
        params={
            "type": "custom",
            "country": "US",
            "business_profile": {"name": "Demo trust"},
            "metadata": {"firm_id": "demo", "account": "trust"},
        }
    )
    # Onboarded at once (a new account cannot take destination charges until it is).
    base = client._requestor.base_addresses["api"]
    done = requests.post(f"{base}/_sandbox/accounts/{account.id}/complete", timeout=10)
    assert done.status_code == 200, done.text
    return str(account.id)


def session_params(
    destination: str, methods: tuple[str, ...] = ("card",), amounts: tuple[int, ...] = (12345,)
) -> Any:  # the shape of stripe.checkout.SessionCreateParams, as the gateway builds it
    metadata = {"firm_id": "demo", "link_id": "pl_abc", "account": "trust", "allocations": "[]"}
    return {
        "mode": "payment",
        "payment_method_types": list(methods),
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": "usd",
                    "unit_amount": cents,
                    "product_data": {"name": f"Invoice {1001 + i}"},
                },
            }
            for i, cents in enumerate(amounts)
        ],
        "success_url": SUCCESS_URL,
        "cancel_url": CANCEL_URL,
        "customer_email": "client@example.com",
        "client_reference_id": "pl_abc",
        "metadata": metadata,
        "payment_intent_data": {
            "metadata": {**metadata, "method": methods[0]},
            "transfer_data": {"destination": destination},
        },
    }


def new_session(
    client: stripe.StripeClient, methods: tuple[str, ...] = ("card",), **kwargs: Any
) -> Any:
    params = session_params(make_account(client), methods, **kwargs)
    return client.v1.checkout.sessions.create(params=params)


def control(sandbox: StripeSandbox, path: str, body: Any = None) -> requests.Response:
    return requests.post(f"{sandbox.url}/_sandbox/{path}", json=body or {}, timeout=10)


def paid_card_intent(client: stripe.StripeClient, sandbox: StripeSandbox) -> str:
    session = new_session(client)
    answer = control(sandbox, f"checkout_sessions/{session.id}/pay", {"method": "card"})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["payment_intent"]["id"])


# -- checkout sessions ---------------------------------------------------------------------------


def test_given_line_items_when_creating_a_session_then_it_has_stripes_shape(
    client: stripe.StripeClient, sandbox: StripeSandbox
) -> None:
    destination = make_account(client)

    session = client.v1.checkout.sessions.create(
        params=session_params(destination, amounts=(12345, 655)),
        options={"idempotency_key": "co_1"},
    )

    assert session.id.startswith("cs_test_") and len(session.id) == len("cs_test_") + 24
    assert session.object == "checkout.session"
    assert (session.amount_total, session.amount_subtotal, session.currency) == (
        13000,
        13000,
        "usd",
    )
    assert (session.status, session.payment_status, session.payment_intent) == (
        "open",
        "unpaid",
        None,
    )
    assert session.url == f"{sandbox.url}/c/pay/{session.id}"
    assert session.expires_at == session.created + 24 * 3600
    assert session.to_dict()["metadata"]["link_id"] == "pl_abc"
    assert session.client_reference_id == "pl_abc"
    assert session.customer_email == "client@example.com" and session.livemode is False
    assert session.payment_method_types == ["card"] and "line_items" not in session
    again = client.v1.checkout.sessions.retrieve(session.id)
    assert again.to_dict() == session.to_dict()


def test_given_the_same_idempotency_key_and_params_when_posting_again_then_the_answer_replays(
    client: stripe.StripeClient, sandbox: StripeSandbox
) -> None:
    body = "type=custom&country=US&metadata[firm_id]=demo"
    headers = {
        "Authorization": f"Bearer {API_KEY}",
        "Idempotency-Key": "acct-1",
        "Content-Type": "application/x-www-form-urlencoded",
    }

    first = requests.post(f"{sandbox.url}/v1/accounts", data=body, headers=headers, timeout=5)
    second = requests.post(f"{sandbox.url}/v1/accounts", data=body, headers=headers, timeout=5)

    assert first.status_code == second.status_code == 200
    assert second.content == first.content
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    account_id = first.json()["id"]
    requests.post(f"{sandbox.url}/_sandbox/accounts/{account_id}/complete", timeout=5)
    params = session_params(account_id)
    made = client.v1.checkout.sessions.create(params=params, options={"idempotency_key": "k"})
    replay = client.v1.checkout.sessions.create(params=params, options={"idempotency_key": "k"})
    assert replay.id == made.id


def test_given_a_reused_idempotency_key_with_other_params_then_400_idempotency_error(
    client: stripe.StripeClient,
) -> None:
    params = session_params(make_account(client))
    client.v1.checkout.sessions.create(params=params, options={"idempotency_key": "co_2"})

    with pytest.raises(stripe.IdempotencyError) as caught:
        client.v1.checkout.sessions.create(
            params={**params, "client_reference_id": "other"}, options={"idempotency_key": "co_2"}
        )

    assert caught.value.http_status == 400
    assert caught.value.error is not None and caught.value.error.type == "idempotency_error"


def test_given_an_unknown_destination_when_creating_a_session_then_resource_missing(
    client: stripe.StripeClient,
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.checkout.sessions.create(params=session_params("acct_nope"))

    assert caught.value.http_status == 400
    assert caught.value.code == "resource_missing"
    assert caught.value.param == "payment_intent_data[transfer_data][destination]"


def test_given_a_total_below_fifty_cents_when_creating_a_session_then_amount_too_small(
    client: stripe.StripeClient,
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        new_session(client, amounts=(20, 29))

    assert caught.value.code == "amount_too_small"


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ("mode=payment&bogus=1", "parameter_unknown", "bogus"),
        ("success_url=http://x/", "parameter_missing", "mode"),
        (
            "mode=payment&success_url=http://x/&line_items[0][quantity]=1"
            "&line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=1.5"
            "&line_items[0][price_data][product_data][name]=A",
            "parameter_invalid_integer",
            "line_items[0][price_data][unit_amount]",
        ),
    ],
)
def test_given_bad_params_on_the_wire_then_stripes_400_error_shape(
    sandbox: StripeSandbox, body: str, code: str, param: str
) -> None:
    answer = requests.post(
        f"{sandbox.url}/v1/checkout/sessions",
        data=body,
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=5,
    )

    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", code, param)


def test_given_a_wrong_api_key_then_401_in_stripes_shape(sandbox: StripeSandbox) -> None:
    bad = stripe.StripeClient("sk_test_wrong", base_addresses={"api": sandbox.url})

    with pytest.raises(stripe.AuthenticationError) as caught:
        bad.v1.accounts.retrieve("acct_x")

    assert caught.value.http_status == 401
    bare = requests.get(f"{sandbox.url}/v1/events", timeout=5)
    assert bare.status_code == 401 and bare.json()["error"]["type"] == "invalid_request_error"


def test_given_an_open_session_when_expiring_then_expired_event_and_the_page_says_so(
    client: stripe.StripeClient, sandbox: StripeSandbox, receiver: Receiver
) -> None:
    session = new_session(client)

    expired = client.v1.checkout.sessions.expire(session.id)

    assert (expired.status, expired.url) == ("expired", None)
    assert sandbox.wait_idle()
    assert receiver.types() == ["checkout.session.expired"]
    assert requests.get(session.url, timeout=5).status_code == 410
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.checkout.sessions.expire(session.id)


# -- the checkout page ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("methods", "shown", "hidden"),
    [
        (("card",), ["Pay by card", "Decline card"], ["Pay by bank"]),
        (("us_bank_account",), ["Pay by bank"], ["Pay by card", "Decline card"]),
        (("card", "us_bank_account"), ["Pay by card", "Pay by bank", "Decline card"], []),
    ],
)
def test_given_a_session_when_opening_its_page_then_one_button_per_allowed_method(
    client: stripe.StripeClient, methods: tuple[str, ...], shown: list[str], hidden: list[str]
) -> None:
    session = new_session(client, methods, amounts=(12345, 500))

    page = requests.get(session.url, timeout=5)

    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "Stripe sandbox — test mode" in page.text
    assert "Invoice 1001" in page.text and "$128.45" in page.text
    for name in shown:
        assert f'<button type="submit">{name}</button>' in page.text
    for name in hidden:
        assert name not in page.text
    assert f'<a href="{CANCEL_URL}">Cancel</a>' in page.text
    assert f'action="/c/pay/{session.id}"' in page.text


def test_given_the_page_when_clicking_pay_by_card_then_webhooks_land_before_the_redirect(
    client: stripe.StripeClient, receiver: Receiver
) -> None:
    session = new_session(client)

    clicked = requests.post(
        session.url, data={"method": "card", "outcome": "succeeded"}, allow_redirects=False
    )

    assert clicked.status_code == 303
    assert clicked.headers["Location"] == SUCCESS_URL.replace("{CHECKOUT_SESSION_ID}", session.id)
    assert receiver.types() == [
        "payment_intent.succeeded",
        "charge.succeeded",
        "checkout.session.completed",
    ]
    paid = client.v1.checkout.sessions.retrieve(session.id)
    assert (paid.status, paid.payment_status) == ("complete", "paid")
    assert requests.get(session.url, timeout=5).status_code == 409


def test_given_the_page_when_clicking_decline_card_then_back_to_the_page_with_the_message(
    client: stripe.StripeClient, receiver: Receiver
) -> None:
    session = new_session(client)

    clicked = requests.post(session.url, data={"method": "card", "outcome": "failed"}, timeout=5)

    assert clicked.status_code == 200 and "Your card was declined" in clicked.text
    assert receiver.types() == ["payment_intent.payment_failed"]
    error = receiver.objects()[0]["last_payment_error"]
    assert error["code"] == "card_declined"
    declined = client.v1.checkout.sessions.retrieve(session.id)
    assert declined.status == "open" and declined.payment_intent == error_intent(receiver)

    retried = requests.post(session.url, data={"method": "card"}, allow_redirects=False)

    assert retried.status_code == 303
    assert receiver.objects()[1]["id"] == declined.payment_intent  # the same intent, now paid
    assert receiver.objects()[1]["status"] == "succeeded"


def error_intent(receiver: Receiver) -> str:
    return str(receiver.objects()[0]["id"])


# -- paying through the controls, and the webhooks -----------------------------------------------


def test_given_a_card_payment_then_three_signed_events_in_stripes_shapes(
    client: stripe.StripeClient, sandbox: StripeSandbox, receiver: Receiver
) -> None:
    session = new_session(client)

    answer = control(sandbox, f"checkout_sessions/{session.id}/pay", {"method": "card"})

    assert answer.status_code == 200
    events = [r.event() for r in receiver.received]  # construct_event verifies each signature
    assert [e.type for e in events] == [
        "payment_intent.succeeded",
        "charge.succeeded",
        "checkout.session.completed",
    ]
    assert [e.id for e in events] == answer.json()["events"]
    first = json.loads(receiver.received[0].body)
    assert first["api_version"] == "2024-10-28.acacia" and first["pending_webhooks"] == 1
    assert first["request"] == {"id": None, "idempotency_key": None}
    headers = receiver.received[0].headers
    assert headers["User-Agent"] == "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    intent, charge, completed = receiver.objects()
    assert (intent["status"], intent["amount"], intent["amount_received"]) == (
        "succeeded",
        12345,
        12345,
    )
    assert intent["metadata"]["method"] == "card"
    assert intent["transfer_data"]["destination"].startswith("acct_")
    assert intent["latest_charge"] == charge["id"] and charge["payment_intent"] == intent["id"]
    assert (charge["object"], charge["status"], charge["amount_refunded"]) == (
        "charge",
        "succeeded",
        0,
    )
    assert completed["payment_intent"] == intent["id"] and completed["payment_status"] == "paid"
    retrieved = client.v1.payment_intents.retrieve(intent["id"])
    assert retrieved.status == "succeeded" and retrieved.metadata["link_id"] == "pl_abc"


def test_given_pay_controls_that_do_not_fit_then_409_or_422(
    client: stripe.StripeClient, sandbox: StripeSandbox
) -> None:
    session = new_session(client)
    path = f"checkout_sessions/{session.id}/pay"

    assert control(sandbox, path, {"method": "ach"}).status_code == 422
    assert control(sandbox, path, {"method": "card", "amount_cents": 100}).status_code == 422
    assert control(sandbox, path, {"method": "card", "amount_cents": 12345}).status_code == 200
    assert control(sandbox, path, {"method": "card"}).status_code == 409
    assert (
        control(sandbox, "checkout_sessions/cs_test_nope/pay", {"method": "card"}).status_code
        == 404
    )


def test_given_an_ach_payment_when_it_settles_then_processing_then_async_success(
    client: stripe.StripeClient, sandbox: StripeSandbox, receiver: Receiver
) -> None:
    session = new_session(client, ("us_bank_account",))

    paid = control(sandbox, f"checkout_sessions/{session.id}/pay", {"method": "ach"}).json()
    assert receiver.types() == ["payment_intent.processing", "checkout.session.completed"]
    assert receiver.objects()[1]["payment_status"] == "unpaid"
    intent_id = paid["payment_intent"]["id"]
    assert control(sandbox, f"payment_intents/{intent_id}/settle").status_code == 200

    assert receiver.types()[2:] == [
        "payment_intent.succeeded",
        "charge.succeeded",
        "checkout.session.async_payment_succeeded",
    ]
    assert all(r.event() for r in receiver.received)
    assert receiver.objects()[-1]["payment_status"] == "paid"
    assert client.v1.payment_intents.retrieve(intent_id).amount_received == 12345
    assert control(sandbox, f"payment_intents/{intent_id}/settle").status_code == 409


def test_given_an_ach_payment_when_it_fails_then_payment_failed_and_async_failed(
    client: stripe.StripeClient, sandbox: StripeSandbox, receiver: Receiver
) -> None:
    session = new_session(client, ("us_bank_account",))
    paid = control(sandbox, f"checkout_sessions/{session.id}/pay", {"method": "ach"}).json()

    control(sandbox, f"payment_intents/{paid['payment_intent']['id']}/fail")

    assert receiver.types()[2:] == [
        "payment_intent.payment_failed",
        "checkout.session.async_payment_failed",
    ]
    intent, session_after = receiver.objects()[2:]
    assert intent["status"] == "requires_payment_method" and intent["last_payment_error"]["code"]
    assert (session_after["status"], session_after["payment_status"]) == ("complete", "unpaid")


def test_given_a_paid_intent_when_disputed_then_dispute_created_event(
    client: stripe.StripeClient, sandbox: StripeSandbox, receiver: Receiver
) -> None:
    intent_id = paid_card_intent(client, sandbox)

    answer = control(sandbox, f"payment_intents/{intent_id}/dispute", {"amount_cents": 1000})

    assert answer.status_code == 200
    assert receiver.types()[-2:] == ["charge.dispute.created", "charge.dispute.funds_withdrawn"]
    created, withdrawn = receiver.objects()[-2:]
    assert (created["object"], created["amount"], created["reason"], created["status"]) == (
        "dispute",
        1000,
        "fraudulent",
        "needs_response",
    )
    assert created["payment_intent"] == intent_id and created["id"].startswith("dp_")
    assert created["balance_transactions"] == []
    (withdrawal,) = withdrawn["balance_transactions"]
    assert (withdrawal["amount"], withdrawal["fee"], withdrawal["net"]) == (-1000, 1500, -2500)


def test_given_a_dispute_when_closed_then_dispute_closed_event_once(
    client: stripe.StripeClient, sandbox: StripeSandbox, receiver: Receiver
) -> None:
    intent_id = paid_card_intent(client, sandbox)
    opened = control(sandbox, f"payment_intents/{intent_id}/dispute").json()["dispute"]

    closed = control(sandbox, f"disputes/{opened['id']}/close", {"status": "lost"})
    again = control(sandbox, f"disputes/{opened['id']}/close", {"status": "won"})

    assert closed.status_code == 200 and again.status_code == 409
    assert receiver.types()[-1] == "charge.dispute.closed"
    assert receiver.objects()[-1]["status"] == "lost"


def test_given_a_chargeback_when_won_then_closed_and_funds_reinstated(
    client: stripe.StripeClient, sandbox: StripeSandbox, receiver: Receiver
) -> None:
    intent_id = paid_card_intent(client, sandbox)
    opened = control(sandbox, f"payment_intents/{intent_id}/dispute").json()["dispute"]
    assert control(sandbox, f"disputes/{opened['id']}/update", {"status": "under_review"}).ok

    assert control(sandbox, f"disputes/{opened['id']}/close", {"status": "won"}).ok

    assert receiver.types()[-3:] == [
        "charge.dispute.updated",
        "charge.dispute.closed",
        "charge.dispute.funds_reinstated",
    ]
    reinstated = receiver.objects()[-1]
    assert reinstated["status"] == "won"
    amount = opened["amount"]
    assert [t["amount"] for t in reinstated["balance_transactions"]] == [-amount, amount]


def test_given_an_inquiry_then_no_money_moves_it_can_be_refunded_and_it_closes(
    client: stripe.StripeClient, sandbox: StripeSandbox, receiver: Receiver
) -> None:
    intent_id = paid_card_intent(client, sandbox)
    opened = control(sandbox, f"payment_intents/{intent_id}/dispute", {"inquiry": True})
    dispute = opened.json()["dispute"]
    assert (dispute["status"], dispute["is_charge_refundable"]) == ("warning_needs_response", True)
    assert receiver.types()[-1] == "charge.dispute.created"
    assert control(
        sandbox, f"disputes/{dispute['id']}/update", {"status": "warning_under_review"}
    ).ok
    refund = client.v1.refunds.create(params={"payment_intent": intent_id, "amount": 500})
    assert refund.status == "succeeded"
    assert sandbox.wait_idle()  # the refund's own events are out

    for status in ("won", "lost"):  # an inquiry is not a chargeback: it cannot be won or lost
        assert (
            control(sandbox, f"disputes/{dispute['id']}/close", {"status": status}).status_code
            == 409
        )
    assert control(sandbox, f"disputes/{dispute['id']}/close", {"status": "warning_closed"}).ok
    assert receiver.objects()[-1]["status"] == "warning_closed"
    assert "charge.dispute.funds_withdrawn" not in receiver.types()


@pytest.mark.parametrize("ending", ["prevented", "needs_response"])
def test_given_an_inquiry_when_prevented_or_escalated_then_each_has_its_events(
    client: stripe.StripeClient, sandbox: StripeSandbox, receiver: Receiver, ending: str
) -> None:
    intent_id = paid_card_intent(client, sandbox)
    dispute = control(sandbox, f"payment_intents/{intent_id}/dispute", {"inquiry": True}).json()[
        "dispute"
    ]

    if ending == "prevented":
        assert control(sandbox, f"disputes/{dispute['id']}/close", {"status": ending}).ok
        assert receiver.types()[-1] == "charge.dispute.closed"
        assert receiver.objects()[-1]["status"] == "prevented"
    else:
        assert control(sandbox, f"disputes/{dispute['id']}/update", {"status": ending}).ok
        assert receiver.types()[-2:] == ["charge.dispute.updated", "charge.dispute.funds_withdrawn"]
        refused = requests.post(
            f"{sandbox.url}/v1/refunds",
            data={"payment_intent": intent_id},
            headers={"Authorization": f"Bearer {sandbox.api_key}"},
            timeout=30,
        )
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "charge_disputed"


# -- refunds -------------------------------------------------------------------------------------


def test_given_a_card_payment_when_refunding_then_succeeded_at_once_with_two_events(
    client: stripe.StripeClient, sandbox: StripeSandbox, receiver: Receiver
) -> None:
    intent_id = paid_card_intent(client, sandbox)

    refund = client.v1.refunds.create(
        params={
            "payment_intent": intent_id,
            "amount": 500,
            "reverse_transfer": True,
            "metadata": {"firm_id": "demo", "refund_id": "rf_1", "transaction_id": "tx_1"},
        },
        options={"idempotency_key": "rf_1"},
    )

    assert (refund.status, refund.amount, refund.object) == ("succeeded", 500, "refund")
    assert refund.id.startswith("re_") and refund.payment_intent == intent_id
    idle = requests.get(f"{sandbox.url}/_sandbox/idle", timeout=20)
    assert idle.json() == {"idle": True}
    assert receiver.types()[-2:] == ["refund.created", "charge.refunded"]
    created = json.loads(receiver.received[-2].body)
    assert created["request"]["idempotency_key"] == "rf_1" and created["request"]["id"]
    assert receiver.objects()[-1]["amount_refunded"] == 500
    assert client.v1.refunds.retrieve(refund.id).to_dict()["metadata"]["refund_id"] == "rf_1"


def test_given_partial_refunds_when_asking_more_than_is_left_then_amount_too_large(
    client: stripe.StripeClient, sandbox: StripeSandbox
) -> None:
    intent_id = paid_card_intent(client, sandbox)
    for _ in range(2):
        client.v1.refunds.create(params={"payment_intent": intent_id, "amount": 5000})

    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.refunds.create(params={"payment_intent": intent_id, "amount": 5000})

    assert caught.value.code == "amount_too_large" and caught.value.param == "amount"
    assert caught.value.user_message == (
        "Refund amount ($50.00) is greater than unrefunded amount on charge ($23.45)"
    )
    rest = client.v1.refunds.create(params={"payment_intent": intent_id})
    assert rest.amount == 2345
    with pytest.raises(stripe.InvalidRequestError) as again:
        client.v1.refunds.create(params={"payment_intent": intent_id, "amount": 1})
    assert again.value.code == "charge_already_refunded"


def test_given_an_unpaid_or_unknown_intent_when_refunding_then_400(
    client: stripe.StripeClient, sandbox: StripeSandbox
) -> None:
    session = new_session(client, ("us_bank_account",))
    paid = control(sandbox, f"checkout_sessions/{session.id}/pay", {"method": "ach"}).json()

    with pytest.raises(stripe.InvalidRequestError) as processing:
        client.v1.refunds.create(params={"payment_intent": paid["payment_intent"]["id"]})
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.refunds.create(params={"payment_intent": "pi_nope"})

    assert processing.value.code == "charge_not_refundable"
    assert unknown.value.code == "resource_missing"


def test_given_an_ach_refund_then_pending_until_a_control_finishes_it(
    client: stripe.StripeClient, sandbox: StripeSandbox, receiver: Receiver
) -> None:
    session = new_session(client, ("us_bank_account",))
    paid = control(sandbox, f"checkout_sessions/{session.id}/pay", {"method": "ach"}).json()
    intent_id = paid["payment_intent"]["id"]
    control(sandbox, f"payment_intents/{intent_id}/settle")
    first = client.v1.refunds.create(params={"payment_intent": intent_id, "amount": 2345})
    second = client.v1.refunds.create(params={"payment_intent": intent_id, "amount": 10000})
    assert (first.status, second.status) == ("pending", "pending")
    assert sandbox.wait_idle()
    assert receiver.types()[-2:] == ["refund.created", "refund.created"]

    control(sandbox, f"refunds/{first.id}/succeed")
    failed = control(sandbox, f"refunds/{second.id}/fail", {"failure_reason": "declined"})

    assert failed.status_code == 200
    assert receiver.types()[-3:] == ["refund.updated", "refund.updated", "refund.failed"]
    assert client.v1.refunds.retrieve(first.id).status == "succeeded"
    gone = client.v1.refunds.retrieve(second.id)
    assert (gone.status, gone.failure_reason) == ("failed", "declined")
    again = client.v1.refunds.create(params={"payment_intent": intent_id})
    assert again.amount == 10000  # the failed refund's amount is refundable again
    assert control(sandbox, f"refunds/{first.id}/succeed").status_code == 409


# -- events, delivery, controls ------------------------------------------------------------------


def test_given_paused_delivery_when_resending_then_the_same_bytes_freshly_signed(
    client: stripe.StripeClient, sandbox: StripeSandbox, receiver: Receiver
) -> None:
    control(sandbox, "delivery", {"paused": True})
    session = new_session(client)
    ids = control(sandbox, f"checkout_sessions/{session.id}/pay", {"method": "card"}).json()[
        "events"
    ]
    assert receiver.received == []
    listed = requests.get(f"{sandbox.url}/_sandbox/events", timeout=5).json()
    assert [e["id"] for e in listed if e["type"] != "account.updated"] == ids

    for event_id in reversed(ids):
        resent = control(sandbox, f"events/{event_id}/resend")
        assert resent.json()["status"] == 200

    assert [json.loads(r.body)["id"] for r in receiver.received] == list(reversed(ids))
    stored = {e["id"]: e for e in listed}
    assert all(r.event() for r in receiver.received)
    assert all(json.loads(r.body) == stored[json.loads(r.body)["id"]] for r in receiver.received)
    control(sandbox, f"events/{ids[0]}/resend")
    assert receiver.received[-1].body == receiver.received[2].body
    deliveries = requests.get(f"{sandbox.url}/_sandbox/events/{ids[0]}/deliveries", timeout=5)
    assert [d["status"] for d in deliveries.json()] == [200, 200]


def test_given_a_failing_endpoint_then_the_attempt_is_recorded_with_its_status(
    client: stripe.StripeClient, sandbox: StripeSandbox, receiver: Receiver
) -> None:
    receiver.status = 500
    session = new_session(client)
    ids = control(sandbox, f"checkout_sessions/{session.id}/pay", {"method": "card"}).json()[
        "events"
    ]

    deliveries = requests.get(f"{sandbox.url}/_sandbox/events/{ids[0]}/deliveries", timeout=5)

    assert [d["status"] for d in deliveries.json()] == [500]


def test_given_events_when_listing_through_the_api_then_newest_first_in_stripes_list_shape(
    client: stripe.StripeClient, sandbox: StripeSandbox
) -> None:
    paid_card_intent(client, sandbox)
    headers = {"Authorization": f"Bearer {API_KEY}"}

    listed = requests.get(f"{sandbox.url}/v1/events?limit=2", headers=headers, timeout=5).json()

    assert (listed["object"], listed["url"], listed["has_more"]) == ("list", "/v1/events", True)
    assert [e["type"] for e in listed["data"]] == [
        "checkout.session.completed",
        "charge.succeeded",
    ]
    one = requests.get(f"{sandbox.url}/v1/events/{listed['data'][0]['id']}", headers=headers)
    assert one.json() == listed["data"][0]


def test_given_accounts_when_retrieving_then_stripes_shape_and_unknown_ones_refused(
    client: stripe.StripeClient, sandbox: StripeSandbox
) -> None:
    account = client.v1.accounts.retrieve(make_account(client))

    assert (account.object, account.type, account.country) == ("account", "custom", "US")
    assert account.to_dict()["business_profile"]["name"] == "Demo trust"
    assert account.to_dict()["metadata"]["account"] == "trust"
    assert account.charges_enabled and account.payouts_enabled
    with pytest.raises(stripe.PermissionError):
        client.v1.accounts.retrieve("acct_nope")
    assert control(sandbox, "reset").status_code == 200
    with pytest.raises(stripe.PermissionError):
        client.v1.accounts.retrieve(account.id)


def test_given_no_webhook_url_then_events_are_only_recorded(
    client: stripe.StripeClient, sandbox: StripeSandbox, receiver: Receiver
) -> None:
    sandbox.webhook_url = None
    session = new_session(client)

    control(sandbox, f"checkout_sessions/{session.id}/pay", {"method": "card"})

    assert receiver.received == []
    listed = requests.get(f"{sandbox.url}/_sandbox/events", timeout=5).json()
    assert [e["type"] for e in listed if "account" not in e] == [
        "payment_intent.succeeded",
        "charge.succeeded",
        "checkout.session.completed",
    ]
    assert requests.get(f"{sandbox.url}/_sandbox/health", timeout=5).json() == {"ok": True}


def test_given_bracketed_form_keys_then_nested_hashes_and_lists() -> None:
    parsed = parse_form(
        "line_items[0][price_data][unit_amount]=500&line_items[1][quantity]=2"
        "&metadata[0]=zero&metadata[firm_id]=x&payment_method_types[0]=card&expand[]=a&expand[]=b"
    )

    assert parsed == {
        "line_items": [{"price_data": {"unit_amount": "500"}}, {"quantity": "2"}],
        "metadata": {"0": "zero", "firm_id": "x"},
        "payment_method_types": ["card"],
        "expand": ["a", "b"],
    }


def test_given_a_session_when_the_gateway_reads_it_back_then_its_state_and_metadata(
    sandbox: StripeSandbox, client: stripe.StripeClient
) -> None:
    # The confirmation screen reads the session when the client is back before the webhook.
    # (A StripeObject is not a dict: reading its metadata as one crashed the pay function.)
    from billbridge.adapters.stripe_gateway import StripeGateway

    gateway = StripeGateway(API_KEY, api_base=sandbox.url)
    session = new_session(client, ("us_bank_account",))

    opened = gateway.checkout_session(str(session.id))
    assert opened is not None
    assert (opened.status, opened.payment_status, opened.amount_cents) == ("open", "unpaid", 12345)
    assert opened.metadata["link_id"] == "pl_abc" and opened.currency == "USD"
    assert opened.created_at.tzinfo is not None

    control(sandbox, f"checkout_sessions/{session.id}/pay", {"method": "ach"})
    paid = gateway.checkout_session(str(session.id))
    assert paid is not None and (paid.status, paid.payment_status) == ("complete", "unpaid")
    assert gateway.checkout_session("cs_test_nobody") is None
