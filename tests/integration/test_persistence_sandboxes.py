"""Both sandboxes kept between runs (local/persistence/clio.py, stripe.py): a sandbox used over
HTTP, from several threads at once, then stopped; a new sandbox on the same folder holds the
same state, answers the same, and goes on from there (ids never reused, stamps forward)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
import stripe as stripe_lib

from local.clio_sandbox import ClioSandbox
from local.persistence import LocalState
from local.persistence import clio as kept_clio
from local.persistence import stripe as kept_stripe
from local.stripe_sandbox import StripeSandbox
from tests.integration.conftest_clio import (
    CLIENT_ID,
    CLIENT_SECRET,
    REDIRECT_URI,
    WebhookReceiver,
    api_session,
    authorize_code,
    control,
    make_bill,
    token_answer,
    wait_for,
)
from tests.integration.test_stripe_sandbox import (
    API_KEY,
    SECRET,
    Receiver,
    make_account,
    session_params,
)

pytest_plugins = ["tests.integration.conftest_clio"]


# -- Clio ---------------------------------------------------------------------------------------


@contextmanager
def clio_on(folder: Path, clock: Callable[[], float] = time.time) -> Iterator[ClioSandbox]:
    saved = LocalState.open(folder)
    sandbox = ClioSandbox(
        port=0, webhook_delay_seconds=0.01, webhook_backoff_seconds=0.02, clock=clock
    )
    saved.attach_clio(sandbox)
    sandbox.start()
    try:
        yield sandbox
    finally:
        sandbox.dispatcher.wait_idle()
        sandbox.stop()
        saved.close()


def test_given_oauth_bills_and_webhooks_when_the_clio_sandbox_restarts_then_its_state_is_the_same(
    tmp_path: Path,
) -> None:
    receiver = WebhookReceiver().start()
    try:
        with clio_on(tmp_path) as sandbox:
            tokens = token_answer(sandbox, "firm")
            session = requests.Session()
            session.headers["Authorization"] = f"Bearer {tokens['access_token']}"
            hook = session.post(
                f"{sandbox.url}/api/v4/webhooks.json",
                json={"data": {"url": receiver.url, "model": "bill", "fields": "id,state,total"}},
                timeout=5,
            ).json()["data"]
            wait_for(lambda: sandbox.state.webhooks[hook["id"]].status == "enabled")
            bills = [make_bill(sandbox, "firm", total_cents=1000 + n) for n in range(5)]
            control(sandbox, "PATCH", f"bills/{bills[0]['id']}", {"balance_cents": 0})
            control(sandbox, "PATCH", f"bills/{bills[1]['id']}", {"state": "void"})
            refreshed = requests.post(
                f"{sandbox.url}/oauth/token",
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": tokens["refresh_token"],
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                },
                timeout=5,
            ).json()
            doomed = api_session(sandbox, "other")  # an account whose tokens are revoked
            make_bill(sandbox, "other")
            control(sandbox, "POST", "tokens/revoke", {"account": "other"})
            unused_code = authorize_code(sandbox, "firm", state="later")
            sandbox.dispatcher.wait_idle()
            before = kept_clio.snapshot(sandbox.state)
            listed = session.get(
                f"{sandbox.url}/api/v4/bills.json", params={"fields": "id,etag,state"}, timeout=5
            ).json()

        with clio_on(tmp_path) as sandbox:
            assert kept_clio.snapshot(sandbox.state) == before
            again = requests.Session()
            again.headers["Authorization"] = f"Bearer {refreshed['access_token']}"
            assert (
                again.get(
                    f"{sandbox.url}/api/v4/bills.json",
                    params={"fields": "id,etag,state"},
                    timeout=5,
                ).json()
                == listed
            )
            old = session.get(f"{sandbox.url}/api/v4/bills.json", timeout=5)
            assert old.status_code == 200  # the first access token is still good too
            revoked = doomed.get(f"{sandbox.url}/api/v4/bills.json", timeout=5)
            assert revoked.status_code == 401
            exchanged = requests.post(
                f"{sandbox.url}/oauth/token",
                data={
                    "grant_type": "authorization_code",
                    "code": unused_code,
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                    "redirect_uri": REDIRECT_URI,
                },
                timeout=5,
            )
            assert exchanged.status_code == 200, exchanged.text
            # The webhook still knows what it last sent: a change of an unwatched field fires
            # nothing (a bill never sent before would fire), a watched one fires once.
            delivered = len(receiver.deliveries())
            control(sandbox, "PATCH", f"bills/{bills[2]['id']}", {"balance_cents": 500})
            control(sandbox, "PATCH", f"bills/{bills[2]['id']}", {"state": "void"})
            wait_for(lambda: len(receiver.deliveries()) > delivered)
            sandbox.dispatcher.wait_idle()
            (late,) = receiver.deliveries()[delivered:]
            assert late.json()["data"]["state"] == "void"
    finally:
        receiver.stop()


def test_given_a_restarted_clio_sandbox_then_ids_follow_the_old_ones_and_stamps_move_forward(
    tmp_path: Path,
) -> None:
    with clio_on(tmp_path) as sandbox:
        first = make_bill(sandbox, "firm")
        last_stamp = sandbox.state._last_stamp
    with clio_on(tmp_path) as sandbox:
        second = make_bill(sandbox, "firm", client={"name": "New Client", "email": None})
        assert second["id"] > first["id"]
        bill = sandbox.state.bills[second["id"]]
        assert (
            sandbox.state.contacts[bill.client_id].id > sandbox.state.bills[first["id"]].client_id
        )
        assert bill.created_at > last_stamp
        assert make_bill(sandbox, "firm")["number"] == "INV-00003"  # numbering goes on


def test_given_bills_changed_from_parallel_threads_when_restored_then_every_change_is_there(
    tmp_path: Path,
) -> None:
    with clio_on(tmp_path) as sandbox:
        made = [make_bill(sandbox, f"firm-{n % 3}", total_cents=10_000) for n in range(12)]

        def worker(bill: dict[str, Any]) -> None:
            for balance in (9_000, 5_000, 1_000):
                answer = control(
                    sandbox, "PATCH", f"bills/{bill['id']}", {"balance_cents": balance}
                )
                assert answer.status_code == 200, answer.text
            make_bill(sandbox, bill["account"], total_cents=bill["id"])

        threads = [threading.Thread(target=worker, args=(b,)) for b in made]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        before = kept_clio.snapshot(sandbox.state)

    with clio_on(tmp_path) as sandbox:
        assert kept_clio.snapshot(sandbox.state) == before
        assert len(sandbox.state.bills) == 24
        assert {sandbox.state.bills[b["id"]].balance_cents for b in made} == {1_000}


# -- Stripe -------------------------------------------------------------------------------------


@contextmanager
def stripe_on(folder: Path, webhook_url: str | None) -> Iterator[StripeSandbox]:
    saved = LocalState.open(folder)
    sandbox = StripeSandbox(port=0, api_key=API_KEY, webhook_url=webhook_url, webhook_secret=SECRET)
    saved.attach_stripe(sandbox)
    sandbox.start()
    try:
        yield sandbox
    finally:
        sandbox.wait_idle()
        sandbox.stop()
        saved.close()


def client_of(sandbox: StripeSandbox) -> stripe_lib.StripeClient:
    return stripe_lib.StripeClient(
        API_KEY, base_addresses={"api": sandbox.url}, max_network_retries=0
    )


def pay(sandbox: StripeSandbox, session_id: str, method: str = "card") -> dict[str, Any]:
    answer = requests.post(
        f"{sandbox.url}/_sandbox/checkout_sessions/{session_id}/pay",
        json={"method": method},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.server.shutdown()
    made.server.server_close()


def test_given_payments_refunds_and_disputes_when_the_stripe_sandbox_restarts_then_nothing_changed(
    tmp_path: Path, receiver: Receiver
) -> None:
    with stripe_on(tmp_path, receiver.url) as sandbox:
        client = client_of(sandbox)
        destination = make_account(client)

        def one_payment(n: int) -> None:
            session = client.v1.checkout.sessions.create(
                params=session_params(destination, ("card", "us_bank_account"), (1000 + n,)),
                options={"idempotency_key": f"co_{n}"},
            )
            paid = pay(sandbox, session.id, "card" if n % 2 else "ach")
            intent = paid["payment_intent"]["id"]
            if n % 2 == 0:
                settle = f"{sandbox.url}/_sandbox/payment_intents/{intent}/settle"
                assert requests.post(settle, json={}, timeout=10).status_code == 200
            if n % 3 == 0:
                client.v1.refunds.create(params={"payment_intent": intent, "amount": 100})
            elif n % 3 == 1:
                dispute = f"{sandbox.url}/_sandbox/payment_intents/{intent}/dispute"
                assert requests.post(dispute, json={}, timeout=10).status_code == 200

        threads = [threading.Thread(target=one_payment, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        open_session = client.v1.checkout.sessions.create(params=session_params(destination))
        sandbox.wait_idle()
        before = kept_stripe.snapshot(sandbox.state)
        delivered = len(receiver.received)

    with stripe_on(tmp_path, receiver.url) as sandbox:
        assert kept_stripe.snapshot(sandbox.state) == before
        page = requests.get(f"{sandbox.url}/c/pay/{open_session.id}", timeout=10)
        assert page.status_code == 200 and "Pay by card" in page.text
        pay(sandbox, open_session.id)  # a session opened before the restart can still be paid
        events = requests.get(f"{sandbox.url}/_sandbox/events", timeout=10).json()
        before_ids = [json.loads(e)["id"] for e in before["events"]]
        assert [e["id"] for e in events][: len(before_ids)] == before_ids  # same order
        assert len(events) > len(before_ids)
        assert len(receiver.received) > delivered  # the new payment's webhooks went out
    assert delivered == len(before["events"])


def test_given_an_idempotent_request_before_a_restart_then_its_replay_after_answers_the_same_bytes(
    tmp_path: Path,
) -> None:
    url_path = "/v1/accounts"
    form = {"type": "custom", "country": "US"}
    headers = {"Authorization": f"Bearer {API_KEY}", "Idempotency-Key": "acct-once"}
    with stripe_on(tmp_path, None) as sandbox:
        first = requests.post(f"{sandbox.url}{url_path}", data=form, headers=headers, timeout=10)
        assert first.status_code == 200
    with stripe_on(tmp_path, None) as sandbox:
        again = requests.post(f"{sandbox.url}{url_path}", data=form, headers=headers, timeout=10)
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.content == first.content
        other = {**form, "country": "CA"}
        refused = requests.post(f"{sandbox.url}{url_path}", data=other, headers=headers, timeout=10)
        assert refused.json()["error"]["type"] == "idempotency_error"


def test_given_a_reset_stripe_sandbox_then_a_restart_finds_it_empty(tmp_path: Path) -> None:
    with stripe_on(tmp_path, None) as sandbox:
        make_account(client_of(sandbox))
        assert requests.post(f"{sandbox.url}/_sandbox/reset", timeout=10).status_code == 200
        kept_after_reset = make_account(client_of(sandbox))
    with stripe_on(tmp_path, None) as sandbox:
        assert list(sandbox.state.objects) == [kept_after_reset]


def test_given_events_no_delivery_was_tried_for_when_restarted_then_they_are_sent(
    tmp_path: Path, receiver: Receiver
) -> None:
    with stripe_on(tmp_path, None) as sandbox:  # no webhook URL: nothing is attempted
        client = client_of(sandbox)
        session = client.v1.checkout.sessions.create(params=session_params(make_account(client)))
        pay(sandbox, session.id)
        made = [e["id"] for e in requests.get(f"{sandbox.url}/_sandbox/events", timeout=10).json()]

    saved = LocalState.open(tmp_path)
    sandbox = StripeSandbox(
        port=0, api_key=API_KEY, webhook_url=receiver.url, webhook_secret=SECRET
    )
    saved.attach_stripe(sandbox)
    sandbox.start()
    try:
        # the account's onboarding (account.updated) and the payment's three events
        assert saved.send_owed_webhooks(sandbox) == len(made) == 4
        assert sandbox.wait_idle()
        assert [r.event().id for r in receiver.received] == made
        assert saved.send_owed_webhooks(sandbox) == 0  # delivered, and the attempts are kept
    finally:
        sandbox.stop()
        saved.close()


def test_given_a_clock_gone_back_while_the_clio_sandbox_was_down_then_stamps_still_move_forward(
    tmp_path: Path,
) -> None:
    with clio_on(tmp_path) as sandbox:
        first = make_bill(sandbox, "firm")
        last = sandbox.state.bills[first["id"]].updated_at
    # An hour behind: the app's `updated_since` sync would miss changes stamped in the past.
    with clio_on(tmp_path, clock=lambda: time.time() - 3600) as sandbox:
        second = make_bill(sandbox, "firm")
        assert sandbox.state.bills[second["id"]].updated_at > last
