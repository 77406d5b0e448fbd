"""The three functions' handlers on moto, with the Clio sandbox over HTTP: the sync worker's
checkpointed continuation and schedule fan-out, and the Clio webhook handshake and deliveries."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime

import boto3
import requests

from billbridge.metrics import QuietWhenDisabled
from local.clio_sandbox.seed import seed_many
from local.lambdas import function_specs, load_handler
from local.stack import scheduled_event

ALL = "draft,awaiting_approval,awaiting_payment,paid,void,deleted"


def _all_ids(stack, firm: str) -> list[str]:
    ids, cursor = [], None
    session = stack.firm(firm)
    while True:
        params = {"states": ALL, "page_size": 200, **({"cursor": cursor} if cursor else {})}
        body = session.get(f"{stack.api.url}/invoices", params=params, timeout=60).json()
        ids += [i["id"] for i in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            return ids


def test_given_a_connected_firm_when_connected_then_the_first_sync_imports_everything(inproc):
    seed_many(inproc.clio.state, "acme", 250, 7)
    answer = inproc.connect("firm-acme", "acme")
    assert answer.status_code == 302, answer.text
    # Inline mode: the connect's sync ran to the end inside the callback.
    assert len(_all_ids(inproc, "firm-acme")) == 250


def test_given_the_lambda_clock_running_out_when_syncing_then_the_run_continues_in_a_new_invocation(
    inproc, monkeypatch
):
    seed_many(inproc.clio.state, "big", 1000, 3)
    # Keep everything but a sliver of the 900 s: each page leaves the run with no time to spare.
    monkeypatch.setenv("SYNC_TIME_RESERVE_SECONDS", "899.99")
    from billbridge import bootstrap

    bootstrap.reset()
    inproc.connect("firm-big", "big")
    worker = inproc.lambdas.name_of("SyncWorkerFunction")
    runs = [name for name, kind in inproc.lambdas.invocations if name == worker and kind == "Event"]
    assert len(runs) >= 5, "each 200-bill page should have handed over to a new invocation"
    assert len(_all_ids(inproc, "firm-big")) == 1000


def test_given_the_schedule_when_it_fires_then_every_connected_firm_syncs(inproc):
    ids = {}
    for account in ("one", "two"):
        ids[account] = seed_many(inproc.clio.state, account, 3, 1)
        inproc.connect(f"firm-{account}", account)
    # A change in Clio that no webhook reports: only the schedule can bring it.
    inproc.clio.state.update_bill(ids["two"][0], state="void", notify=False)
    result = inproc.invoke("SyncWorkerFunction", scheduled_event(datetime.now(UTC)))
    assert result == {"firms": 2, "requested": 2}
    voided = (
        inproc.firm("firm-two")
        .get(f"{inproc.api.url}/invoices", params={"states": "void"}, timeout=30)
        .json()["items"]
    )
    assert [i["id"] for i in voided] == [str(ids["two"][0])]


def test_given_clio_webhooks_when_a_bill_changes_then_the_signed_delivery_is_applied(inproc):
    seed_many(inproc.clio.state, "hooked", 2, 1)
    inproc.connect("firm-hooked", "hooked")
    made = requests.post(
        f"{inproc.clio.url}/_sandbox/bills",
        json={
            "account": "hooked",
            "kind": "trust_request",
            "total_cents": 4321,
            "state": "awaiting_payment",
            "client": {"name": "Hook Co", "email": "hook@example.com"},
            "matter": {"display_number": "9-Hook", "description": "Hooks"},
        },
        timeout=30,
    ).json()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if str(made["id"]) in _all_ids(inproc, "firm-hooked"):
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the created bill never arrived through the webhook")


def test_given_a_forged_webhook_when_posted_then_401_and_nothing_changes(inproc):
    seed_many(inproc.clio.state, "forge", 1, 1)
    inproc.connect("firm-forge", "forge")
    before = _all_ids(inproc, "firm-forge")
    body = json.dumps({"data": {"id": 999999, "state": "paid"}, "meta": {"event": "updated"}})
    answer = requests.post(
        f"{inproc.api.url}/webhooks/clio?firm_id=firm-forge",
        data=body,
        headers={"X-Hook-Signature": "0" * 64, "Content-Type": "application/json"},
        timeout=30,
    )
    assert answer.status_code == 401
    assert _all_ids(inproc, "firm-forge") == before


def test_given_a_handshake_then_the_secret_is_echoed(inproc):
    answer = requests.post(
        f"{inproc.api.url}/webhooks/clio?firm_id=anyone",
        data="{}",
        headers={"X-Hook-Secret": "abc123"},
        timeout=30,
    )
    assert answer.status_code == 200
    assert answer.headers["X-Hook-Secret"] == "abc123"


def test_given_stored_tokens_then_no_plaintext_token_is_in_the_table(inproc):
    seed_many(inproc.clio.state, "secret", 1, 1)
    inproc.connect("firm-secret", "secret")
    items = boto3.client("dynamodb").scan(TableName=inproc.env["TABLE_NAME"])["Items"]
    dump = json.dumps(items, default=str)
    tokens = [t for t in inproc.clio.state._tokens.values() if t.account == "secret"]
    assert tokens, "the connect must have issued tokens"
    for token in tokens:
        assert token.access_token not in dump and token.refresh_token not in dump
    hooks = [h for h in inproc.clio.state.webhooks.values() if h.account == "secret"]
    assert hooks and all(h.shared_secret not in dump for h in hooks)


def _last_run(stack, firm: str):
    """The firm's last finished sync run, read from the store (listing invoices would start
    another run)."""
    from billbridge.adapters.dynamo_sync import DynamoSyncRepository

    syncs = DynamoSyncRepository(boto3.client("dynamodb"), stack.env["TABLE_NAME"])
    return syncs.get_run(firm, syncs.checkpoint(firm).last_run_id)


def test_given_clio_answering_429s_in_a_row_when_syncing_then_the_run_waits_them_out(inproc):
    seed_many(inproc.clio.state, "limited", 30, 3)
    # More 429s in a row than the client would once retry, each asking for 1 s.
    inproc.clio.state.add_fault("limited", 429, 7, 1, path="bills")

    assert inproc.connect("firm-limited", "limited").status_code == 302

    run = _last_run(inproc, "firm-limited")
    assert (run.trigger.value, run.status.value) == ("connect", "succeeded"), run
    assert run.bills_seen == 30


def test_given_a_retry_after_longer_than_the_invocation_has_left_then_the_sync_hands_over(
    inproc, monkeypatch
):
    from billbridge import bootstrap

    seed_many(inproc.clio.state, "handover", 30, 3)
    # Each invocation keeps about 3 s of its 900: less than the 5 s Clio asks for.
    monkeypatch.setenv("SYNC_TIME_RESERVE_SECONDS", "897")
    bootstrap.reset()
    inproc.clio.state.add_fault("handover", 429, 1, 5, path="bills")

    assert inproc.connect("firm-handover", "handover").status_code == 302

    worker = inproc.lambdas.name_of("SyncWorkerFunction")
    runs = [n for n, kind in inproc.lambdas.invocations if n == worker and kind == "Event"]
    assert len(runs) >= 2, "the run should have handed itself to a new invocation"
    run = _last_run(inproc, "firm-handover")
    assert (run.trigger.value, run.status.value) == ("connect", "succeeded"), run
    assert run.bills_seen == 30


def test_given_every_function_when_loaded_then_each_one_with_metrics_uses_the_quiet_provider() -> (
    None
):
    with_metrics = []
    for spec in function_specs().values():
        load_handler(spec)
        module = sys.modules[f"lambda_{spec.logical_id}_{spec.handler.rpartition('.')[0]}"]
        metrics = getattr(module, "metrics", None)
        if metrics is not None:
            with_metrics.append(spec.logical_id)
            assert isinstance(metrics.provider, QuietWhenDisabled), spec.logical_id
    assert len(with_metrics) >= 5


def test_given_a_signed_in_staff_member_then_a_default_page_costs_one_query_and_one_read(inproc):
    """Issue 14's target through the API handler on moto: the default page of a signed-in user
    is one Query and one consistent BatchGetItem (their member record with the firm header,
    never two GetItems), and a removed member is still refused at once."""
    from collections import Counter

    from billbridge import bootstrap
    from billbridge.adapters.dynamo_accounts import DynamoMembers
    from billbridge.domain.access import Role
    from billbridge.domain.accounts import Member, MemberStatus
    from local.apigw import proxy_event
    from local.lambdas import FakeContext

    seed_many(inproc.clio.state, "pages", 120, 5)
    assert inproc.connect("firm-pages", "pages").status_code == 302
    members = DynamoMembers(boto3.client("dynamodb"), inproc.env["TABLE_NAME"])
    members.add(
        Member(
            user_id="clerk-1",
            firm_id="firm-pages",
            email="clerk@pages.example",
            role=Role.STAFF,
            status=MemberStatus.ACTIVE,
            created_at=datetime.now(UTC),
        )
    )
    spec = function_specs()["ApiFunction"]
    route = next(r for r in inproc.api.routes if r.path == "/invoices")
    handler = load_handler(spec)
    calls: Counter[str] = Counter()
    consistent: list[bool] = []

    def count(model, params, **_):
        calls[model.name] += 1
        if model.name == "BatchGetItem":
            asked = params["RequestItems"].values()
            consistent.extend(one.get("ConsistentRead") is True for one in asked)

    session = boto3.DEFAULT_SESSION
    session.events.register("before-parameter-build.dynamodb", count)
    bootstrap.reset()  # the handler's clients made again, on the counted session

    def page() -> dict:
        claims = {"custom:firm_id": "firm-pages", "sub": "clerk-1", "cognito:groups": "staff"}
        event = proxy_event(route, "GET", "/invoices", "page_size=50", {}, b"", {}, claims)
        return handler(event, FakeContext(spec, "us-east-1", "123456789012"))

    try:
        answer = page()
        assert answer["statusCode"] == 200, answer
        assert len(json.loads(answer["body"])["items"]) == 50
        assert dict(calls) == {"BatchGetItem": 1, "Query": 1}
        assert consistent == [True]
        members.remove("firm-pages", "clerk-1")
        calls.clear()
        refused = page()
        assert refused["statusCode"] == 401
        assert dict(calls) == {"BatchGetItem": 1}
    finally:
        session.events.unregister("before-parameter-build.dynamodb", count)
