"""The Clio sandbox's wire format, spoken to directly with `requests`: fields, paging, filters,
OAuth, rate limits, webhooks and the `/_sandbox` controls."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from local.clio_sandbox import ClioSandbox, seed_demo
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

pytest_plugins = ["tests.integration.conftest_clio"]

FIELDS = "id,etag,number,state,kind,total,balance,updated_at,client{id,name},matters{id}"


def bills_url(sandbox: ClioSandbox) -> str:
    return f"{sandbox.url}/api/v4/bills.json"


def list_bills(session: requests.Session, sandbox: ClioSandbox, **params: Any) -> requests.Response:
    return session.get(bills_url(sandbox), params={"fields": FIELDS, **params}, timeout=10)


# -- fields ---------------------------------------------------------------------------------------


def test_given_no_fields_when_listing_bills_then_only_id_and_etag_come_back(
    clio_sandbox: ClioSandbox,
) -> None:
    make_bill(clio_sandbox, "firm")
    session = api_session(clio_sandbox, "firm")

    answer = session.get(bills_url(clio_sandbox), timeout=5)

    assert answer.status_code == 200
    assert [sorted(b) for b in answer.json()["data"]] == [["etag", "id"]]


def test_given_fields_with_nesting_when_listing_then_money_is_major_units_and_nested_fields_apply(
    clio_sandbox: ClioSandbox,
) -> None:
    made = make_bill(clio_sandbox, "firm", total_cents=123450, balance_cents=23405)
    session = api_session(clio_sandbox, "firm")

    bill = list_bills(session, clio_sandbox).json()["data"][0]

    assert bill["id"] == made["id"]
    assert bill["total"] == 1234.5
    assert bill["balance"] == 234.05
    assert set(bill["client"]) == {"id", "name"}
    assert bill["client"]["name"] == "Acme Holdings LLC"
    assert set(bill["matters"][0]) == {"id"}
    assert bill["kind"] == "revenue_kind"
    assert bill["etag"].startswith('"') and bill["etag"].endswith('"')


@pytest.mark.parametrize(
    "fields",
    ["id,bogus", "id,client{id,bogus}", "id,client{id,matter{id}}", "id,total{x}", "id,,etag"],
)
def test_given_a_bad_fields_parameter_when_listing_then_400_bad_request(
    clio_sandbox: ClioSandbox, fields: str
) -> None:
    session = api_session(clio_sandbox, "firm")

    answer = session.get(bills_url(clio_sandbox), params={"fields": fields}, timeout=5)

    assert answer.status_code == 400
    assert answer.json()["error"]["type"] == "BadRequest"
    assert answer.json()["error"]["message"]


# -- paging ---------------------------------------------------------------------------------------


def test_given_450_bills_when_paging_by_200_then_next_is_followed_and_omitted_on_the_last_page(
    clio_sandbox: ClioSandbox,
) -> None:
    control(clio_sandbox, "POST", "seed", {"account": "big", "count": 450})
    session = api_session(clio_sandbox, "big")
    clio_sandbox.state.list_includes_deleted = True  # every seeded bill, deleted ones too

    pages = []
    answer = list_bills(session, clio_sandbox, limit=200, order="id(asc)")
    while True:
        assert answer.status_code == 200, answer.text
        payload = answer.json()
        pages.append(payload)
        next_url = payload["meta"]["paging"].get("next")
        if not next_url:
            break
        assert next_url.startswith(bills_url(clio_sandbox) + "?")
        assert "page_token=" in next_url and "limit=200" in next_url and "fields=" in next_url
        answer = session.get(next_url, timeout=10)

    ids = [b["id"] for p in pages for b in p["data"]]
    assert [len(p["data"]) for p in pages] == [200, 200, 50]
    assert ids == sorted(ids) and len(set(ids)) == 450
    assert "next" not in pages[-1]["meta"]["paging"]
    assert pages[0]["meta"]["records"] == 450


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "201"},
        {"limit": "x"},
        {"order": "id(desc)"},
        {"page_token": "not-a-cursor"},
    ],
)
def test_given_bad_paging_parameters_when_listing_then_400(
    clio_sandbox: ClioSandbox, params: dict[str, str]
) -> None:
    session = api_session(clio_sandbox, "firm")

    answer = list_bills(session, clio_sandbox, **params)

    assert answer.status_code == 400
    assert answer.json()["error"]["type"] == "BadRequest"


# -- filters --------------------------------------------------------------------------------------


def test_given_bills_changed_after_a_mark_when_listing_updated_since_then_only_those_come_back(
    clio_sandbox: ClioSandbox,
) -> None:
    first = make_bill(clio_sandbox, "firm")
    second = make_bill(clio_sandbox, "firm")
    third = make_bill(clio_sandbox, "firm")
    mark = second["updated_at"]
    control(clio_sandbox, "PATCH", f"bills/{first['id']}", {"balance_cents": 100})
    session = api_session(clio_sandbox, "firm")

    answer = list_bills(session, clio_sandbox, updated_since=mark)

    assert sorted(b["id"] for b in answer.json()["data"]) == [first["id"], third["id"]]
    created = list_bills(session, clio_sandbox, created_since=mark).json()["data"]
    assert [b["id"] for b in created] == [third["id"]]


def test_given_changes_in_one_second_then_updated_at_strictly_increases_and_etag_changes(
    clio_sandbox: ClioSandbox,
) -> None:
    made = [make_bill(clio_sandbox, "firm") for _ in range(5)]
    patched = control(clio_sandbox, "PATCH", f"bills/{made[0]['id']}", {"state": "void"}).json()

    stamps = [datetime.fromisoformat(b["updated_at"]) for b in [*made, patched]]
    assert all(a < b for a, b in itertools.pairwise(stamps))
    assert patched["etag"] != made[0]["etag"]


def test_given_a_bill_moved_to_another_client_then_it_is_a_new_version_with_that_client(
    clio_sandbox: ClioSandbox,
) -> None:
    made = make_bill(clio_sandbox, "firm")
    patched = control(
        clio_sandbox, "PATCH", f"bills/{made['id']}", {"client_name": "Mary Carter"}
    ).json()
    session = api_session(clio_sandbox, "firm")

    bill = list_bills(session, clio_sandbox, fields="id,etag,updated_at,client{name}").json()
    assert bill["data"][0]["client"]["name"] == "Mary Carter"
    assert patched["etag"] != made["etag"]
    assert datetime.fromisoformat(patched["updated_at"]) > datetime.fromisoformat(
        made["updated_at"]
    )
    unknown = control(clio_sandbox, "PATCH", f"bills/{made['id']}", {"total_cents": 1})
    assert unknown.status_code == 400


def test_given_mixed_bills_when_filtering_by_state_and_type_then_only_matches_come_back(
    clio_sandbox: ClioSandbox,
) -> None:
    paid = make_bill(clio_sandbox, "firm", state="paid")
    trust = make_bill(clio_sandbox, "firm", kind="trust_request")
    make_bill(clio_sandbox, "firm", kind="invoice")
    session = api_session(clio_sandbox, "firm")

    by_state = list_bills(session, clio_sandbox, state="paid").json()["data"]
    by_type = list_bills(session, clio_sandbox, type="trust").json()["data"]
    revenue = list_bills(session, clio_sandbox, type="revenue").json()["data"]

    assert [b["id"] for b in by_state] == [paid["id"]]
    assert [(b["id"], b["kind"]) for b in by_type] == [(trust["id"], "trust_kind")]
    assert {b["kind"] for b in revenue} == {"revenue_kind"} and len(revenue) == 2
    assert list_bills(session, clio_sandbox, state="unpaid").status_code == 400
    assert list_bills(session, clio_sandbox, type="invoice").status_code == 400


def test_given_other_filters_when_listing_then_client_matter_ids_and_query_narrow_the_list(
    clio_sandbox: ClioSandbox,
) -> None:
    one = make_bill(clio_sandbox, "firm", number="INV-7001")
    two = make_bill(
        clio_sandbox,
        "firm",
        client={"name": "Maria Gonzalez", "email": None},
        matter={"display_number": "00043-Gonzalez", "description": "Estate"},
    )
    session = api_session(clio_sandbox, "firm")

    def ids(**params: Any) -> list[int]:
        return [b["id"] for b in list_bills(session, clio_sandbox, **params).json()["data"]]

    assert ids(client_id=two["client"]["id"]) == [two["id"]]
    assert ids(matter_id=one["matters"][0]["id"]) == [one["id"]]
    assert ids(**{"ids[]": [str(two["id"])]}) == [two["id"]]
    assert ids(query="7001") == [one["id"]]


def test_given_a_deleted_bill_when_listing_without_state_then_it_is_left_out_unless_asked_for(
    clio_sandbox: ClioSandbox,
) -> None:
    kept = make_bill(clio_sandbox, "firm")
    gone = make_bill(clio_sandbox, "firm", state="draft")
    control(clio_sandbox, "PATCH", f"bills/{gone['id']}", {"state": "deleted"})
    session = api_session(clio_sandbox, "firm")

    unfiltered = [b["id"] for b in list_bills(session, clio_sandbox).json()["data"]]
    deleted = list_bills(session, clio_sandbox, state="deleted").json()["data"]
    clio_sandbox.state.list_includes_deleted = True
    with_deleted = [b["id"] for b in list_bills(session, clio_sandbox).json()["data"]]

    assert unfiltered == [kept["id"]]
    assert [(b["id"], b["state"]) for b in deleted] == [(gone["id"], "deleted")]
    assert with_deleted == [kept["id"], gone["id"]]


# -- single bills ---------------------------------------------------------------------------------


def test_given_a_bill_when_shown_with_its_etag_then_304_and_other_accounts_get_404(
    clio_sandbox: ClioSandbox,
) -> None:
    made = make_bill(clio_sandbox, "firm")
    session = api_session(clio_sandbox, "firm")
    stranger = api_session(clio_sandbox, "other-firm")
    url = f"{clio_sandbox.url}/api/v4/bills/{made['id']}.json"

    shown = session.get(url, params={"fields": FIELDS}, timeout=5)
    again = session.get(
        url,
        params={"fields": FIELDS},
        headers={"If-None-Match": shown.json()["data"]["etag"]},
        timeout=5,
    )
    foreign = stranger.get(url, params={"fields": FIELDS}, timeout=5)

    assert shown.status_code == 200 and shown.json()["data"]["number"] == made["number"]
    assert again.status_code == 304 and again.content == b""
    assert foreign.status_code == 404 and foreign.json()["error"]["type"] == "NotFound"
    assert list_bills(stranger, clio_sandbox).json()["data"] == []


def test_given_api_writes_then_if_match_guards_patch_and_delete_voids_or_deletes_by_state(
    clio_sandbox: ClioSandbox,
) -> None:
    unpaid = make_bill(clio_sandbox, "firm")
    draft = make_bill(clio_sandbox, "firm", state="draft")
    paid = make_bill(clio_sandbox, "firm", state="paid")
    session = api_session(clio_sandbox, "firm")
    url = f"{clio_sandbox.url}/api/v4/bills/{{}}.json"

    stale = session.patch(
        url.format(unpaid["id"]),
        json={"data": {"memo": "x"}},
        headers={"If-Match": '"old"'},
        timeout=5,
    )
    patched = session.patch(
        url.format(unpaid["id"]),
        json={"data": {"subject": "New subject"}},
        params={"fields": "id,subject,etag"},
        headers={"If-Match": unpaid["etag"]},
        timeout=5,
    )
    voided = session.delete(url.format(unpaid["id"]), timeout=5)
    deleted = session.delete(url.format(draft["id"]), timeout=5)
    refused = session.delete(url.format(paid["id"]), timeout=5)

    assert stale.status_code == 412
    assert patched.status_code == 200 and patched.json()["data"]["subject"] == "New subject"
    assert patched.json()["data"]["etag"] != unpaid["etag"]
    assert voided.status_code == deleted.status_code == 204
    assert clio_sandbox.state.bills[unpaid["id"]].state == "void"
    assert clio_sandbox.state.bills[draft["id"]].state == "deleted"
    assert refused.status_code == 422


def test_given_a_bill_when_previewed_then_simple_html_shows_its_number_and_total(
    clio_sandbox: ClioSandbox,
) -> None:
    made = make_bill(clio_sandbox, "firm", total_cents=98765)
    session = api_session(clio_sandbox, "firm")

    answer = session.get(f"{clio_sandbox.url}/api/v4/bills/{made['id']}/preview.json", timeout=5)

    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/html")
    assert answer.text.startswith("<!DOCTYPE html>")
    assert made["number"] in answer.text and "$987.65" in answer.text and "<table" in answer.text


def test_given_the_nc_page_then_it_shows_the_bill_id_from_the_hash(
    clio_sandbox: ClioSandbox,
) -> None:
    answer = requests.get(f"{clio_sandbox.url}/nc/", timeout=5)

    assert answer.status_code == 200
    assert "Clio sandbox bill" in answer.text and "location.hash" in answer.text


# -- OAuth ----------------------------------------------------------------------------------------


def test_given_a_code_when_exchanged_twice_then_the_second_exchange_is_invalid_grant(
    clio_sandbox: ClioSandbox,
) -> None:
    code = authorize_code(clio_sandbox, "firm")
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "redirect_uri": REDIRECT_URI,
    }

    first = requests.post(f"{clio_sandbox.url}/oauth/token", data=form, timeout=5)
    second = requests.post(f"{clio_sandbox.url}/oauth/token", data=form, timeout=5)
    wrong = requests.post(
        f"{clio_sandbox.url}/oauth/token", data={**form, "client_secret": "nope"}, timeout=5
    )

    assert first.status_code == 200
    assert set(first.json()) == {"token_type", "access_token", "expires_in", "refresh_token"}
    assert first.json()["expires_in"] == 2592000
    assert second.status_code == 400 and second.json()["error"] == "invalid_grant"
    assert wrong.status_code == 401 and wrong.json() == {
        "error": "invalid_client",
        "error_description": "Client authentication failed",
    }


def test_given_a_bad_authorize_request_then_400(clio_sandbox: ClioSandbox) -> None:
    answer = requests.get(
        f"{clio_sandbox.url}/oauth/authorize",
        params={"response_type": "token"},
        allow_redirects=False,
        timeout=5,
    )

    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"


def test_given_an_expired_token_when_calling_then_401_and_the_refresh_token_still_works(
    clio_sandbox: ClioSandbox,
) -> None:
    tokens = token_answer(clio_sandbox, "firm")
    control(clio_sandbox, "POST", "tokens/expire", {"account": "firm"})
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}

    expired = requests.get(bills_url(clio_sandbox), headers=headers, timeout=5)
    refreshed = [
        requests.post(
            f"{clio_sandbox.url}/oauth/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": tokens["refresh_token"],
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
            },
            timeout=5,
        ).json()
        for _ in range(2)
    ]
    fresh = {"Authorization": f"Bearer {refreshed[1]['access_token']}"}

    assert expired.status_code == 401
    assert expired.json() == {
        "error": "invalid_token",
        "error_description": "The access token expired",
    }
    # Clio Manage does not rotate refresh tokens: the same one comes back, reusable.
    assert [r["refresh_token"] for r in refreshed] == [tokens["refresh_token"]] * 2
    assert requests.get(bills_url(clio_sandbox), headers=fresh, timeout=5).status_code == 200


def test_given_no_token_or_a_retired_api_version_then_401_or_410(clio_sandbox: ClioSandbox) -> None:
    session = api_session(clio_sandbox, "firm")

    anonymous = requests.get(bills_url(clio_sandbox), timeout=5)
    retired = session.get(bills_url(clio_sandbox), headers={"X-API-VERSION": "3.0.0"}, timeout=5)
    pinned = session.get(bills_url(clio_sandbox), headers={"X-API-VERSION": "4.0.9"}, timeout=5)

    assert anonymous.status_code == 401 and anonymous.json()["error"] == "invalid_token"
    assert retired.status_code == 410
    assert pinned.status_code == 200 and pinned.headers["X-API-VERSION"] == "4.0.9"


def test_given_who_am_i_then_the_account_user_comes_back(clio_sandbox: ClioSandbox) -> None:
    session = api_session(clio_sandbox, "firm")

    answer = session.get(
        f"{clio_sandbox.url}/api/v4/users/who_am_i.json", params={"fields": "id,name"}, timeout=5
    )

    assert answer.status_code == 200
    assert set(answer.json()["data"]) == {"id", "name"}


def test_given_who_am_i_with_the_nested_account_then_each_account_says_whose_it_is(
    clio_sandbox: ClioSandbox,
) -> None:
    fields = {"fields": "id,name,email,account{id,name}"}
    answers = {
        account: api_session(clio_sandbox, account)
        .get(f"{clio_sandbox.url}/api/v4/users/who_am_i.json", params=fields, timeout=5)
        .json()["data"]
        for account in ("firm-c", "victim-v")
    }

    firm, victim = answers["firm-c"], answers["victim-v"]
    assert set(firm) == {"id", "name", "email", "account"}
    assert set(firm["account"]) == {"id", "name"}
    assert firm["account"]["name"] == "Firm C Law LLP"
    assert firm["account"]["id"] != victim["account"]["id"] and firm["id"] != victim["id"]
    # Without braces a nested record answers its default fields, as Clio does.
    plain = api_session(clio_sandbox, "firm-c").get(
        f"{clio_sandbox.url}/api/v4/users/who_am_i.json", params={"fields": "account"}, timeout=5
    )
    assert set(plain.json()["data"]["account"]) == {"id", "etag"}


# -- rate limits and faults -----------------------------------------------------------------------


def test_given_a_small_rate_limit_when_spent_then_headers_count_down_and_429_says_retry_after(
    clio_sandbox: ClioSandbox,
) -> None:
    control(clio_sandbox, "POST", "rate_limit", {"limit": 3, "window_seconds": 60})
    session = api_session(clio_sandbox, "firm")

    answers = [list_bills(session, clio_sandbox) for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert all(a.headers["X-RateLimit-Limit"] == "3" for a in answers)
    reset = int(answers[0].headers["X-RateLimit-Reset"])
    assert time.time() < reset <= time.time() + 61
    assert 1 <= int(answers[3].headers["Retry-After"]) <= 60
    assert answers[3].json()["error"]["type"] == "RateLimited"
    # Limits are per access token: a second token of the same firm has its own window.
    assert list_bills(api_session(clio_sandbox, "firm"), clio_sandbox).status_code == 200


def test_given_injected_faults_then_the_next_requests_fail_and_stats_count_them(
    clio_sandbox: ClioSandbox,
) -> None:
    session = api_session(clio_sandbox, "firm")
    control(
        clio_sandbox,
        "POST",
        "faults",
        {"account": "firm", "status": 429, "count": 1, "retry_after": 7},
    )
    control(clio_sandbox, "POST", "faults", {"status": 503, "count": 1})
    control(clio_sandbox, "POST", "stats/reset")

    answers = [list_bills(session, clio_sandbox) for _ in range(3)]
    stats = control(clio_sandbox, "GET", "stats?account=firm").json()

    assert [a.status_code for a in answers] == [429, 503, 200]
    assert answers[0].headers["Retry-After"] == "7"
    assert stats["api_requests"] == 3 and stats["by_path"] == {"/api/v4/bills.json": 3}


# -- webhooks -------------------------------------------------------------------------------------


def create_webhook(
    session: requests.Session, sandbox: ClioSandbox, hook_url: str, **data: Any
) -> requests.Response:
    body = {
        "url": hook_url,
        "model": "bill",
        "events": ["created", "updated", "deleted"],
        "fields": "id,etag,state,balance,client{name}",
        **data,
    }
    return session.post(f"{sandbox.url}/api/v4/webhooks.json", json={"data": body}, timeout=5)


def test_given_a_webhook_when_the_receiver_echoes_the_handshake_then_signed_deliveries_follow(
    clio_sandbox: ClioSandbox, webhook_receiver: WebhookReceiver
) -> None:
    session = api_session(clio_sandbox, "firm")

    created = create_webhook(session, clio_sandbox, webhook_receiver.url)
    hook = created.json()["data"]
    handshake = wait_for(webhook_receiver.handshakes)[0]
    wait_for(lambda: clio_sandbox.state.webhooks[hook["id"]].status == "enabled")
    bill = make_bill(clio_sandbox, "firm")
    control(clio_sandbox, "PATCH", f"bills/{bill['id']}", {"balance_cents": 0})
    deliveries = wait_for(
        lambda: len(webhook_receiver.deliveries()) >= 2 and webhook_receiver.deliveries()
    )

    assert created.status_code == 201
    assert hook["status"] == "pending" and hook["model"] == "bill" and hook["shared_secret"]
    assert handshake.headers["X-Hook-Secret"] == hook["shared_secret"]
    assert handshake.json() == {"data": {"id": hook["id"]}}
    for delivery in deliveries:
        expected = hmac.new(hook["shared_secret"].encode(), delivery.body, hashlib.sha256)
        assert delivery.headers["X-Hook-Signature"] == expected.hexdigest()
    events = sorted((d.json()["meta"]["event"], d.json()["data"]["state"]) for d in deliveries)
    assert events == [("created", "awaiting_payment"), ("updated", "paid")]
    payload = deliveries[0].json()
    assert set(payload["data"]) == {"id", "etag", "state", "balance", "client"}
    assert payload["data"]["client"] == {"name": "Acme Holdings LLC"}
    assert payload["meta"]["webhook_id"] == hook["id"]


def test_given_a_receiver_that_ignores_the_handshake_then_activate_with_the_secret_enables_it(
    clio_sandbox: ClioSandbox, webhook_receiver: WebhookReceiver
) -> None:
    webhook_receiver.echo_secret = False
    session = api_session(clio_sandbox, "firm")
    hook = create_webhook(session, clio_sandbox, webhook_receiver.url).json()["data"]
    wait_for(lambda: any(d["kind"] == "handshake" for d in clio_sandbox.state.delivery_log()))
    activate = f"{clio_sandbox.url}/api/v4/webhooks/{hook['id']}/activate"

    still_pending = clio_sandbox.state.webhooks[hook["id"]].status
    refused = session.put(activate, headers={"X-Hook-Secret": "wrong"}, timeout=5)
    accepted = session.put(activate, headers={"X-Hook-Secret": hook["shared_secret"]}, timeout=5)

    assert still_pending == "pending"
    assert refused.status_code == 422
    assert accepted.status_code == 200 and accepted.json()["data"]["status"] == "enabled"


def test_given_a_receiver_answering_410_then_the_webhook_is_suspended(
    clio_sandbox: ClioSandbox, webhook_receiver: WebhookReceiver
) -> None:
    session = api_session(clio_sandbox, "firm")
    hook = create_webhook(session, clio_sandbox, webhook_receiver.url).json()["data"]
    wait_for(lambda: clio_sandbox.state.webhooks[hook["id"]].status == "enabled")
    webhook_receiver.statuses = [410]

    make_bill(clio_sandbox, "firm")

    wait_for(lambda: clio_sandbox.state.webhooks[hook["id"]].status == "suspended")
    shown = session.get(f"{clio_sandbox.url}/api/v4/webhooks/{hook['id']}.json", timeout=5)
    assert shown.json()["data"]["status"] == "suspended"


def test_given_a_failing_receiver_then_deliveries_are_retried_then_given_up(
    clio_sandbox: ClioSandbox, webhook_receiver: WebhookReceiver
) -> None:
    session = api_session(clio_sandbox, "firm")
    hook = create_webhook(session, clio_sandbox, webhook_receiver.url).json()["data"]
    wait_for(lambda: clio_sandbox.state.webhooks[hook["id"]].status == "enabled")
    webhook_receiver.statuses = [500, 500, 500]

    make_bill(clio_sandbox, "firm")

    log = control(clio_sandbox, "GET", "webhook_deliveries").json()["data"]
    attempts = wait_for(
        lambda: [
            d
            for d in control(clio_sandbox, "GET", "webhook_deliveries").json()["data"]
            if d["kind"] == "delivery" and d["outcome"] == "gave_up"
        ]
    )
    log = [
        d
        for d in control(clio_sandbox, "GET", "webhook_deliveries").json()["data"]
        if d["kind"] == "delivery"
    ]
    assert [d["attempt"] for d in log] == [1, 2, 3]
    assert [d["status"] for d in log] == [500, 500, 500]
    assert attempts[0]["attempt"] == 3
    assert clio_sandbox.state.webhooks[hook["id"]].status == "enabled"


@pytest.mark.parametrize(
    ("data", "status", "field"),
    [
        ({"url": "http://example.com/hook"}, 422, "url"),
        ({"expires_at": "2099-01-01T00:00:00Z"}, 422, "expires_at"),
        ({"fields": "id,nope"}, 400, "fields"),
        ({"fields": "id," * 400}, 422, "fields"),
        ({"model": "planet"}, 422, "model"),
        ({"events": ["exploded"]}, 422, "events"),
    ],
)
def test_given_an_invalid_webhook_when_created_then_it_is_refused(
    clio_sandbox: ClioSandbox, data: dict[str, Any], status: int, field: str
) -> None:
    session = api_session(clio_sandbox, "firm")

    answer = create_webhook(session, clio_sandbox, "https://hooks.example.com/clio", **data)

    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["field"] == field


def test_given_a_webhook_when_renewed_listed_and_deleted_then_each_answer_fits(
    clio_sandbox: ClioSandbox,
) -> None:
    session = api_session(clio_sandbox, "firm")
    hook = create_webhook(session, clio_sandbox, "https://hooks.example.com/clio").json()["data"]
    url = f"{clio_sandbox.url}/api/v4/webhooks/{hook['id']}.json"
    later = (datetime.now(UTC) + timedelta(days=30)).isoformat()

    default_expiry = datetime.fromisoformat(hook["expires_at"]) - datetime.now(UTC)
    renewed = session.patch(
        url, json={"data": {"expires_at": later}}, params={"fields": "id,expires_at"}, timeout=5
    )
    listed = session.get(f"{clio_sandbox.url}/api/v4/webhooks.json", timeout=5)
    deleted = session.delete(url, timeout=5)
    gone = session.get(url, timeout=5)

    assert timedelta(days=2, hours=23) < default_expiry <= timedelta(days=3)
    assert set(renewed.json()["data"]) == {"id", "expires_at"}
    assert datetime.fromisoformat(renewed.json()["data"]["expires_at"]) == datetime.fromisoformat(
        later
    )
    assert [h["id"] for h in listed.json()["data"]] == [hook["id"]]
    assert deleted.status_code == 204 and gone.status_code == 404


# -- controls -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kind": "bill"}, "kind"),
        ({"kind": None}, "kind"),
        ({"total_cents": "12.50"}, "total_cents"),
        ({"total_cents": -1}, "total_cents"),
        ({"state": "unpaid"}, "state"),
        ({"client": None}, "client"),
        ({"client": {"email": "x@example.com"}}, "client.name"),
        ({"matter": {"description": "no number"}}, "matter.display_number"),
        ({"balance_cents": 999999999}, "balance_cents"),
        ({"due_at": "next week"}, "due_at"),
        ({"account": ""}, "account"),
    ],
)
def test_given_a_bad_bill_control_body_then_400_names_the_field(
    clio_sandbox: ClioSandbox, change: dict[str, Any], field: str
) -> None:
    body = {
        "account": "firm",
        "kind": "invoice",
        "total_cents": 1000,
        "state": "draft",
        "client": {"name": "Acme", "email": "a@example.com"},
        **change,
    }

    answer = control(clio_sandbox, "POST", "bills", body)

    assert answer.status_code == 400
    assert answer.json()["error"]["field"] == field


def test_given_bad_control_bodies_then_each_control_answers_400_naming_the_field(
    clio_sandbox: ClioSandbox,
) -> None:
    bill = make_bill(clio_sandbox, "firm")

    cases = [
        (control(clio_sandbox, "PATCH", f"bills/{bill['id']}", {"colour": "red"}), "colour"),
        (
            control(clio_sandbox, "PATCH", f"bills/{bill['id']}", {"balance_cents": -5}),
            "balance_cents",
        ),
        (control(clio_sandbox, "POST", "seed", {"account": "firm", "count": 0}), "count"),
        (control(clio_sandbox, "POST", "seed", {"count": 5}), "account"),
        (control(clio_sandbox, "POST", "rate_limit", {"limit": "many"}), "limit"),
        (control(clio_sandbox, "POST", "faults", {"status": 418}), "status"),
        (control(clio_sandbox, "POST", "tokens/expire", {}), "account"),
    ]

    for answer, field in cases:
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["field"] == field
    assert control(clio_sandbox, "PATCH", "bills/999999", {"state": "paid"}).status_code == 404


def test_given_a_balance_paid_down_to_zero_then_the_bill_becomes_paid(
    clio_sandbox: ClioSandbox,
) -> None:
    bill = make_bill(clio_sandbox, "firm", total_cents=50000)

    partial = control(clio_sandbox, "PATCH", f"bills/{bill['id']}", {"balance_cents": 20000}).json()
    settled = control(clio_sandbox, "PATCH", f"bills/{bill['id']}", {"balance_cents": 0}).json()

    assert (partial["state"], partial["paid"], partial["balance"]) == (
        "awaiting_payment",
        300.0,
        200.0,
    )
    assert (settled["state"], settled["paid"], settled["balance"]) == ("paid", 500.0, 0.0)


def test_given_20000_bills_to_seed_then_seeding_takes_well_under_a_few_seconds(
    clio_sandbox: ClioSandbox,
) -> None:
    started = time.monotonic()

    answer = control(clio_sandbox, "POST", "seed", {"account": "bulk", "count": 20000})

    assert answer.status_code == 201
    assert answer.json()["created"] == 20000
    assert time.monotonic() - started < 3.0
    accounts = control(clio_sandbox, "GET", "accounts").json()["data"]
    assert {"name": "bulk", "bills": 20000}.items() <= next(
        a for a in accounts if a["name"] == "bulk"
    ).items()


def test_given_the_demo_seed_then_bills_cover_both_kinds_every_state_and_a_client_lacks_email() -> (
    None
):
    sandbox = ClioSandbox()

    ids = seed_demo(sandbox.state)

    bills = [sandbox.state.bills[i] for i in ids]
    clients = {
        sandbox.state.contacts[b.client_id].name: sandbox.state.contacts[b.client_id] for b in bills
    }
    assert 30 <= len(bills) <= 50
    assert {b.kind for b in bills} == {"revenue_kind", "trust_kind"}
    assert {b.state for b in bills} == {
        "draft",
        "awaiting_approval",
        "awaiting_payment",
        "paid",
        "void",
        "deleted",
    }
    assert len(clients) == 6 and sum(1 for c in clients.values() if c.email is None) == 1
    assert len({b.matter_id for b in bills if b.matter_id}) == 10
    assert any(0 < b.balance_cents < b.total_cents for b in bills)
    again = ClioSandbox()
    assert [b.number for b in bills] == [
        again.state.bills[i].number for i in seed_demo(again.state)
    ]
