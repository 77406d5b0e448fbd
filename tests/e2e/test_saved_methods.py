"""Saved cards and bank accounts end to end over HTTP against the local stack (issue 12): the
client ticks "save" at checkout and pays on the Stripe sandbox, the webhook keeps the card for
that client, a later pay link of the same client pays with it (off-session, split into trust
and operating, recorded once), another client's link never sees it, and forgetting it detaches
it in Stripe. Each test a firm of its own."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from tests.e2e.test_payments import send_bills

pytestmark = pytest.mark.e2e


def saved_methods(client: Any) -> list[dict[str, Any]]:
    answer = requests.get(f"{client.pay_url}/saved-methods", timeout=30)
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["saved_methods"]
    return found


def wait_saved(client: Any, count: int = 1, timeout: float = 60) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        found = saved_methods(client)
        if len(found) == count:
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.2)


def checkout_saving_card(client: Any, bill: str) -> str:
    """A card checkout of $50.00 on the bill with "save" ticked: its session's id."""
    body = {"bill_ids": [bill], "method": "card", "amount_cents": 5_000, "save_method": True}
    started = requests.post(f"{client.pay_url}/checkout", json=body, timeout=60)
    assert started.status_code == 201, started.text
    (session,) = started.json()["checkout_sessions"]
    return str(session["id"])


