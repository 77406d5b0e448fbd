"""The Stripe sandbox's Connect onboarding over HTTP, through the official stripe library and a
plain HTTP client clicking the hosted page: accounts that can do nothing until onboarded,
Account Links, requirements that shrink step by step, `account.updated` events signed for the
Connect endpoint, expired links, the complete control, and application fees."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import stripe

from local.persistence import LocalState
from local.stripe_sandbox import StripeSandbox
from local.stripe_sandbox.accounts import REQUIRED, STEPS
from tests.integration.test_stripe_sandbox import (
    API_KEY,
    CONNECT_SECRET,
    SECRET,
    Received,
    Receiver,
    session_params,
)


def _receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.server.shutdown()
    made.server.server_close()


receiver = pytest.fixture(_receiver, name="receiver")
connect_receiver = pytest.fixture(_receiver, name="connect_receiver")


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


def new_account(client: stripe.StripeClient, account: str = "trust") -> stripe.Account:
    return client.v1.accounts.create(
        params={
            "type": "express",
            "country": "US",
            "business_type": "company",
            "capabilities": {
                "card_payments": {"requested": True},
                "transfers": {"requested": True},
            },
            "business_profile": {"name": f"Demo Law LLP ({account})"},
            "metadata": {"firm_id": "demo", "account": account},
        }
    )


def new_link(client: stripe.StripeClient, account_id: str) -> stripe.AccountLink:
    return client.v1.account_links.create(
        params={
            "account": account_id,
            "type": "account_onboarding",
            "refresh_url": "http://127.0.0.1:1/onboarding?refresh=trust",
            "return_url": "http://127.0.0.1:1/onboarding?return=trust",
        }
    )


def connect_event(delivered: Received) -> stripe.Event:
    """The event, verified with the Connect endpoint's own secret."""
    signature = delivered.headers["Stripe-Signature"]
    return stripe.Webhook.construct_event(delivered.body, signature, CONNECT_SECRET)


def still_needed(html: str) -> list[str]:
    section = html.split('id="currently-due"', 1)[1].split("</ul>", 1)[0]
    return re.findall(r"<code>([^<]+)</code>", section)


def test_given_a_new_account_then_it_can_take_no_charge_and_stripe_lists_what_is_due(
    client: stripe.StripeClient,
) -> None:
    account = new_account(client).to_dict()

    assert (account["object"], account["type"]) == ("account", "express")
    assert not account["charges_enabled"] and not account["payouts_enabled"]
    assert not account["details_submitted"]
    assert account["capabilities"] == {"card_payments": "inactive", "transfers": "inactive"}
    requirements = account["requirements"]
    assert requirements["disabled_reason"] == "requirements.past_due"
    assert "external_account" in requirements["currently_due"]
    assert "business_type" not in requirements["currently_due"]  # given at creation
    assert requirements["past_due"] == requirements["currently_due"]
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.checkout.sessions.create(params=session_params(account["id"]))
    assert refused.value.code == "insufficient_capabilities_for_transfer"


