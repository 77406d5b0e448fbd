"""The Clio client (billbridge.adapters.clio) against a started Clio sandbox, over real HTTP:
OAuth, paging, pacing and retries, token refresh, bill PDFs and the bill webhook."""

from __future__ import annotations

import hashlib
import hmac
import io
import math
import re
import zlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests

from billbridge.adapters.clio import (
    API_VERSION,
    BILL_FIELDS,
    ClioAuthError,
    ClioBadRequest,
    ClioClient,
    ClioError,
    ClioRateLimited,
    ClioTokens,
    ClioUnavailable,
    verify_webhook_signature,
)
from billbridge.adapters.pdf import html_to_pdf
from billbridge.domain.errors import ClioAuthorizationLost, ClioUnreachable
from local.clio_sandbox import ClioSandbox
from tests.integration.conftest_clio import (
    CLIENT_ID,
    CLIENT_SECRET,
    REDIRECT_URI,
    RecordingSleep,
    WebhookReceiver,
    authorize_code,
    control,
    make_bill,
    wait_for,
)

pytest_plugins = ["tests.integration.conftest_clio"]


def new_client(
    sandbox: ClioSandbox, *, tokens: ClioTokens | None = None, **kwargs: Any
) -> ClioClient:
    kwargs.setdefault("sleep", RecordingSleep())
    return ClioClient(sandbox.url, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, tokens=tokens, **kwargs)


def connect(sandbox: ClioSandbox, account: str) -> ClioTokens:
    """Tokens for `account` the way the product gets them: authorize redirect, then exchange."""
    return new_client(sandbox).exchange_code(authorize_code(sandbox, account))


def all_bills(client: ClioClient, **kwargs: Any) -> list[dict[str, Any]]:
    return [bill for page in client.iter_bill_pages(**kwargs) for bill in page.bills]


# -- OAuth ----------------------------------------------------------------------------------------


def test_given_the_authorize_redirect_when_exchanging_the_code_then_tokens_are_kept_and_reported(
    clio_sandbox: ClioSandbox,
) -> None:
    heard: list[ClioTokens] = []
    client = new_client(clio_sandbox, on_tokens=heard.append)
    authorize = client.authorize_url("signed-state")
    assert authorize.startswith(f"{clio_sandbox.url}/oauth/authorize?response_type=code&")
    code = authorize_code(clio_sandbox, "firm")

    tokens = client.exchange_code(code)
    who = client.who_am_i()

    assert heard == [tokens] and client.tokens == tokens
    remaining = tokens.expires_at - datetime.now(UTC)
    assert timedelta(days=29, hours=23) < remaining <= timedelta(days=30)
    assert tokens.expires_at.tzinfo is not None
    assert set(who) == {"id", "name", "email", "account"} and who["name"] == "Firm Admin"
    assert who["account"]["name"] == "Firm Law LLP"  # which Clio account approved
    with pytest.raises(ClioAuthError):
        new_client(clio_sandbox).exchange_code(code)  # codes are single-use


def test_given_tokens_close_to_expiry_when_ensuring_freshness_then_only_then_they_refresh(
    clio_sandbox: ClioSandbox,
) -> None:
    heard: list[ClioTokens] = []
    tokens = connect(clio_sandbox, "firm")
    client = new_client(clio_sandbox, tokens=tokens, on_tokens=heard.append)

    client.ensure_fresh()
    assert heard == []
    client.ensure_fresh(min_valid_seconds=31 * 24 * 3600)

    assert len(heard) == 1
    assert heard[0].access_token != tokens.access_token
    assert heard[0].refresh_token == tokens.refresh_token  # Clio Manage does not rotate it
    assert client.requests_made == 1


def test_given_an_expired_token_when_calling_then_it_refreshes_once_and_on_tokens_hears(
    clio_sandbox: ClioSandbox,
) -> None:
    make_bill(clio_sandbox, "firm")
    heard: list[ClioTokens] = []
    tokens = connect(clio_sandbox, "firm")
    client = new_client(clio_sandbox, tokens=tokens, on_tokens=heard.append)
    control(clio_sandbox, "POST", "tokens/expire", {"account": "firm"})

    bills = all_bills(client)

    assert len(bills) == 1
    assert len(heard) == 1 and client.tokens == heard[0]
    assert heard[0].access_token != tokens.access_token
    assert client.requests_made == 3  # refused call, refresh, retried call