def paid_gl(firm: Any, ids: list[str], want: dict[str, int], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        items = firm.get("/invoices", states="awaiting_payment,paid", page_size=100).json()
        got = {i["id"]: i["paid_gl_cents"] for i in items["items"] if i["id"] in ids}
        if got == want:
            return
        assert time.monotonic() < deadline, got
        time.sleep(0.2)


def test_given_a_saved_card_then_a_later_link_pays_with_it_and_forgetting_detaches_it(
    new_firm, stripe_sandbox, local_stack
):
    firm, clio = new_firm()
    first, (bill_a,), _ = send_bills(firm, clio, [{"total_cents": 20_000}])
    stripe_sandbox.pay(checkout_saving_card(first, bill_a))
    (card,) = wait_saved(first)
    assert (
        card["label"] == "Visa ending 4242"
        and card["display"] == "Visa \u2022\u2022\u2022\u2022 4242"
    )
    assert card["id"].startswith("sm_")

    later, (invoice, trust), _ = send_bills(
        firm, clio, [{"total_cents": 30_000}, {"total_cents": 10_000, "kind": "trust_request"}]
    )
    listed = requests.get(f"{later.pay_url}/saved-methods", timeout=30)
    assert [m["id"] for m in listed.json()["saved_methods"]] == [card["id"]]
    assert "pm_" not in listed.text and "cus_" not in listed.text  # no Stripe ids
    page = requests.get(later.pay_url, timeout=30).content.decode()  # UTF-8, as its meta says
    assert "Pay with" in page and "Visa \u2022\u2022\u2022\u2022 4242" in page

    body = {"bill_ids": [invoice, trust]}
    key = {"Idempotency-Key": "saved-e2e-1"}
    paid = requests.post(
        f"{later.pay_url}/saved-methods/{card['id']}/pay", json=body, headers=key, timeout=60
    )
    assert paid.status_code == 201, paid.text
    answer = paid.json()
    assert sorted((p["account"], p["amount_cents"], p["status"]) for p in answer["payments"]) == [
        ("operating", 30_000, "succeeded"),
        ("trust", 10_000, "succeeded"),
    ]
    assert "Paid $300.00 with Visa ending 4242" in answer["message"]
    assert answer["checkout"] is None
    again = requests.post(
        f"{later.pay_url}/saved-methods/{card['id']}/pay", json=body, headers=key, timeout=60
    )
    assert again.status_code == 201 and again.json()["payments"] == answer["payments"]
    paid_gl(firm, [bill_a, invoice, trust], {bill_a: 5_000, invoice: 30_000, trust: 10_000})
    intents = [
        e["data"]["object"]
        for e in stripe_sandbox.events()
        if e["type"] == "payment_intent.succeeded"
        and e["data"]["object"]["metadata"].get("saved_method_id") == card["id"]
    ]
    assert sorted(i["amount"] for i in intents) == [10_000, 30_000]  # charged once each
    by_account = {i["metadata"]["account"]: i for i in intents}
    assert (
        by_account["trust"]["transfer_data"]["destination"]
        != (by_account["operating"]["transfer_data"]["destination"])
    )
    assert by_account["trust"].get("application_fee_amount") is None  # trust paid in full
    address = f"{clio.account}@client.example"
    deadline = time.monotonic() + 60
    while True:  # a receipt per charge, once, as for any payment
        receipts = sorted(
            m["subject"]
            for m in local_stack.outbox()
            if m["to"] == [address] and m["subject"].startswith("Receipt: your payment of")
        )
        if len(receipts) >= 3:
            break
        assert time.monotonic() < deadline, receipts
        time.sleep(0.2)
    assert [r.split(" to ")[0] for r in receipts] == [
        "Receipt: your payment of $100.00",
        "Receipt: your payment of $300.00",
        "Receipt: your payment of $50.00",
    ]

    other, (theirs,), _ = send_bills(
        firm, clio, [{"total_cents": 7_000}], client_name="Other Client"
    )
    assert saved_methods(other) == []
    stolen = requests.post(
        f"{other.pay_url}/saved-methods/{card['id']}/pay", json={"bill_ids": [theirs]}, timeout=30
    )
    assert stolen.status_code == 404 and stolen.json()["error"]["code"] == "not_found"

    gone = requests.post(f"{later.pay_url}/saved-methods/{card['id']}/forget", json={}, timeout=60)
    assert gone.status_code == 200, gone.text
    assert gone.json()["message"] == (
        "Visa ending 4242 is forgotten: it will not be offered or charged again."
    )
    assert saved_methods(later) == [] and saved_methods(first) == []
    assert any(e["type"] == "payment_method.detached" for e in stripe_sandbox.events())
    refused = requests.post(
        f"{first.pay_url}/saved-methods/{card['id']}/pay",
        json={"bill_ids": [bill_a]},
        timeout=30,
    )
    assert refused.status_code == 404
    assert refused.json()["error"]["message"] == (
        "This saved card or bank account is not available on this payment link."
    )


def test_given_a_saved_bank_account_then_saving_needs_the_mandate_and_paying_is_processing(
    new_firm, stripe_sandbox
):
    firm, clio = new_firm()
    client, (bill,), _ = send_bills(firm, clio, [{"total_cents": 40_000}])
    body = {"bill_ids": [bill], "method": "ach", "amount_cents": 10_000, "save_method": True}
    refused = requests.post(f"{client.pay_url}/checkout", json=body, timeout=60)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "mandate_not_accepted"
    started = requests.post(
        f"{client.pay_url}/checkout", json={**body, "mandate_accepted": True}, timeout=60
    )
    assert started.status_code == 201, started.text
    (session,) = started.json()["checkout_sessions"]
    stripe_sandbox.pay(session["id"], method="ach")
    (bank,) = wait_saved(client)
    assert bank["method"] == "ach" and bank["label"].endswith("ending 6789")

    paid = requests.post(
        f"{client.pay_url}/saved-methods/{bank['id']}/pay",
        json={"bill_ids": [bill], "amount_cents": 20_000},
        timeout=60,
    )
    assert paid.status_code == 201, paid.text
    (part,) = paid.json()["payments"]
    assert part["status"] == "processing" and part["amount_cents"] == 20_000
    assert "is processing" in paid.json()["message"]
    bad = requests.post(
        f"{client.pay_url}/saved-methods/{bank['id']}/pay",
        json={"bill_ids": [bill], "amount_cents": 10_000_000},
        timeout=60,
    )
    assert bad.status_code == 422, bad.text
    assert "$" in bad.json()["error"]["message"]  # money format, never raw cents


def test_given_a_saved_card_then_a_plan_chosen_on_the_pay_page_uses_it_at_once(
    new_firm, stripe_sandbox
):
    from tests.e2e.test_plans import choose_plan

    firm, clio = new_firm()
    client, (bill,), _ = send_bills(firm, clio, [{"total_cents": 30_000}])
    stripe_sandbox.pay(checkout_saving_card(client, bill))
    wait_saved(client)
    setups_before = [e for e in stripe_sandbox.events() if e["type"] == "setup_intent.created"]
    chosen = choose_plan(client, [bill])
    assert chosen["setup_url"] is None
    assert chosen["plan"]["status"] == "active" and chosen["plan"]["method"] == "Visa ending 4242"
    assert chosen["message"].startswith(
        "Your payment plan is set up on your saved Visa ending 4242"
    )
    setups_after = [e for e in stripe_sandbox.events() if e["type"] == "setup_intent.created"]
    assert setups_after == setups_before  # no second SetupIntent


def test_given_a_saved_card_that_needs_authentication_then_checkout_takes_over(
    new_firm, stripe_sandbox
):
    firm, clio = new_firm()
    client, (bill,), _ = send_bills(firm, clio, [{"total_cents": 20_000}])
    stripe_sandbox.control(
        f"checkout_sessions/{checkout_saving_card(client, bill)}/pay",
        {"method": "card", "test_method": "pm_card_authenticationRequired"},
    )
    (card,) = wait_saved(client)
    assert card["label"] == "Visa ending 3184"
    url = f"{client.pay_url}/saved-methods/{card['id']}/pay"
    key = {"Idempotency-Key": "auth-e2e-1"}
    paid = requests.post(url, json={"bill_ids": [bill]}, headers=key, timeout=60)
    assert paid.status_code == 201, paid.text
    answer = paid.json()
    assert [p["status"] for p in answer["payments"]] == ["failed"]
    assert "wants you to confirm the payment of $150.00" in answer["message"]
    assert answer["checkout"] == {"bill_ids": [bill], "amount_cents": 15_000, "method": "card"}
    # The page's request again (a retry): the same answer, Stripe's page offered again.
    replayed = requests.post(url, json={"bill_ids": [bill]}, headers=key, timeout=60)
    assert replayed.status_code == 201, replayed.text
    assert replayed.json() == answer
    again = requests.post(f"{client.pay_url}/checkout", json=answer["checkout"], timeout=60)
    assert again.status_code == 201, again.text  # not held: Stripe's page takes it
    (session,) = again.json()["checkout_sessions"]
    assert session["amount_cents"] == 15_000
    stripe_sandbox.pay(session["id"])
    paid_gl(firm, [bill], {bill: 20_000})


def test_given_hostile_input_to_the_saved_method_routes_then_4xx_in_the_error_shape(
    new_firm, stripe_sandbox
):
    """Malformed bodies, unknown or malformed ids, another link's method, a huge amount: each a
    4xx in the api.md error shape (never a 5xx), nothing charged, the method still saved."""
    from tests.e2e.test_hostile_input import api_error, post_raw

    firm, clio = new_firm()
    client, (bill,), _ = send_bills(firm, clio, [{"total_cents": 20_000}])
    stripe_sandbox.pay(checkout_saving_card(client, bill))
    (card,) = wait_saved(client)
    pay_url = f"{client.pay_url}/saved-methods/{card['id']}/pay"
    unknown = "sm_" + "0" * 24
    bad_token = client.pay_url.rsplit("/", 1)[0] + "/not-a-token"
    cases: list[tuple[str, str, bytes, dict[str, str], set[int]]] = [
        ("GET", f"{bad_token}/saved-methods", b"", {}, {404}),
        ("POST", f"{bad_token}/saved-methods/{card['id']}/pay", b'{"bill_ids": ["1"]}', {}, {404}),
        ("POST", f"{bad_token}/saved-methods/{card['id']}/forget", b"", {}, {404}),
        (
            "POST",
            f"{client.pay_url}/saved-methods/{unknown}/pay",
            b'{"bill_ids": ["1"]}',
            {},
            {404},
        ),
        ("POST", f"{client.pay_url}/saved-methods/{unknown}/forget", b"", {}, {404}),
        (
            "POST",
            f"{client.pay_url}/saved-methods/card-123/pay",
            b'{"bill_ids": ["1"]}',
            {},
            {404, 422},
        ),
        ("POST", f"{client.pay_url}/saved-methods/card-123/forget", b"", {}, {404, 422}),
        ("POST", pay_url, b"not json", {}, {400}),
        ("POST", pay_url, b"", {}, {400, 422}),
        ("POST", pay_url, b"[]", {}, {400, 422}),
        ("POST", pay_url, b'{"bill_ids": "1"}', {}, {400, 422}),
        ("POST", pay_url, b'{"bill_ids": []}', {}, {422}),
        ("POST", pay_url, b'{"bill_ids": [1]}', {}, {400, 422}),
        ("POST", pay_url, b'{"bill_ids": ["-1"]}', {}, {422}),
        ("POST", pay_url, b'{"bill_ids": ["1e3"]}', {}, {422}),
        (
            "POST",
            pay_url,
            f'{{"bill_ids": ["{bill}"], "amount_cents": "500"}}'.encode(),
            {},
            {400, 422},
        ),
        (
            "POST",
            pay_url,
            f'{{"bill_ids": ["{bill}"], "amount_cents": 1.5}}'.encode(),
            {},
            {400, 422},
        ),
        (
            "POST",
            pay_url,
            f'{{"bill_ids": ["{bill}"], "amount_cents": true}}'.encode(),
            {},
            {400, 422},
        ),
        ("POST", pay_url, f'{{"bill_ids": ["{bill}"], "amount_cents": 0}}'.encode(), {}, {422}),
        ("POST", pay_url, f'{{"bill_ids": ["{bill}"], "amount_cents": 1}}'.encode(), {}, {422}),
        (
            "POST",
            pay_url,
            f'{{"bill_ids": ["{bill}"], "amount_cents": {10**30}}}'.encode(),
            {},
            {422},
        ),
        ("POST", pay_url, f'{{"bill_ids": ["{bill}"], "method": "ach"}}'.encode(), {}, {400, 422}),
        ("POST", pay_url, b'{"bill_ids": ["999999999999999999"]}', {}, {422}),
        (
            "POST",
            pay_url,
            f'{{"bill_ids": ["{bill}"]}}'.encode(),
            {"Idempotency-Key": "k" * 101},
            {400, 422},
        ),
        ("POST", pay_url, b'{"bill_ids": ["caf\xe9"]}', {}, {400, 422}),
        ("POST", pay_url, b'{"bill_ids": ["1"], "note": "caf\xe9"}', {}, {400, 422}),
    ]
    for method, url, raw, headers, statuses in cases:
        if method == "GET":
            answer = requests.get(url, timeout=60)
        else:
            answer = post_raw(url, raw, headers)
        assert answer.status_code in statuses, (url, raw, answer.status_code, answer.text)
        error = api_error(answer)
        assert "pm_" not in answer.text and "cus_" not in answer.text, answer.text
        assert "Traceback" not in error["message"], error
    # Another client's link (same firm) does not know the method: 404, nothing forgotten.
    other, (other_bill,), _ = send_bills(
        firm, clio, [{"total_cents": 9_000}], client_name="Another Client"
    )
    for path in ("pay", "forget"):
        answer = post_raw(
            f"{other.pay_url}/saved-methods/{card['id']}/{path}",
            f'{{"bill_ids": ["{other_bill}"]}}'.encode(),
        )
        assert answer.status_code == 404, answer.text
        assert api_error(answer)["field"] == "method_id"
    assert [m["id"] for m in saved_methods(client)] == [card["id"]]
    paid_gl(firm, [bill], {bill: 5_000})  # only the first checkout's money
