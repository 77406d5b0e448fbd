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
    started = requests.post(
        f"{first.pay_url}/checkout",
        json={"bill_ids": [bill_a], "method": "card", "amount_cents": 5_000, "save_method": True},
        timeout=60,
    )
    assert started.status_code == 201, started.text
    (session,) = started.json()["checkout_sessions"]
    stripe_sandbox.pay(session["id"])
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
    body = {"bill_ids": [bill], "method": "card", "amount_cents": 5_000, "save_method": True}
    started = requests.post(f"{client.pay_url}/checkout", json=body, timeout=60)
    assert started.status_code == 201, started.text
    stripe_sandbox.pay(started.json()["checkout_sessions"][0]["id"])
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
    body = {"bill_ids": [bill], "method": "card", "amount_cents": 5_000, "save_method": True}
    started = requests.post(f"{client.pay_url}/checkout", json=body, timeout=60)
    assert started.status_code == 201, started.text
    stripe_sandbox.control(
        f"checkout_sessions/{started.json()['checkout_sessions'][0]['id']}/pay",
        {"method": "card", "test_method": "pm_card_authenticationRequired"},
    )
    (card,) = wait_saved(client)
    assert card["label"] == "Visa ending 3184"
    paid = requests.post(
        f"{client.pay_url}/saved-methods/{card['id']}/pay", json={"bill_ids": [bill]}, timeout=60
    )
    assert paid.status_code == 201, paid.text
    answer = paid.json()
    assert [p["status"] for p in answer["payments"]] == ["failed"]
    assert "wants you to confirm the payment of $150.00" in answer["message"]
    assert answer["checkout"] == {"bill_ids": [bill], "amount_cents": 15_000, "method": "card"}
    again = requests.post(f"{client.pay_url}/checkout", json=answer["checkout"], timeout=60)
    assert again.status_code == 201, again.text  # not held: Stripe's page takes it
    (session,) = again.json()["checkout_sessions"]
    assert session["amount_cents"] == 15_000
    stripe_sandbox.pay(session["id"])
    paid_gl(firm, [bill], {bill: 20_000})
