"""Stripe Connect onboarding end to end, over HTTP against the local stack: a firm with no
payment accounts is refused at checkout; it onboards the trust account through the Stripe
sandbox's hosted page (requirements shrinking as each step lands by `account.updated`), then
the operating account (the sandbox's complete control); checkout follows what is ready; a
trust charge never carries the platform's fee; a repeated or older `account.updated` changes
nothing; the onboarding checklist follows the real state."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
import requests

from tests.e2e.test_payments import send_bills

pytestmark = pytest.mark.e2e


def accounts(firm) -> dict[str, dict[str, Any]]:
    answer = firm.get("/payment-accounts")
    assert answer.status_code == 200, answer.text
    return {a["account"]: a for a in answer.json()["accounts"]}


def start(firm, account: str) -> tuple[str, str]:
    """POST /payment-accounts/onboarding: the link and the Stripe account id in it."""
    answer = firm.post("/payment-accounts/onboarding", {"account": account})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["account"] == account
    match = re.search(r"/setup/s/(acct_[A-Za-z0-9]+)/", body["onboarding_url"])
    assert match, body
    return body["onboarding_url"], match[1]


def checklist(firm) -> dict[str, Any]:
    answer = firm.get("/onboarding")
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def wait_status(firm, account: str, status: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        found = accounts(firm)[account]
        if found["status"] == status:
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.2)


def stripe_audit(firm) -> list[dict[str, Any]]:
    audit = firm.get("/audit")
    assert audit.status_code == 200, audit.text
    return [i for i in audit.json()["items"] if i["actor"]["user_id"] == "stripe"]


def wait_stripe_audit(firm, count: int, timeout: float = 30) -> list[dict[str, Any]]:
    """The sandbox delivers `account.updated` on its own thread: wait until the firm's audit
    trail shows that many of Stripe's changes."""
    deadline = time.monotonic() + timeout
    while True:
        found = stripe_audit(firm)
        if len(found) >= count:
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.2)


def test_given_a_firm_without_accounts_when_it_onboards_both_then_checkout_is_refused_then_allowed(
    new_firm, stripe_sandbox
) -> None:
    firm, clio = new_firm(payments=False)
    client, ids, _ = send_bills(
        firm,
        clio,
        [{"total_cents": 25_000}, {"total_cents": 40_000, "kind": "trust_request"}],
    )
    invoice, trust_request = ids
    listed = accounts(firm)
    assert [listed[a]["status"] for a in ("trust", "operating")] == ["not_started"] * 2
    assert "not been connected" in listed["trust"]["message"]

    refused = client.checkout([trust_request])
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "payments_not_set_up"

    # The trust account: a person clicks through Stripe's hosted onboarding.
    url, trust_id = start(firm, "trust")
    pending = accounts(firm)["trust"]
    assert pending["status"] == "pending"
    assert "external_account" in pending["requirements"]
    assert "Stripe still needs" in pending["message"]
    browser = requests.Session()
    due_counts = [len(pending["requirements"])]
    page = browser.get(url, timeout=30)
    while page.url.startswith(stripe_sandbox.url):
        assert page.status_code == 200, page.text
        step = re.search(r'name="step" value="(\d+)"', page.text)
        assert step, page.text
        page = browser.post(url, data={"step": step[1]}, timeout=60)
        due_counts.append(len(accounts(firm)["trust"]["requirements"]))
    # Back on the web UI (return_url), once every step was submitted.
    assert "#/onboarding?stripe=return&account=trust" in page.url
    assert due_counts == sorted(due_counts, reverse=True) and due_counts[-1] == 0
    assert len(set(due_counts)) == len(due_counts)  # each step's webhook landed before it
    ready = accounts(firm)["trust"]
    assert (ready["status"], ready["requirements"]) == ("ready", [])
    assert ready["message"] == "The trust account is ready to take payments."

    # Trust bills can be paid now; a checkout that needs the operating account cannot.
    both = client.checkout([invoice, trust_request])
    assert both.status_code == 422 and both.json()["error"]["code"] == "payments_not_set_up"
    assert "operating account" in both.json()["error"]["message"]
    trust_only = client.sessions([trust_request])
    assert [s["account"] for s in trust_only] == ["trust"]

    # The operating account: onboarding completed without a browser.
    again, operating_id = start(firm, "operating")
    second, same_id = start(firm, "operating")
    assert same_id == operating_id and second != again  # one account, a new link each time
    stripe_sandbox.control(f"accounts/{operating_id}/complete")
    assert wait_status(firm, "operating", "ready")["requirements"] == []

    sessions = {s["account"]: s for s in client.sessions([invoice, trust_request])}
    assert set(sessions) == {"trust", "operating"}
    intents = {a: stripe_sandbox.pay(s["id"])["payment_intent"] for a, s in sessions.items()}
    assert intents["trust"]["transfer_data"]["destination"] == trust_id
    assert intents["operating"]["transfer_data"]["destination"] == operating_id
    # The platform's fee: on the operating charge only; trust money arrives whole.
    assert intents["trust"]["application_fee_amount"] is None
    assert 0 < intents["operating"]["application_fee_amount"] < 25_000


