"""Input a careless integrator or an attacker sends (issue 9, findings 7 and 8), over HTTP
against the local stack: money and flags of the wrong JSON type, bodies that are not UTF-8,
pay tokens that are not ASCII, and requests without a login. Each is a 4xx in the api.md error
shape naming what is wrong, and changes nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from local.aws_template import load_template
from tests.e2e.test_payments import send_bills, transactions

pytestmark = pytest.mark.e2e

NOT_UTF8 = b'{"bill_ids": ["1"], "note": "caf\xe9"}'  # Latin-1, as an old client might send
# JSON whose money or flag is not the type the contract says: a bool, a string, a float.
LOOSE_AMOUNTS = ("true", '"5000"', "1e2", "100.0", "false")


def api_error(answer: requests.Response) -> dict[str, Any]:
    """The api.md error body; fails unless the answer is exactly that shape."""
    assert answer.headers["Content-Type"].startswith("application/json"), answer.text
    body = answer.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "field"}, body
    assert body["error"]["message"], body
    error: dict[str, Any] = body["error"]
    return error


def post_raw(url: str, body: bytes, headers: dict[str, str] | None = None) -> requests.Response:
    return requests.post(
        url,
        data=body,
        headers={"Content-Type": "application/json", **(headers or {})},
        timeout=60,
    )


def test_given_a_refund_whose_amount_is_not_an_integer_then_400_names_it_and_nothing_is_refunded(
    new_firm, stripe_sandbox
):
    firm, clio = new_firm()
    client, (bill,), link_id = send_bills(firm, clio, [{"total_cents": 8_000}])
    (session,) = client.sessions([bill])
    stripe_sandbox.pay(session["id"])
    (payment,) = transactions(firm, link_id)
    url = f"{firm.stack.api_url}/payment-links/{link_id}/transactions/{payment['id']}/refunds"
    for amount in LOOSE_AMOUNTS:
        answer = firm.session.post(
            url,
            data=f'{{"amount_cents": {amount}}}',
            headers={"Content-Type": "application/json"},
            timeout=60,
        )
        assert answer.status_code == 400, (amount, answer.text)
        assert api_error(answer)["field"] == "amount_cents", amount
    (unchanged,) = transactions(firm, link_id)
    assert unchanged["refunded_cents"] == 0 and unchanged["refundable_cents"] == 8_000


def test_given_a_checkout_whose_amount_is_not_an_integer_then_400_names_it(new_firm):
    firm, clio = new_firm()
    client, (bill,), link_id = send_bills(firm, clio, [{"total_cents": 8_000}])
    for amount in LOOSE_AMOUNTS:
        answer = post_raw(
            f"{client.pay_url}/checkout",
            f'{{"bill_ids": ["{bill}"], "amount_cents": {amount}}}'.encode(),
        )
        assert answer.status_code == 400, (amount, answer.text)
        assert api_error(answer)["field"] == "amount_cents", amount
    assert transactions(firm, link_id) == []


@pytest.mark.parametrize("flag", ['"yes"', '"true"', "1", "0", "null"])
def test_given_settings_whose_flag_is_not_a_boolean_then_400_names_it_and_nothing_changes(
    new_firm, flag
):
    firm, _ = new_firm()
    before = firm.get("/settings").json()
    body = dict(before)
    body.pop("aggregate_payment_links")
    text = json.dumps(body)[:-1] + f', "aggregate_payment_links": {flag}}}'
    answer = firm.session.put(
        f"{firm.stack.api_url}/settings",
        data=text,
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    assert answer.status_code == 400, answer.text
    assert api_error(answer)["field"] == "aggregate_payment_links"
    assert firm.get("/settings").json() == before


def test_given_bodies_that_are_not_utf8_then_each_route_answers_400_in_the_error_shape(
    new_firm, stripe_sandbox
):
    firm, clio = new_firm()
    client, (bill,), link_id = send_bills(firm, clio, [{"total_cents": 5_000}])
    # A draft to PATCH, made while the bill is still payable (a paid bill is not drafted).
    envelope = firm.post("/envelopes", {"bill_ids": [bill]}).json()["envelopes"][0]
    (session,) = client.sessions([bill])
    stripe_sandbox.pay(session["id"])
    (payment,) = transactions(firm, link_id)
    api = firm.stack.api_url
    auth = {"Authorization": f"Bearer dev-{firm.firm_id}"}
    calls = [
        ("POST", f"{api}/envelopes", auth),
        ("PATCH", f"{api}/envelopes/{envelope['id']}", auth),
        ("PUT", f"{api}/settings", auth),
        ("POST", f"{api}/payment-links/{link_id}/transactions/{payment['id']}/refunds", auth),
        ("POST", f"{client.pay_url}/checkout", {}),
        ("POST", f"{api}/webhooks/stripe", {"Stripe-Signature": "t=1,v1=" + "0" * 64}),
        ("POST", f"{api}/webhooks/clio?firm_id={firm.firm_id}", {"X-Hook-Signature": "0" * 64}),
    ]
    settings_before = firm.get("/settings").json()
    for method, url, headers in calls:
        answer = requests.request(
            method,
            url,
            data=NOT_UTF8,
            headers={"Content-Type": "application/json", **headers},
            timeout=60,
        )
        assert answer.status_code == 400, (method, url, answer.status_code, answer.text)
        assert api_error(answer)["code"] == "invalid_encoding", (method, url)
    assert firm.get("/settings").json() == settings_before
    assert firm.get(f"/envelopes/{envelope['id']}").json()["subject"] == envelope["subject"]
    (unchanged,) = transactions(firm, link_id)
    assert unchanged["refunded_cents"] == 0


@pytest.mark.parametrize("token", ["%C3%A9t%C3%A9", "caf%C3%A9" * 5, "%E2%82%AC", "%F0%9F%92%B8"])
def test_given_a_pay_token_that_is_not_ascii_then_the_page_and_checkout_are_404(local_stack, token):
    url = f"{local_stack.api_url}/pay/{token}"
    page = requests.get(url, timeout=30)
    assert page.status_code == 404 and "text/html" in page.headers["Content-Type"], page.text
    as_json = requests.get(url, headers={"Accept": "application/json"}, timeout=30)
    assert as_json.status_code == 404 and api_error(as_json)["code"] == "not_found"
    checkout = requests.post(f"{url}/checkout", json={"bill_ids": ["1"]}, timeout=30)
    assert checkout.status_code == 404 and api_error(checkout)["code"] == "not_found"


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer real-jwt"}, {"Authorization": "dev-demo"}]
)
def test_given_no_valid_login_then_the_firm_api_answers_401_in_the_error_shape(
    local_stack, headers
):
    answer = requests.get(f"{local_stack.api_url}/invoices", headers=headers, timeout=30)
    assert answer.status_code == 401
    assert api_error(answer)["code"] == "unauthorized"
    # Exactly what API Gateway answers once deployed: the template's UNAUTHORIZED response.
    api = load_template()["Resources"]["FirmApi"]["Properties"]
    declared = api["GatewayResponses"]["UNAUTHORIZED"]["ResponseTemplates"]["application/json"]
    assert answer.json() == json.loads(declared)


def test_given_a_method_a_public_path_does_not_take_then_405_says_which_it_does(local_stack):
    for method, path, allowed in (
        ("DELETE", "/webhooks/stripe", "POST"),
        ("GET", "/webhooks/clio", "POST"),
        ("TRACE", "/pay/some-token", "GET"),
        ("PUT", "/pay/some-token/checkout", "POST"),
        ("POST", "/clio/callback", "GET"),
    ):
        answer = requests.request(method, f"{local_stack.api_url}{path}", timeout=30)
        assert answer.status_code == 405, (method, path, answer.text)
        assert answer.headers["Allow"] == allowed
        assert api_error(answer)["code"] == "method_not_allowed"