def test_given_a_revoked_grant_when_the_token_expires_then_ClioAuthError_asks_to_reconnect(
    clio_sandbox: ClioSandbox,
) -> None:
    tokens = connect(clio_sandbox, "firm")
    client = new_client(clio_sandbox, tokens=tokens)
    control(clio_sandbox, "POST", "tokens/revoke", {"account": "firm"})

    with pytest.raises(ClioAuthError) as caught:
        client.who_am_i()

    assert isinstance(caught.value, ClioAuthorizationLost)  # what services catch
    assert caught.value.code == "clio_reconnect_needed"
    assert "invalid_grant" in str(caught.value)


def test_given_tokens_that_clio_refuses_even_fresh_then_one_refresh_then_ClioAuthError() -> None:
    heard: list[ClioTokens] = []
    with ClioSandbox(token_ttl_seconds=0) as sandbox:  # every token is born expired
        client = new_client(sandbox, tokens=connect(sandbox, "firm"), on_tokens=heard.append)

        with pytest.raises(ClioAuthError, match="even after a refresh"):
            client.who_am_i()

    assert len(heard) == 1
    assert client.requests_made == 3  # refused, refresh, refused again: no loop


def test_given_the_wrong_client_secret_when_refreshing_then_ClioAuthError(
    clio_sandbox: ClioSandbox,
) -> None:
    tokens = connect(clio_sandbox, "firm")
    client = ClioClient(clio_sandbox.url, CLIENT_ID, "not-the-secret", REDIRECT_URI, tokens=tokens)

    with pytest.raises(ClioAuthError) as caught:
        client.refresh()

    assert "not-the-secret" not in str(caught.value)


# -- paging ---------------------------------------------------------------------------------------


def test_given_450_bills_when_paging_then_each_is_seen_once_in_ceil_450_over_200_requests(
    clio_sandbox: ClioSandbox,
) -> None:
    clio_sandbox.state.list_includes_deleted = True  # count every seeded bill in one pass
    control(clio_sandbox, "POST", "seed", {"account": "big", "count": 450})
    client = new_client(clio_sandbox, tokens=connect(clio_sandbox, "big"))
    control(clio_sandbox, "POST", "stats/reset")

    pages = list(client.iter_bill_pages())

    ids = [bill["id"] for page in pages for bill in page.bills]
    assert len(ids) == len(set(ids)) == 450
    assert client.requests_made == math.ceil(450 / 200) == len(pages)
    assert [p.next_url is None for p in pages] == [False, False, True]
    stats = control(clio_sandbox, "GET", "stats?account=big").json()
    assert stats["api_requests"] == 3
    bill = pages[0].bills[0]
    assert isinstance(bill["total"], Decimal) and isinstance(bill["balance"], Decimal)
    assert set(bill) == {
        "id",
        "etag",
        "number",
        "state",
        "kind",
        "issued_at",
        "due_at",
        "updated_at",
        "total",
        "balance",
        "currency",
        "client",
        "matters",
        "client_addresses",
    }


def test_given_a_checkpointed_next_url_when_resuming_then_the_walk_continues_where_it_stopped(
    clio_sandbox: ClioSandbox,
) -> None:
    control(clio_sandbox, "POST", "seed", {"account": "big", "count": 1000})
    tokens = connect(clio_sandbox, "big")
    first_run = new_client(clio_sandbox, tokens=tokens)
    first_page = next(first_run.iter_bill_pages(state="awaiting_payment"))
    assert first_page.next_url is not None

    resumed = all_bills(new_client(clio_sandbox, tokens=tokens), start_url=first_page.next_url)
    everything = all_bills(new_client(clio_sandbox, tokens=tokens), state="awaiting_payment")

    assert [b["id"] for b in first_page.bills + resumed] == [b["id"] for b in everything]
    assert {b["state"] for b in resumed} == {"awaiting_payment"}


