"""Reminders (X3) end to end on a local stack of its own (its clock is moved forward; moving the
shared stack's clock would move every other test's time): bills sent, the clock moved past
each reminder slot, the schedule ticked again and again and at once, and the reminders in the
outbox exactly once per slot, with the bill's PDF and its own pay link; none once the client
pays, none while the clerk pauses a bill."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests

from tests.e2e.conftest import ClioStaff, Firm, LocalStack, StripeSandbox, start_stack, stop_stack
from tests.e2e.test_payments import send_bills

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def clock_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    folder = tmp_path_factory.mktemp("reminders-stack")
    stack = start_stack(folder / "state", folder / "stack.log", None, "--no-seed")
    yield stack
    stop_stack(stack, timeout=30)


def at(raw: str) -> datetime:
    return datetime.fromisoformat(raw.replace("Z", "+00:00"))


def move_clock(stack: LocalStack, now: datetime) -> None:
    answer = requests.post(
        f"{stack.api_url}/_local/clock",
        json={"now": now.isoformat()},
        headers=stack.admin_headers,
        timeout=30,
    )
    assert answer.status_code == 200, answer.text


def tick(stack: LocalStack) -> int:
    """One schedule tick; answers how many reminders it started."""
    answer = stack.control("POST", "/_local/tick")
    assert answer.status_code == 202, answer.text
    return int(answer.json()["reminders"]["reminders"])


def reminders_to(stack: LocalStack, address: str) -> list[dict[str, Any]]:
    return [
        m for m in stack.outbox() if m["to"] == [address] and m["subject"].startswith("Reminder:")
    ]


def wait_for_reminders(stack: LocalStack, address: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 90
    while True:
        mails = reminders_to(stack, address)
        if len(mails) >= count:
            return mails
        assert time.monotonic() < deadline, f"{len(mails)} reminders, not {count}"
        time.sleep(0.3)


def invoice(firm: Firm, bill_id: str) -> dict[str, Any]:
    (found,) = [i for i in firm.all_invoices("awaiting_payment,paid", 100) if i["id"] == bill_id]
    return found


def wait_sent_reminders_settled(firm: Firm, bill_id: str, count: int) -> list[dict[str, Any]]:
    """The bill's history once `count` reminders are recorded sent."""
    deadline = time.monotonic() + 90
    while True:
        history = firm.get(f"/invoices/{bill_id}/envelopes").json()["items"]
        if sum(1 for h in history if h["purpose"] == "reminder") >= count:
            return list(history)
        assert time.monotonic() < deadline, history
        time.sleep(0.3)