def test_given_an_account_link_when_a_person_clicks_through_then_requirements_shrink_and_each_step_is_signed_to_the_connect_endpoint(  # noqa: E501
    client: stripe.StripeClient,
    sandbox: StripeSandbox,
    receiver: Receiver,
    connect_receiver: Receiver,
) -> None:
    account = new_account(client)
    link = new_link(client, account.id)
    assert link.object == "account_link"
    assert link.expires_at - link.created == 300
    browser = requests.Session()

    seen: list[list[str]] = []
    page = browser.get(link.url, timeout=10)
    for step, (title, _, _) in enumerate(STEPS):
        assert page.status_code == 200 and title in page.text
        seen.append(still_needed(page.text))
        answer = browser.post(link.url, data={"step": str(step)}, allow_redirects=False)
        assert answer.status_code == 303
        if step < len(STEPS) - 1:
            page = browser.get(link.url, timeout=10)
    assert answer.headers["Location"] == "http://127.0.0.1:1/onboarding?return=trust"

    sizes = [len(due) for due in seen]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == len(sizes)
    assert seen[0] == [f for f in REQUIRED if f != "business_type"]
    done = client.v1.accounts.retrieve(account.id).to_dict()
    assert done["charges_enabled"] and done["payouts_enabled"] and done["details_submitted"]
    assert done["requirements"]["currently_due"] == done["requirements"]["past_due"] == []
    assert done["requirements"]["disabled_reason"] is None
    assert done["capabilities"]["transfers"] == "active"
    assert done["tos_acceptance"]["date"] is not None
    assert done["external_accounts"]["data"][0]["last4"] == "6789"

    assert receiver.received == []  # Connect events go to the Connect endpoint only
    events = [connect_event(r) for r in connect_receiver.received]
    assert [e.type for e in events] == ["account.updated"] * len(STEPS)
    assert {e.account for e in events} == {account.id}  # Stripe's top-level `account`
    last = json.loads(connect_receiver.received[-1].body)
    assert last["data"]["object"]["charges_enabled"] is True
    assert last["data"]["previous_attributes"]["charges_enabled"] is False
    # Onboarded: the account takes destination charges now, and a used link goes back.
    assert client.v1.checkout.sessions.create(params=session_params(account.id)).id
    back = browser.get(link.url, allow_redirects=False, timeout=10)
    assert back.headers["Location"] == "http://127.0.0.1:1/onboarding?return=trust"


def test_given_an_expired_link_then_the_person_is_sent_to_refresh_url(
    client: stripe.StripeClient, sandbox: StripeSandbox
) -> None:
    account = new_account(client)
    link = new_link(client, account.id)
    sandbox.state.clock = lambda: time.time() + 301

    page = requests.get(link.url, allow_redirects=False, timeout=10)
    submit = requests.post(link.url, data={"step": "0"}, allow_redirects=False, timeout=10)

    assert page.status_code == submit.status_code == 303
    assert page.headers["Location"] == "http://127.0.0.1:1/onboarding?refresh=trust"
    assert submit.headers["Location"] == page.headers["Location"]
    assert client.v1.accounts.retrieve(account.id).charges_enabled is False
    other = new_account(client, "operating")
    wrong = requests.get(link.url.replace(account.id, other.id), timeout=10)
    assert wrong.status_code == 404


def test_given_bad_account_link_params_then_stripes_errors(
    client: stripe.StripeClient,
) -> None:
    account = new_account(client)
    base = {"account": account.id, "type": "account_onboarding"}
    with pytest.raises(stripe.InvalidRequestError) as no_return:
        client.v1.account_links.create(params={**base, "refresh_url": "https://x.test/r"})
    assert no_return.value.param == "return_url"
    with pytest.raises(stripe.InvalidRequestError) as update:
        client.v1.account_links.create(
            params={
                **base,
                "type": "account_update",
                "refresh_url": "https://x.test/r",
                "return_url": "https://x.test/b",
            }
        )
    assert "Express" in str(update.value)
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.account_links.create(
            params={
                **base,
                "account": "acct_nope",
                "refresh_url": "https://x.test/r",
                "return_url": "https://x.test/b",
            }
        )
    assert unknown.value.code == "resource_missing"


def test_given_the_complete_control_then_one_account_updated_and_a_second_call_is_refused(
    client: stripe.StripeClient, sandbox: StripeSandbox, connect_receiver: Receiver
) -> None:
    account = new_account(client)

    done = requests.post(f"{sandbox.url}/_sandbox/accounts/{account.id}/complete", timeout=10)
    again = requests.post(f"{sandbox.url}/_sandbox/accounts/{account.id}/complete", timeout=10)

    assert done.status_code == 200 and again.status_code == 409
    assert done.json()["account"]["charges_enabled"] is True
    assert [connect_event(r).type for r in connect_receiver.received] == ["account.updated"]
    assert done.json()["events"] == [connect_event(connect_receiver.received[0]).id]