def test_given_a_high_water_mark_when_paging_updated_since_then_only_later_changes_arrive(
    clio_sandbox: ClioSandbox,
) -> None:
    old = [make_bill(clio_sandbox, "firm") for _ in range(3)]
    client = new_client(clio_sandbox, tokens=connect(clio_sandbox, "firm"))
    first = all_bills(client)
    high_water = max(datetime.fromisoformat(b["updated_at"]) for b in first)
    control(clio_sandbox, "PATCH", f"bills/{old[1]['id']}", {"balance_cents": 100})
    new = make_bill(clio_sandbox, "firm")

    second = all_bills(client, updated_since=high_water)
    third = all_bills(
        client, updated_since=max(datetime.fromisoformat(b["updated_at"]) for b in second)
    )

    assert len(first) == 3
    assert sorted(b["id"] for b in second) == sorted([old[1]["id"], new["id"]])
    assert third == []


def test_given_a_next_url_on_another_host_then_the_token_is_not_sent_there(
    clio_sandbox: ClioSandbox,
) -> None:
    client = new_client(clio_sandbox, tokens=connect(clio_sandbox, "firm"))

    with pytest.raises(ClioError):
        list(client.iter_bill_pages(start_url="https://evil.example/api/v4/bills.json"))

    assert client.requests_made == 0


def test_given_a_bad_filter_then_ClioBadRequest_carries_clios_message(
    clio_sandbox: ClioSandbox,
) -> None:
    client = new_client(clio_sandbox, tokens=connect(clio_sandbox, "firm"))

    with pytest.raises(ClioBadRequest) as caught:
        all_bills(client, state="unpaid")

    assert "state must be one of" in str(caught.value) and caught.value.status == 400


# -- rate limits, faults and retries --------------------------------------------------------------


def test_given_a_burst_of_429s_when_paging_then_every_bill_arrives_once(
    clio_sandbox: ClioSandbox,
) -> None:
    control(clio_sandbox, "POST", "seed", {"account": "big", "count": 450})
    clio_sandbox.state.list_includes_deleted = True
    sleep = RecordingSleep()
    client = new_client(clio_sandbox, tokens=connect(clio_sandbox, "big"), sleep=sleep)
    pages = client.iter_bill_pages()
    first = next(pages)
    control(
        clio_sandbox,
        "POST",
        "faults",
        {"account": "big", "status": 429, "count": 4, "retry_after": 9},
    )

    rest = [bill for page in pages for bill in page.bills]

    ids = [b["id"] for b in first.bills + rest]
    assert len(ids) == len(set(ids)) == 450
    assert sleep.waits == [9.0, 9.0, 9.0, 9.0]
    assert client.requests_made == 3 + 4


def test_given_a_429_without_retry_after_then_the_client_waits_one_second(
    clio_sandbox: ClioSandbox,
) -> None:
    sleep = RecordingSleep()
    client = new_client(clio_sandbox, tokens=connect(clio_sandbox, "firm"), sleep=sleep)
    control(clio_sandbox, "POST", "faults", {"status": 429, "count": 1, "retry_after": 0})

    client.who_am_i()

    assert sleep.waits == [0.0]
    clio_sandbox.state.add_fault(None, 429, 1, 1)
    client.who_am_i()
    assert sleep.waits == [0.0, 1.0]


def test_given_500s_and_503s_when_fetching_then_the_call_is_retried_with_backoff(
    clio_sandbox: ClioSandbox,
) -> None:
    bill = make_bill(clio_sandbox, "firm")
    sleep = RecordingSleep()
    client = new_client(clio_sandbox, tokens=connect(clio_sandbox, "firm"), sleep=sleep)
    control(clio_sandbox, "POST", "faults", {"status": 500, "count": 2})
    control(clio_sandbox, "POST", "faults", {"status": 503, "count": 1})

    fetched = client.get_bill(bill["id"])

    assert fetched is not None and fetched["number"] == bill["number"]
    assert len(sleep.waits) == 3
    assert 0.25 <= sleep.waits[0] <= 0.5 and 0.5 <= sleep.waits[1] <= 1.0  # jittered, doubling
    assert client.requests_made == 4


