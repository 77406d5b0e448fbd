"""Payment plans end to end with the local clock moved forward, on a stack of its own (moving
the shared stack's clock would move every other test's time): a plan charged on its dates, one
installment declined, told, then retried on the stated day on the card the client saved since,
and never charged before its day however often the schedule ticks."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests

from tests.e2e.conftest import ClioStaff, Firm, LocalStack, StripeSandbox, start_stack, stop_stack
from tests.e2e.test_payments import send_bills
from tests.e2e.test_plans import paid_gl, save_method, wait_plan

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def clock_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    folder = tmp_path_factory.mktemp("plans-stack")
    stack = start_stack(folder / "state", folder / "stack.log", None, "--no-seed")
    yield stack
    stop_stack(stack, timeout=30)


def clock(stack: LocalStack) -> datetime:
    answer = stack.control("GET", "/_local/clock")
    assert answer.status_code == 200, answer.text
    return datetime.fromisoformat(answer.json()["now"].replace("Z", "+00:00"))


def move_clock(stack: LocalStack, now: datetime) -> None:
    answer = requests.post(
        f"{stack.api_url}/_local/clock",
        json={"now": now.isoformat()},
        headers=stack.admin_headers,
        timeout=30,
    )
    assert answer.status_code == 200, answer.text


def tick(stack: LocalStack) -> dict[str, Any]:
    answer = stack.control("POST", "/_local/tick")
    assert answer.status_code == 202, answer.text
    result: dict[str, Any] = answer.json()["plans"]
    return result


def wait_told(stack: LocalStack, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 60
    while True:
        told = [m for m in stack.outbox() if "could not be charged" in m["subject"]]
        if len(told) >= count:
            assert len(told) == count, told  # once, whoever recorded it
            return told
        assert time.monotonic() < deadline, told
        time.sleep(0.2)


def onboarded_firm(stack: LocalStack) -> tuple[Firm, ClioStaff]:
    name = f"e2e-{uuid.uuid4().hex[:10]}"
    firm, clio = Firm(stack, name), ClioStaff(stack, name)
    assert firm.connect_clio(name).status_code == 302
    made = stack.control("POST", f"/_local/firms/{name}/payment-accounts")
    assert made.status_code == 201, made.text
    return firm, clio


def installment(firm: Firm, plan_id: str, number: int) -> dict[str, Any]:
    plan = firm.get(f"/payment-plans/{plan_id}").json()
    found: dict[str, Any] = plan["installments"][number - 1]
    return found


def test_given_a_plan_when_the_clock_passes_its_dates_then_each_is_charged_and_a_decline_retried(
    clock_stack: LocalStack,
) -> None:
    stack = clock_stack
    firm, clio = onboarded_firm(stack)
    stripe = StripeSandbox(stack)
    client, ids, _ = send_bills(firm, clio, [{"total_cents": 30_000}])
    start = clock(stack)
    body = {
        "bill_ids": ids,
        "installment_cents": 10_000,
        "every": "month",
        "start_on": start.date().isoformat(),
    }
    chosen = requests.post(f"{client.pay_url}/payment-plans", json=body, timeout=60)
    assert chosen.status_code == 201, chosen.text
    plan_id = chosen.json()["plan"]["id"]
    save_method(stripe, chosen.json()["setup_url"], "pm_card_chargeCustomerFail")
    wait_plan(firm, plan_id, "active")

    # Its first date: declined, told to the client and the firm, retried three days later.
    tick(stack)
    first = installment(firm, plan_id, 1)
    assert first["status"] == "retry_scheduled" and first["failure"] == "card_declined"
    retry_on = (start + timedelta(days=3)).date().isoformat()
    assert first["next_attempt_on"] == retry_on
    # Told by whichever recorded the decline first: the tick, or Stripe's webhook (async).
    told = wait_told(stack, 2)
    assert f"try again on {retry_on}" in told[0]["body"]

    # The client saves another card from the pay link meanwhile.
    changed = requests.post(
        f"{client.pay_url}/payment-plans/{plan_id}/method", json={"method": "card"}, timeout=60
    )
    assert changed.status_code == 201, changed.text
    save_method(stripe, changed.json()["setup_url"])
    deadline = time.monotonic() + 60
    while firm.get(f"/payment-plans/{plan_id}").json()["installments"][0]["attempts"] != 1 or (
        len([e for e in stripe.events() if e["type"] == "setup_intent.succeeded"]) < 2
    ):
        assert time.monotonic() < deadline
        time.sleep(0.2)

    # A day later: not yet, however often the schedule ticks.
    move_clock(stack, start + timedelta(days=1))
    tick(stack)
    tick(stack)
    assert installment(firm, plan_id, 1)["attempts"] == 1

    # The retry's day: charged on the new card.
    move_clock(stack, start + timedelta(days=3, hours=1))
    tick(stack)
    first = installment(firm, plan_id, 1)
    assert (first["status"], first["attempts"]) == ("paid", 2)

    # A month after the start: the second installment.
    move_clock(stack, start + timedelta(days=32))
    tick(stack)
    assert installment(firm, plan_id, 2)["status"] == "paid"
    deadline = time.monotonic() + 60
    while paid_gl(firm, ids) != {ids[0]: 20_000}:
        assert time.monotonic() < deadline, paid_gl(firm, ids)
        time.sleep(0.2)
    assert installment(firm, plan_id, 3)["status"] == "scheduled"
