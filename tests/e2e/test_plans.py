"""Payment plans end to end over HTTP against the local stack: the client chooses a plan on the
pay page and saves a card on the Stripe sandbox's setup page, the schedule (`POST
/_local/tick`) charges the installments off-session into trust and operating, a declined
installment is told and retried, and staff read and cancel plans. Each test a firm of its own."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from tests.e2e.test_payments import send_bills

pytestmark = pytest.mark.e2e


def today() -> str:
    return datetime.now(UTC).date().isoformat()


def choose_plan(client: Any, bill_ids: list[str], **extra: Any) -> dict[str, Any]:
    body = {"bill_ids": bill_ids, "installment_cents": 10_000, "every": "month"}
    body.update({"start_on": today(), **extra})
    answer = requests.post(f"{client.pay_url}/payment-plans", json=body, timeout=60)
    assert answer.status_code == 201, answer.text
    result: dict[str, Any] = answer.json()
    return result


def save_method(stripe_sandbox: Any, setup_url: str, test_method: str | None = None) -> None:
    body: dict[str, Any] = {"method": "card"}
    if test_method:
        body["test_method"] = test_method
    stripe_sandbox.control(f"checkout_sessions/{setup_url.rsplit('/', 1)[1]}/pay", body)


def wait_plan(firm: Any, plan_id: str, status: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        plan: dict[str, Any] = firm.get(f"/payment-plans/{plan_id}").json()
        if plan.get("status") == status:
            return plan
        assert time.monotonic() < deadline, plan
        time.sleep(0.2)


def tick(local_stack: Any) -> None:
    answer = local_stack.control("POST", "/_local/tick")
    assert answer.status_code == 202, answer.text


def paid_gl(firm: Any, ids: list[str]) -> dict[str, int]:
    items = firm.get("/invoices", states="awaiting_payment,paid", page_size=100).json()["items"]
    return {i["id"]: i["paid_gl_cents"] for i in items if i["id"] in ids}


def test_given_a_client_plan_on_the_pay_page_then_installments_are_charged_on_their_dates(
    new_firm, stripe_sandbox, local_stack
):
    firm, clio = new_firm()
    client, ids, _ = send_bills(
        firm, clio, [{"total_cents": 25_000}, {"total_cents": 5_000, "kind": "trust_request"}]
    )
    options = requests.get(f"{client.pay_url}/payment-plans", timeout=30).json()["options"]
    assert options["offered"] and options["min_installment_cents"] == 5_000
    chosen = choose_plan(client, ids)
    plan = chosen["plan"]
    assert plan["status"] == "awaiting_method"
    assert plan["summary"].startswith("3 installments of $100.00 every month")

    save_method(stripe_sandbox, chosen["setup_url"])
    active = wait_plan(firm, plan["id"], "active")
    assert active["method"] == "Visa ending 4242"

    tick(local_stack)
    tick(local_stack)  # a duplicate tick charges nothing more

    charged = firm.get(f"/payment-plans/{plan['id']}").json()
    first = charged["installments"][0]
    assert first["status"] == "paid" and first["attempts"] == 1
    assert sum(p["amount_cents"] for p in first["parts"]) == 10_000
    deadline = time.monotonic() + 60
    while sum(paid_gl(firm, ids).values()) != 10_000:  # the webhooks agree, once
        assert time.monotonic() < deadline, paid_gl(firm, ids)
        time.sleep(0.2)
    intents = [e for e in stripe_sandbox.events() if e["type"] == "payment_intent.succeeded"]
    ours = [e for e in intents if e["data"]["object"]["metadata"].get("plan_id") == plan["id"]]
    assert len(ours) == len(first["parts"])
    assert all(e["data"]["object"]["metadata"]["installment"] == "1" for e in ours)


def test_given_a_card_declined_off_session_then_told_and_scheduled_again(
    new_firm, stripe_sandbox, local_stack
):
    firm, clio = new_firm()
    client, ids, _ = send_bills(firm, clio, [{"total_cents": 30_000}])
    chosen = choose_plan(client, ids)
    save_method(stripe_sandbox, chosen["setup_url"], "pm_card_chargeCustomerFail")
    wait_plan(firm, chosen["plan"]["id"], "active")

    tick(local_stack)

    plan = firm.get(f"/payment-plans/{chosen['plan']['id']}").json()
    first = plan["installments"][0]
    assert first["status"] == "retry_scheduled" and first["failure"] == "card_declined"
    assert paid_gl(firm, ids) == {ids[0]: 0}
    client_address = f"{clio.account}@client.example"
    deadline = time.monotonic() + 60  # the tick or Stripe's webhook tells it, whichever is first
    while True:
        told = [
            m
            for m in local_stack.outbox()
            if "could not be charged" in m["subject"] and m["to"] == [client_address]
        ]
        if told:
            break
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert len(told) == 1
    assert any("$100.00" in m["subject"] and "declined" in m["body"] for m in told)


def test_given_staff_make_a_plan_then_it_waits_for_the_clients_method_and_can_be_canceled(
    new_firm, local_stack
):
    firm, clio = new_firm()
    _, ids, _ = send_bills(firm, clio, [{"total_cents": 20_000}])
    made = firm.post(
        "/payment-plans",
        {"bill_ids": ids, "installment_cents": 5_000, "every": "week", "start_on": today()},
    )
    assert made.status_code == 201, made.text
    plan = made.json()
    assert plan["status"] == "awaiting_method" and plan["pay_url"].startswith("http")
    assert [i["amount_cents"] for i in plan["installments"]] == [5_000] * 4

    again = firm.post(
        "/payment-plans",
        {"bill_ids": ids, "installment_cents": 5_000, "every": "week", "start_on": today()},
    )
    assert again.status_code == 422 and again.json()["error"]["code"] == "bill_in_plan"

    canceled = firm.post(f"/payment-plans/{plan['id']}/cancel")
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    other = new_firm()[0]
    assert other.get(f"/payment-plans/{plan['id']}").status_code == 404  # never another firm's