def test_given_endless_5xx_then_ClioUnavailable_after_max_retries(
    clio_sandbox: ClioSandbox,
) -> None:
    sleep = RecordingSleep()
    client = new_client(
        clio_sandbox, tokens=connect(clio_sandbox, "firm"), sleep=sleep, max_retries=3
    )
    control(clio_sandbox, "POST", "faults", {"status": 503, "count": 50})

    with pytest.raises(ClioUnavailable) as caught:
        client.who_am_i()

    assert isinstance(caught.value, ClioUnreachable)
    assert client.requests_made == 4 and len(sleep.waits) == 3


def test_given_429s_beyond_max_retries_then_ClioRateLimited(clio_sandbox: ClioSandbox) -> None:
    sleep = RecordingSleep()
    client = new_client(
        clio_sandbox, tokens=connect(clio_sandbox, "firm"), sleep=sleep, max_retries=2
    )
    control(clio_sandbox, "POST", "faults", {"status": 429, "count": 50, "retry_after": 2})

    with pytest.raises(ClioRateLimited) as caught:
        client.who_am_i()

    assert caught.value.retry_after == 2.0
    assert sleep.waits == [2.0, 2.0]


def test_given_a_retry_after_beyond_max_wait_then_ClioRateLimited_without_sleeping(
    clio_sandbox: ClioSandbox,
) -> None:
    sleep = RecordingSleep()
    client = new_client(
        clio_sandbox, tokens=connect(clio_sandbox, "firm"), sleep=sleep, max_wait_seconds=65.0
    )
    control(clio_sandbox, "POST", "faults", {"status": 429, "count": 1, "retry_after": 120})

    with pytest.raises(ClioRateLimited) as caught:
        client.who_am_i()

    assert caught.value.retry_after == 120.0
    assert sleep.waits == []


def test_given_a_spent_rate_window_when_calling_again_then_the_client_waits_for_the_reset(
    clio_sandbox: ClioSandbox,
) -> None:
    control(clio_sandbox, "POST", "rate_limit", {"limit": 2, "window_seconds": 0.5})
    sleep = RecordingSleep(real=True)
    client = new_client(clio_sandbox, tokens=connect(clio_sandbox, "firm"), sleep=sleep)
    control(clio_sandbox, "POST", "stats/reset")

    for _ in range(3):
        client.who_am_i()

    # Paced by the headers (X-RateLimit-Reset is whole seconds): one wait, and not one 429.
    assert len(sleep.waits) == 1 and 0 < sleep.waits[0] <= 1.5
    assert client.requests_made == 3
    assert control(clio_sandbox, "GET", "stats?account=firm").json()["api_requests"] == 3


def test_given_a_window_resetting_beyond_max_wait_then_ClioRateLimited_before_sending(
    clio_sandbox: ClioSandbox,
) -> None:
    control(clio_sandbox, "POST", "rate_limit", {"limit": 1, "window_seconds": 600})
    sleep = RecordingSleep()
    client = new_client(clio_sandbox, tokens=connect(clio_sandbox, "firm"), sleep=sleep)
    client.who_am_i()

    with pytest.raises(ClioRateLimited) as caught:
        client.who_am_i()

    assert 500 < caught.value.retry_after <= 601
    assert client.requests_made == 1 and sleep.waits == []


def test_given_nothing_listening_then_connection_errors_are_retried_then_ClioUnavailable() -> None:
    sandbox = ClioSandbox().start()
    url = sandbox.url
    sandbox.stop()  # the port is now closed
    sleep = RecordingSleep()
    tokens = ClioTokens("access", "refresh", datetime.now(UTC) + timedelta(days=1))
    client = ClioClient(
        url,
        CLIENT_ID,
        CLIENT_SECRET,
        REDIRECT_URI,
        tokens=tokens,
        sleep=sleep,
        max_retries=2,
        timeout=(0.5, 0.5),
    )

    with pytest.raises(ClioUnavailable):
        client.who_am_i()

    assert client.requests_made == 3 and len(sleep.waits) == 2