def test_given_account_updated_again_or_out_of_order_then_nothing_changes(
    new_firm, stripe_sandbox
) -> None:
    firm, _ = new_firm(payments=False)
    url, trust_id = start(firm, "trust")
    browser = requests.Session()
    browser.post(url, data={"step": "0"}, timeout=60)  # one step: still pending
    # The first step's event is delivered and followed before the onboarding completes: each
    # event reads the account from Stripe when it lands, so a delivery that came after the
    # completion would find it ready already and be the only change recorded.
    wait_stripe_audit(firm, 1)
    first_step = accounts(firm)["trust"]
    assert first_step["status"] == "pending"
    stripe_sandbox.control(f"accounts/{trust_id}/complete")
    done = wait_status(firm, "trust", "ready")

    events = [
        e
        for e in stripe_sandbox.events()
        if e["type"] == "account.updated" and e.get("account") == trust_id
    ]
    assert len(events) == 2
    older, newest = events
    assert older["data"]["object"]["charges_enabled"] is False
    assert stripe_sandbox.resend(newest["id"]) == 200  # a duplicate
    assert stripe_sandbox.resend(older["id"]) == 200  # late, out of order
    assert accounts(firm)["trust"] == done

    # The audit trail: each event that changed the account, once, by Stripe, with the change;
    # the repeats added nothing.
    by_stripe = wait_stripe_audit(firm, 2)
    # Both events are of the same second (Stripe's `created`), so the trail may list them in
    # either order; each is there once.
    assert sorted(i["object"]["event_id"] for i in by_stripe) == sorted([newest["id"], older["id"]])
    assert {i["action"] for i in by_stripe} == {"payment_account.updated"}
    (last,) = [i["object"] for i in by_stripe if i["object"]["event_id"] == newest["id"]]
    assert last["account"] == "trust" and last["stripe_account_id"] == trust_id
    assert last["status"] == {"from": "pending", "to": "ready"}
    assert last["requirements"]["from"] and last["requirements"]["to"] == []
    assert by_stripe[0]["actor"]["email"] is None


def test_given_onboarding_then_the_checklist_follows_the_real_state_and_remembers_marks(
    new_firm, stripe_sandbox
) -> None:
    firm, _ = new_firm(payments=False)  # Clio connected, no Stripe accounts
    first = checklist(firm)
    steps = {s["id"]: s for s in first["steps"]}
    assert [s["id"] for s in first["steps"]] == [
        "clio",
        "trust_account",
        "operating_account",
        "sender",
        "templates",
        "done",
    ]
    assert steps["clio"]["status"] == "done" and steps["clio"]["decided_by"] == "state"
    assert first["current_step"] == "trust_account" and first["complete"] is False
    assert first["sender"]["identity_status"] == "verified"  # the stack verifies its sender

    for account in ("trust", "operating"):
        _, stripe_id = start(firm, account)
        stripe_sandbox.control(f"accounts/{stripe_id}/complete")
        wait_status(firm, account, "ready")
    settings = firm.get("/settings").json()
    settings.update(sender_name="Demo Billing", reply_to="billing@firm.example")
    assert firm.put("/settings", settings).status_code == 200
    assert checklist(firm)["current_step"] == "templates"

    refused = firm.post("/onboarding/steps/sender", {"status": "done"})
    assert refused.status_code == 422 and "error" in refused.json()  # only skip or undo
    bad = firm.post("/onboarding/steps/nope", {"status": "skipped"})
    assert bad.status_code == 404, bad.text
    assert bad.json()["error"]["message"] == "There is no step 'nope' here."
    # The last row is no step to mark: it is done when the others are. `current_step` says
    # "done" once they are, and a client that follows it to this path finds nothing.
    for status in ("skipped", "todo"):
        last = firm.post("/onboarding/steps/done", {"status": status})
        assert last.status_code == 404, last.text
        assert last.json()["error"]["message"] == "There is no step 'done' here."
    marked = firm.post("/onboarding/templates/reviewed")
    assert marked.status_code == 200, marked.text
    assert marked.json()["complete"] is True
    again = checklist(firm)  # remembered
    assert again["complete"] is True and again["current_step"] == "done"
    assert {s["id"]: s["status"] for s in again["steps"]}["templates"] == "done"


def test_given_bad_onboarding_requests_then_clear_4xx_in_the_api_shape(new_firm) -> None:
    firm, _ = new_firm(payments=False)

    for body in ({"account": "savings"}, {}, {"account": "trust", "extra": 1}, ["trust"]):
        answer = firm.post("/payment-accounts/onboarding", body)
        assert answer.status_code in (400, 422), (body, answer.text)
        assert set(answer.json()["error"]) >= {"code", "message"}
    assert accounts(firm)["trust"]["status"] == "not_started"  # nothing half made
