"""The foundation end to end, over HTTP against the local stack: connect, sync, list, page,
freshness through a sync and through a webhook, Clio's rate limit and token expiry, firm
isolation, and bad input."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.e2e

ALL_STATES = "draft,awaiting_approval,awaiting_payment,paid,void,deleted"
ROOT = Path(__file__).resolve().parents[2]


def wait_for(predicate, timeout=20.0, every=0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(every)


def test_given_the_demo_firm_when_the_stack_starts_then_its_clio_bills_are_listed(local_stack):
    from tests.e2e.conftest import Firm

    demo = Firm(local_stack, "demo")
    body = wait_for(lambda: (b := demo.get("/invoices", page_size=200).json())["items"] and b)
    assert {i["state"] for i in body["items"]} <= {"awaiting_payment", "paid"}
    kinds = {i["kind"] for i in demo.all_invoices(ALL_STATES, 200)}
    assert kinds == {"invoice", "trust_request"}


def test_given_a_firm_when_it_connects_through_oauth_then_the_callback_redirects_to_the_ui(
    new_firm, local_stack
):
    firm, clio = new_firm()
    clio.create_bill(total_cents=12_345, state="awaiting_payment")
    # connect_clio inside new_firm already walked the redirects; do it again to see the answer.
    answer = firm.connect_clio(clio.account)
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith(f"{local_stack.api_url}/?clio=connected")
    run = firm.sync_now()
    assert run["status"] == "succeeded"
    items = firm.get("/invoices").json()["items"]
    assert [i["total_cents"] for i in items] == [12_345]


def test_given_a_forged_or_missing_state_when_the_callback_is_called_then_4xx_and_nothing_connects(
    local_stack,
):
    # Missing is malformed (400); forged or unsigned proves no connect of ours (401).
    for query, status in (
        ("code=abc", 400),
        ("code=abc&state=eyJmIjoiZXZpbCJ9.bad", 401),
        ("state=x", 401),
    ):
        answer = requests.get(
            f"{local_stack.api_url}/clio/callback?{query}", allow_redirects=False, timeout=30
        )
        assert answer.status_code == status, answer.text
        assert answer.json()["error"]["field"] == "state"


def test_given_bills_in_every_state_when_listed_then_each_filter_shows_exactly_its_states(new_firm):
    firm, clio = new_firm()
    made = {}
    for state in ("draft", "awaiting_approval", "awaiting_payment", "paid", "void", "deleted"):
        made[state] = clio.create_bill(
            state=state, kind="trust_request" if state == "paid" else "invoice"
        )["id"]
    firm.sync_now()
    default = firm.get("/invoices").json()
    assert {i["state"] for i in default["items"]} == {"awaiting_payment", "paid"}
    assert default["synced_at"] is not None
    for states in ("void", "draft,paid", "deleted", ALL_STATES):
        wanted = set(states.split(","))
        items = firm.get("/invoices", states=states).json()["items"]
        assert {i["state"] for i in items} == wanted
        assert {i["id"] for i in items} == {str(made[s]) for s in wanted}
    paid = firm.get("/invoices", states="paid").json()["items"][0]
    assert paid["kind"] == "trust_request"
    for field in (
        "id",
        "number",
        "state",
        "kind",
        "client",
        "matter",
        "total_cents",
        "outstanding_clio_cents",
        "paid_gl_cents",
        "currency",
        "issued_at",
        "due_at",
        "clio_url",
        "payment_link_id",
        "last_sent_at",
    ):
        assert field in paid
    assert paid["client"]["email"] == "billing@acme.example"
    assert paid["clio_url"].endswith(f"/nc/#/bills/{made['paid']}")
    assert paid["paid_gl_cents"] == 0 and paid["payment_link_id"] is None


def test_given_460_bills_when_paged_by_37_then_each_is_seen_exactly_once(new_firm):
    firm, _ = new_firm(bills=460)
    run = firm.sync_now()
    assert run["status"] == "succeeded"
    items = firm.all_invoices(ALL_STATES, 37)
    ids = [i["id"] for i in items]
    assert len(ids) == 460 and len(set(ids)) == 460
    assert ids == sorted(ids, key=int, reverse=True)


def test_given_a_bill_changed_in_clio_when_synced_then_the_change_shows(new_firm):
    firm, clio = new_firm()
    bill = clio.create_bill(total_cents=50_000)
    firm.sync_now()

    def shown(states):
        return [
            (i["id"], i["outstanding_clio_cents"])
            for i in firm.get("/invoices", states=states).json()["items"]
        ]

    # Changes no webhook reports (a lapsed subscription): only the sync can bring them.
    clio.change_bill(bill["id"], balance_cents=20_000, webhooks=False)
    assert shown("awaiting_payment") == [(str(bill["id"]), 50_000)]
    run = firm.sync_now()
    assert run["status"] == "succeeded" and run["bills_changed"] == 1
    assert shown("awaiting_payment") == [(str(bill["id"]), 20_000)]
    clio.change_bill(bill["id"], state="paid", webhooks=False)
    firm.sync_now()
    assert shown("awaiting_payment") == []
    assert [i for i, _ in shown("paid")] == [str(bill["id"])]


def test_given_a_bill_changed_in_clio_when_its_webhook_arrives_then_it_shows_within_seconds(
    new_firm,
):
    firm, clio = new_firm()
    bill = clio.create_bill(total_cents=70_000)
    firm.sync_now()
    clio.change_bill(bill["id"], balance_cents=1_000)

    def seen():
        items = firm.session.get(
            f"{firm.stack.api_url}/invoices", params={"states": "awaiting_payment"}, timeout=30
        ).json()["items"]
        return items and items[0]["outstanding_clio_cents"] == 1_000

    # No sync pressed: only Clio's webhook can bring the change (the schedule ticks each minute).
    wait_for(seen, timeout=10)


def test_given_the_one_minute_schedule_when_it_ticks_then_changes_arrive(new_firm, local_stack):
    firm, clio = new_firm()
    bill = clio.create_bill(total_cents=5_000)
    firm.sync_now()
    clio.change_bill(bill["id"], state="void", webhooks=False)
    assert local_stack.control("POST", "/_local/tick").status_code == 202
    wait_for(lambda: firm.get("/invoices", states="void").json()["items"], timeout=20)


def test_given_a_burst_of_429s_when_syncing_then_every_bill_still_arrives(new_firm):
    firm, clio = new_firm(bills=300)
    clio.control("faults", {"status": 429, "count": 3, "retry_after": 1})
    run = firm.sync_now()
    assert run["status"] == "succeeded"
    assert len(firm.all_invoices(ALL_STATES, 200)) == 300


def test_given_an_expired_access_token_when_syncing_then_it_is_refreshed(new_firm):
    firm, clio = new_firm(bills=5)
    firm.sync_now()
    clio.control("tokens/expire", {})
    bill = clio.create_bill(total_cents=999)
    run = firm.sync_now()
    assert run["status"] == "succeeded"
    ids = [i["id"] for i in firm.all_invoices(ALL_STATES, 200)]
    assert str(bill["id"]) in ids


def test_given_two_firms_then_neither_sees_the_others_bills_or_syncs(new_firm):
    firm_a, clio_a = new_firm()
    firm_b, clio_b = new_firm()
    bill_a = clio_a.create_bill(total_cents=111)
    clio_b.create_bill(total_cents=222)
    run_a = firm_a.sync_now()
    firm_b.sync_now()
    assert [i["total_cents"] for i in firm_a.get("/invoices").json()["items"]] == [111]
    assert [i["total_cents"] for i in firm_b.get("/invoices").json()["items"]] == [222]
    assert str(bill_a["id"]) not in [i["id"] for i in firm_b.all_invoices(ALL_STATES, 200)]
    foreign = firm_b.get(f"/sync/{run_a['id']}")
    assert foreign.status_code == 404
    assert foreign.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"page_size": "0"}, 422, "page_size"),
        ({"page_size": "201"}, 422, "page_size"),
        ({"page_size": "lots"}, 400, "page_size"),
        ({"states": "unpaid"}, 422, "states"),
        ({"states": "paid,"}, 422, "states"),
        ({"cursor": "not a cursor"}, 422, "cursor"),
        ({"cursor": "not-a-cursor"}, 404, "cursor"),
    ],
)
def test_given_bad_list_parameters_then_a_4xx_names_the_parameter(
    local_stack, params, status, field
):
    from tests.e2e.conftest import Firm

    answer = Firm(local_stack, "demo").get("/invoices", **params)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["field"] == field


def test_given_no_token_then_the_firm_api_refuses(local_stack):
    assert requests.get(f"{local_stack.api_url}/invoices", timeout=30).status_code == 401
    bad = requests.get(
        f"{local_stack.api_url}/invoices", headers={"Authorization": "Bearer real-jwt"}, timeout=30
    )
    assert bad.status_code == 401


def test_given_settings_when_replaced_then_they_apply_to_the_list(new_firm):
    firm, clio = new_firm()
    clio.create_bill(state="draft")
    clio.create_bill(state="paid")
    firm.sync_now()
    settings = firm.get("/settings").json()
    assert settings["default_states"] == ["awaiting_payment", "paid"]
    settings["default_states"] = ["draft"]
    settings["aggregate_payment_links"] = True
    saved = firm.put("/settings", settings)
    assert saved.status_code == 200, saved.text
    assert saved.json()["aggregate_payment_links"] is True
    assert [i["state"] for i in firm.get("/invoices").json()["items"]] == ["draft"]


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"default_states": ["unpaid"]}, 422, "default_states.0"),
        ({"aggregate_payment_links": "sometimes"}, 400, "aggregate_payment_links"),
        ({"reply_to": "not an email"}, 422, "reply_to"),
        ({"surprise": 1}, 400, "surprise"),
    ],
)
def test_given_bad_settings_then_a_4xx_names_the_field_and_nothing_changes(
    new_firm, change, status, field
):
    firm, _ = new_firm()
    before = firm.get("/settings").json()
    answer = firm.put("/settings", {**before, **change})
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["field"] == field
    assert firm.get("/settings").json() == before


def test_given_the_api_then_it_publishes_the_committed_openapi_document(local_stack):
    served = requests.get(f"{local_stack.api_url}/openapi.json", timeout=30)
    assert served.status_code == 200
    committed = json.loads((ROOT / "docs" / "openapi.json").read_text())
    assert served.json() == committed
    assert "/invoices" in committed["paths"] and "/sync/{sync_id}" in committed["paths"]


def test_given_a_new_firm_then_clio_status_says_not_connected_until_it_connects(local_stack):
    from tests.e2e.conftest import Firm

    firm = Firm(local_stack, f"e2e-{uuid.uuid4().hex[:10]}")
    assert firm.get("/clio/status").json()["status"] == "not_connected"

    answer = firm.session.get(
        f"{local_stack.api_url}/clio/connect",
        headers={"Accept": "application/json"},
        allow_redirects=False,
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["authorize_url"].startswith(f"{local_stack.clio_url}/oauth/authorize?")

    assert firm.connect_clio(firm.firm_id).status_code == 302
    status = firm.get("/clio/status").json()
    assert (status["status"], status["region"]) == ("connected", "us")