def test_given_api_calls_then_each_carries_the_pinned_version_and_a_timeout(
    clio_sandbox: ClioSandbox,
) -> None:
    seen: list[dict[str, Any]] = []

    class Spy(requests.Session):
        def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            seen.append({"headers": kwargs.get("headers") or {}, "timeout": kwargs.get("timeout")})
            return super().request(method, url, *args, **kwargs)

    client = new_client(clio_sandbox, tokens=connect(clio_sandbox, "firm"), session=Spy())
    client.who_am_i()

    assert seen[0]["headers"]["X-API-VERSION"] == API_VERSION
    assert seen[0]["headers"]["Authorization"].startswith("Bearer ")
    assert seen[0]["timeout"] == (3.05, 30.0)


# -- single bills and PDFs ------------------------------------------------------------------------


def test_given_another_firms_bill_when_fetched_then_none(clio_sandbox: ClioSandbox) -> None:
    foreign = make_bill(clio_sandbox, "other-firm")
    mine = make_bill(clio_sandbox, "firm", total_cents=123450)
    client = new_client(clio_sandbox, tokens=connect(clio_sandbox, "firm"))

    assert client.get_bill(foreign["id"]) is None
    fetched = client.get_bill(mine["id"])
    assert fetched is not None and fetched["total"] == Decimal("1234.5")


def _pdf_text(pdf: bytes) -> str:
    """The text of a PDF: through pypdf when installed, else from its inflated content streams."""
    try:
        import pypdf
    except ImportError:
        chunks = []
        for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
            try:
                chunks.append(zlib.decompress(stream))
            except zlib.error:
                chunks.append(stream)
        return b"".join(chunks).decode("latin-1")
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)


def test_given_a_bill_when_rendering_its_pdf_then_it_is_a_pdf_naming_the_bill_number(
    clio_sandbox: ClioSandbox,
) -> None:
    bill = make_bill(
        clio_sandbox,
        "firm",
        number="INV-77123",
        total_cents=98765,
        client={"name": "Zoë “Quoted” Ñúñez", "email": None},
    )
    client = new_client(clio_sandbox, tokens=connect(clio_sandbox, "firm"))

    pdf = client.bill_pdf(bill["id"])

    assert pdf.startswith(b"%PDF")
    text = _pdf_text(pdf)
    assert "INV-77123" in text and "987.65" in text


@pytest.mark.parametrize(
    "html",
    [
        "",
        "<html><head><script>x()</script></head><body></body></html>",
        "<table border=1><tr><td width='30%'>a</td></tr><tr><td>b</td><td>c</td><td>d</td></tr>"
        "</table>",
        "<div><p><b>unclosed <i>tags <table><tr><td>cell",
        "<h1>\u8acb\u6c42\u66f8 \u2116 42 \u2014 \u20ac100</h1>",
        "<ul><li>one<ul><li>two</li></ul></li></ul><pre>  a\n  b</pre><hr>",
        "<p>" + "A" * 3000 + "</p>",
    ],
)
def test_given_awkward_preview_html_when_rendering_then_a_pdf_still_comes_out(html: str) -> None:
    assert html_to_pdf(html, title="awkward").startswith(b"%PDF")


# -- webhooks -------------------------------------------------------------------------------------


def test_given_a_receiver_that_echoes_when_subscribing_then_the_handshake_enables_the_webhook(
    clio_sandbox: ClioSandbox, webhook_receiver: WebhookReceiver
) -> None:
    client = new_client(clio_sandbox, tokens=connect(clio_sandbox, "firm"))
    expires = datetime.now(UTC) + timedelta(days=30)

    created = client.create_bill_webhook(webhook_receiver.url, expires_at=expires)
    wait_for(lambda: clio_sandbox.state.webhooks[created["id"]].status == "enabled")
    bill = make_bill(clio_sandbox, "firm")
    delivery = wait_for(webhook_receiver.deliveries)[0]

    assert created["status"] == "pending" and created["shared_secret"]
    assert created["fields"] == BILL_FIELDS
    assert abs(datetime.fromisoformat(created["expires_at"]) - expires) < timedelta(seconds=1)
    assert verify_webhook_signature(
        created["shared_secret"], delivery.body, delivery.headers["X-Hook-Signature"]
    )
    assert delivery.json()["data"]["number"] == bill["number"]