def test_given_sent_bills_when_the_clock_passes_each_slot_then_one_reminder_per_slot_until_paid(
    clock_stack: LocalStack,
) -> None:
    stack = clock_stack
    name = f"rem-{uuid.uuid4().hex[:8]}"
    firm, clio = Firm(stack, name), ClioStaff(stack, name)
    assert firm.connect_clio(name).status_code == 302
    assert stack.control("POST", f"/_local/firms/{name}/payment-accounts").status_code == 201
    settings = firm.get("/settings").json()
    assert settings["reminders"] == {
        "enabled": False,
        "first_after_days": 15,
        "repeat_every_days": 15,
        "max_count": 3,
    }
    settings["reminders"]["enabled"] = True
    assert firm.put("/settings", settings).status_code == 200
    address = f"{name}@client.example"
    paid_client, (paid_id,), _ = send_bills(firm, clio, [{"total_cents": 40_000}], False)
    open_client, (open_id,), _ = send_bills(firm, clio, [{"total_cents": 25_000}], False)
    sent_at = at(invoice(firm, open_id)["last_sent_at"])
    assert at(invoice(firm, open_id)["next_reminder_at"]) == sent_at + timedelta(days=15)
    assert tick(stack) == 0  # nothing due yet

    # Slot 1 of both bills: ticks one after another and three at once start two reminders.
    move_clock(stack, sent_at + timedelta(days=15, hours=1))
    started = [tick(stack), tick(stack)]
    with ThreadPoolExecutor(max_workers=3) as pool:
        started += list(pool.map(lambda _: tick(stack), range(3)))
    assert sum(started) == 2, started
    mails = wait_for_reminders(stack, address, 2)
    numbers = {invoice(firm, i)["number"]: i for i in (paid_id, open_id)}
    assert sorted(m["subject"] for m in mails) == sorted(
        f"Reminder: {n} from {settings['firm_name']} is still open" for n in numbers
    )
    for mail in mails:
        (number,) = [n for n in numbers if n in mail["subject"]]
        assert mail["attachments"] == [f"{number}.pdf"]
        own = paid_client if numbers[number] == paid_id else open_client
        assert own.pay_url in mail["body"]  # the bill's own payment link, as first sent
    assert at(invoice(firm, open_id)["next_reminder_at"]) == sent_at + timedelta(days=30)

    # The client pays one bill: it gets no more reminders; the other gets its second.
    (session,) = paid_client.sessions([paid_id])
    StripeSandbox(stack).pay(session["id"], "card")
    deadline = time.monotonic() + 60
    while invoice(firm, paid_id)["paid_gl_cents"] != 40_000:
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert invoice(firm, paid_id)["next_reminder_at"] is None
    move_clock(stack, sent_at + timedelta(days=30, hours=1))
    assert [tick(stack), tick(stack)] == [1, 0]
    wait_for_reminders(stack, address, 3)
    history = wait_sent_reminders_settled(firm, open_id, 2)
    assert [(h["purpose"], h["reminder_number"], h["label"]) for h in history] == [
        ("send", None, "First send"),
        ("reminder", 1, "Reminder 1"),
        ("reminder", 2, "Reminder 2"),
    ]
    paid_history = firm.get(f"/invoices/{paid_id}/envelopes").json()["items"]
    assert [h["label"] for h in paid_history] == ["First send", "Reminder 1"]

    # Paused, the third slot passes without a reminder; resumed, it is due again.
    paused = firm.post(f"/invoices/{open_id}/reminders/pause")
    assert paused.status_code == 200, paused.text
    assert paused.json()["reminders_paused"] is True and paused.json()["next_reminder_at"] is None
    move_clock(stack, sent_at + timedelta(days=45, hours=1))
    assert tick(stack) == 0
    resumed = firm.post(f"/invoices/{open_id}/reminders/resume").json()
    assert resumed["reminders_paused"] is False
    assert at(resumed["next_reminder_at"]) == sent_at + timedelta(days=45)
    assert [tick(stack), tick(stack)] == [1, 0]
    move_clock(stack, sent_at + timedelta(days=200))
    assert tick(stack) == 0  # three reminders at most
    mails = wait_for_reminders(stack, address, 4)
    assert len([m for m in mails if invoice(firm, paid_id)["number"] in m["subject"]]) == 1
    assert len(reminders_to(stack, address)) == 4
    assert firm.post("/invoices/99999999/reminders/pause").status_code == 404
    other = Firm(stack, f"other-{uuid.uuid4().hex[:6]}")
    assert other.post(f"/invoices/{open_id}/reminders/pause").status_code == 404


def test_given_a_bill_paid_in_clio_when_its_slot_passes_then_no_reminder(
    clock_stack: LocalStack,
) -> None:
    stack = clock_stack
    name = f"remc-{uuid.uuid4().hex[:8]}"
    firm, clio = Firm(stack, name), ClioStaff(stack, name)
    assert firm.connect_clio(name).status_code == 302
    assert stack.control("POST", f"/_local/firms/{name}/payment-accounts").status_code == 201
    settings = firm.get("/settings").json()
    settings["reminders"] = {
        "enabled": True,
        "first_after_days": 5,
        "repeat_every_days": 7,
        "max_count": 2,
    }
    assert firm.put("/settings", settings).status_code == 200
    _, (bill_id,), _ = send_bills(firm, clio, [{"total_cents": 9_900}], False)
    sent_at = at(invoice(firm, bill_id)["last_sent_at"])
    clio.change_bill(int(bill_id), state="paid", balance_cents=0)
    firm.sync_now()
    assert invoice(firm, bill_id)["state"] == "paid"
    assert invoice(firm, bill_id)["next_reminder_at"] is None
    move_clock(stack, sent_at + timedelta(days=6))
    assert [tick(stack), tick(stack)] == [0, 0]
    assert reminders_to(stack, f"{name}@client.example") == []