def test_given_stripe_asks_for_more_when_past_due_then_charges_stop_until_collected(
    client: stripe.StripeClient, sandbox: StripeSandbox, connect_receiver: Receiver
) -> None:
    account = new_account(client)
    requests.post(f"{sandbox.url}/_sandbox/accounts/{account.id}/complete", timeout=10)

    asked = requests.post(
        f"{sandbox.url}/_sandbox/accounts/{account.id}/requirements",
        json={"past_due": ["company.verification.document"]},
        timeout=10,
    ).json()["account"]

    assert asked["charges_enabled"] is False
    assert asked["requirements"]["past_due"] == ["company.verification.document"]
    assert asked["requirements"]["disabled_reason"] == "requirements.past_due"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.checkout.sessions.create(params=session_params(account.id))
    page = requests.get(new_link(client, account.id).url, timeout=10)
    assert still_needed(page.text) == ["company.verification.document"]
    requests.post(f"{sandbox.url}/_sandbox/accounts/{account.id}/complete", timeout=10)
    assert client.v1.accounts.retrieve(account.id).charges_enabled is True
    assert len(connect_receiver.received) == 3


def test_given_an_application_fee_then_only_on_a_destination_charge_and_never_beyond_its_amount(
    client: stripe.StripeClient, sandbox: StripeSandbox
) -> None:
    account = new_account(client)
    requests.post(f"{sandbox.url}/_sandbox/accounts/{account.id}/complete", timeout=10)
    params = session_params(account.id)

    with_fee = {**params}
    intent = params["payment_intent_data"]
    with_fee["payment_intent_data"] = {**intent, "application_fee_amount": 30}
    session = client.v1.checkout.sessions.create(params=with_fee)
    paid = requests.post(
        f"{sandbox.url}/_sandbox/checkout_sessions/{session.id}/pay",
        json={"method": "card"},
        timeout=10,
    ).json()
    assert paid["payment_intent"]["application_fee_amount"] == 30
    charge = client.v1.charges.retrieve(paid["payment_intent"]["latest_charge"]).to_dict()
    assert charge["application_fee_amount"] == 30
    assert charge["application_fee"].startswith("fee_")

    too_much = {**params}
    too_much["payment_intent_data"] = {
        **params["payment_intent_data"],
        "application_fee_amount": session.amount_total + 1,
    }
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.checkout.sessions.create(params=too_much)
    no_destination = {**params, "payment_intent_data": {"application_fee_amount": 30}}
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.checkout.sessions.create(params=no_destination)
    assert refused.value.param == "payment_intent_data[application_fee_amount]"


def test_given_accounts_and_links_when_the_sandbox_restarts_then_onboarding_goes_on(
    tmp_path: Path,
) -> None:
    def on() -> tuple[LocalState, StripeSandbox]:
        saved = LocalState.open(tmp_path)
        made = StripeSandbox(port=0, api_key=API_KEY)
        saved.attach_stripe(made)
        made.start()
        return saved, made

    saved, first = on()
    try:
        api = stripe.StripeClient(API_KEY, base_addresses={"api": first.url})
        account = new_account(api)
        link = new_link(api, account.id)
        requests.post(link.url, data={"step": "0"}, allow_redirects=False, timeout=10)
        path = link.url.split(first.url, 1)[1]
    finally:
        first.stop()
        saved.close()

    saved, second = on()
    try:
        page = requests.get(f"{second.url}{path}", timeout=10)
        assert page.status_code == 200 and STEPS[1][0] in page.text
        api = stripe.StripeClient(API_KEY, base_addresses={"api": second.url})
        kept = api.v1.accounts.retrieve(account.id).to_dict()
        assert "company.name" not in kept["requirements"]["currently_due"]
        assert "external_account" in kept["requirements"]["currently_due"]
    finally:
        second.stop()
        saved.close()