def test_given_a_receiver_that_ignores_the_handshake_then_activate_renew_and_delete_work(
    clio_sandbox: ClioSandbox, webhook_receiver: WebhookReceiver
) -> None:
    webhook_receiver.echo_secret = False
    client = new_client(clio_sandbox, tokens=connect(clio_sandbox, "firm"))
    created = client.create_bill_webhook(
        webhook_receiver.url, events=["updated"], expires_at=datetime.now(UTC) + timedelta(days=3)
    )
    wait_for(webhook_receiver.handshakes)

    client.activate_webhook(created["id"], created["shared_secret"])
    renewed = client.renew_webhook(created["id"], datetime.now(UTC) + timedelta(days=31))

    hook = clio_sandbox.state.webhooks[created["id"]]
    assert hook.status == "enabled" and hook.events == ["updated"]
    assert datetime.fromisoformat(renewed["expires_at"]) > datetime.now(UTC) + timedelta(days=30)
    with pytest.raises(ClioBadRequest):
        client.activate_webhook(created["id"], "not-the-secret")
    with pytest.raises(ClioBadRequest):
        client.renew_webhook(created["id"], datetime.now(UTC) + timedelta(days=40))
    client.delete_webhook(created["id"])
    client.delete_webhook(created["id"])  # already gone is fine
    assert created["id"] not in clio_sandbox.state.webhooks


@pytest.mark.parametrize(
    ("secret", "body", "signature", "valid"),
    [
        ("s3cret", b'{"data":{"id":1}}', "SIGN", True),
        ("s3cret", b'{"data":{"id":1}}', "SIGN_UPPER", True),
        ("other", b'{"data":{"id":1}}', "SIGN", False),
        ("s3cret", b'{"data":{"id":2}}', "SIGN", False),
        ("s3cret", b'{"data":{"id":1}}', None, False),
        ("s3cret", b'{"data":{"id":1}}', "", False),
        ("s3cret", b'{"data":{"id":1}}', "zz\u00e9not-hex", False),
        ("", b'{"data":{"id":1}}', "SIGN", False),
    ],
)
def test_given_a_signature_when_verifying_then_only_the_hmac_of_the_raw_body_passes(
    secret: str, body: bytes, signature: str | None, valid: bool
) -> None:
    good = hmac.new(b"s3cret", b'{"data":{"id":1}}', hashlib.sha256).hexdigest()
    given = {"SIGN": good, "SIGN_UPPER": good.upper()}.get(signature or "", signature)

    assert verify_webhook_signature(secret, body, given) is valid


# -- secrets --------------------------------------------------------------------------------------


def test_given_tokens_and_a_client_then_no_secret_shows_in_reprs_or_errors(
    clio_sandbox: ClioSandbox,
) -> None:
    tokens = connect(clio_sandbox, "firm")
    client = new_client(clio_sandbox, tokens=tokens)
    control(clio_sandbox, "POST", "tokens/revoke", {"account": "firm"})

    with pytest.raises(ClioAuthError) as caught:
        client.who_am_i()

    secrets = [tokens.access_token, tokens.refresh_token, CLIENT_SECRET]
    shown = [repr(tokens), str(tokens), repr(client), str(caught.value), repr(caught.value)]
    assert not [s for s in secrets for text in shown if s in text]
    assert "expires_at" in repr(tokens)


def test_given_a_naive_datetime_then_the_client_refuses_it(clio_sandbox: ClioSandbox) -> None:
    client = new_client(clio_sandbox, tokens=connect(clio_sandbox, "firm"))

    with pytest.raises(ValueError, match="timezone-aware"):
        all_bills(client, updated_since=datetime(2026, 1, 1))
