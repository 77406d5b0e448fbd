"""Clio Manage API v4 client: OAuth tokens, paced and retried requests, bill paging, bill previews
and PDFs, and the bill webhook subscription.

This module owns every HTTP exchange with Clio and the rules that keep them polite and safe:

* Tokens: a 401 `invalid_token` is answered by one refresh and one retry; Clio Manage does not
  rotate refresh tokens, so an answer without a new one keeps the old. `on_tokens` hears of every
  new pair so the caller can store it before it is needed again.
* Rate limits (50 requests a minute per token at peak): the client paces itself by the
  `X-RateLimit-*` headers, so a well-behaved sync rarely meets a 429; a 429 is waited out by its
  `Retry-After`. 5xx answers and network failures are retried with jittered backoff. No single
  wait exceeds `max_wait_seconds`: a longer one raises instead, so the caller can checkpoint.
* Time budget: a caller with a deadline (the sync worker: the Lambda's remaining time minus its
  reserve) sets it with `limit_waits`. Then a wait that fits the time left is waited, however
  many 429s come in a row (Clio's own `Retry-After` paces them), and one that does not fit
  raises `ClioRateLimited` at once, without sleeping, so the caller hands the work over.
* Money: JSON is parsed with `parse_float=Decimal`, never float; conversion to cents is the
  domain's job.
* Secrets: tokens, the client secret and webhook secrets never appear in logs, exception messages
  or reprs, and the bearer token is only ever sent to the configured Clio host.

Its errors derive from the domain's `ClioUnreachable` / `ClioAuthorizationLost`, so services
handle them without importing this module.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from aws_lambda_powertools import Logger

from billbridge.adapters.clio_wire import REGION_HOSTS, verify_webhook_signature
from billbridge.domain.errors import ClioAuthorizationLost, ClioUnreachable

logger = Logger(child=True)

__all__ = ["REGION_HOSTS", "ClioClient", "ClioTokens", "verify_webhook_signature"]
# Pinned so that a new default minor version (enum renames, removed fields) cannot change what we
# parse without a deliberate upgrade.
API_VERSION = "4.0.9"
BILL_FIELDS = (
    "id,etag,number,state,kind,issued_at,due_at,updated_at,total,balance,currency{code},"
    "client{id,name,primary_email_address},matters{id,display_number,description},"
    # The client's state decides whether a card surcharge may apply (domain/surcharge.py).
    "client_addresses{name,primary,province,country}"
)
WEBHOOK_FIELDS = "id,etag,url,fields,shared_secret,model,status,events,expires_at"
WHO_AM_I_FIELDS = "id,name,email,account{id,name}"
PAGE_LIMIT = 200  # Clio's maximum page size
DEFAULT_TOKEN_LIFETIME_SECONDS = 30 * 24 * 3600  # Clio Manage access tokens last 30 days
DEFAULT_RETRY_AFTER_SECONDS = 1.0
# With a time budget, 429s are bounded by the budget; this only stops a Clio that answers
# `Retry-After: 0` forever.
MAX_RATE_LIMITED_IN_A_ROW = 100
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 30.0
_MESSAGE_MAX_CHARS = 300
_TRANSIENT_NETWORK_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


# -- errors -------------------------------------------------------------------------------------


class ClioError(ClioUnreachable):
    """Clio did not give a usable answer. `status` is the HTTP status, when there was one."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ClioAuthError(ClioError, ClioAuthorizationLost):
    """Clio refused our authorization (refresh failed, token revoked, 403): the firm must
    reconnect Clio."""


class ClioRateLimited(ClioError):
    """Clio's rate limit outlasted what we may wait (or our retries); try after `retry_after`."""

    transient = True

    def __init__(self, message: str, *, retry_after: float, status: int | None = 429) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class ClioUnavailable(ClioError):
    """Clio kept failing (5xx, timeouts, connection errors) through every retry."""

    transient = True


class ClioBadRequest(ClioError):
    """Clio rejected the request itself (400/422): a bug on our side, not worth retrying."""


# -- values -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClioTokens:
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: datetime  # tz-aware UTC


@dataclass(frozen=True)
class BillPage:
    bills: list[dict[str, Any]]
    # Clio's `meta.paging.next` URL (a resumable checkpoint), or None on the last page.
    next_url: str | None


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        # A naive time is ambiguous across Lambda and laptops: refuse it rather than guess.
        raise ValueError("Clio timestamps must be timezone-aware")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _error_message(response: requests.Response) -> str:
    """Clio's own words for an error answer, from either of its two error shapes."""
    try:
        body = response.json()
    except ValueError:
        return response.reason or f"HTTP {response.status_code}"
    message: Any = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            message = error.get("message") or error.get("type")
        elif isinstance(error, str):
            message = body.get("error_description") or error
        else:
            message = body.get("message")
    text = str(message) if message else (response.reason or f"HTTP {response.status_code}")
    return text[:_MESSAGE_MAX_CHARS]


def _oauth_error_code(response: requests.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, str) else None


class ClioClient:
    """One firm's connection to one Clio region (`base_url` is the region host)."""

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        *,
        tokens: ClioTokens | None = None,
        on_tokens: Callable[[ClioTokens], None] | None = None,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = (3.05, 30.0),
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        max_retries: int = 6,
        max_wait_seconds: float = 65.0,
    ) -> None:
        self._base = base_url.rstrip("/")
        origin = urlsplit(self._base)
        self._origin = (origin.scheme.lower(), origin.netloc.lower())
        self._client_id = client_id
        self._client_secret = client_secret
        self._redirect_uri = redirect_uri
        self._tokens = tokens
        self._on_tokens = on_tokens
        self._session = session or requests.Session()
        self._timeout = timeout
        self._sleep = sleep
        self._clock = clock
        self._max_retries = max_retries
        self._max_wait = max_wait_seconds
        self._random = random.Random()  # noqa: S311 - backoff jitter, not security
        # What Clio's last answer said about our rate window.
        self._rate_limit: int | None = None
        self._rate_remaining: int | None = None
        self._rate_reset_at: float | None = None
        self._seconds_left: Callable[[], float] | None = None
        self.requests_made = 0

    def __repr__(self) -> str:
        return f"ClioClient(base_url={self._base!r}, connected={self._tokens is not None})"

    @property
    def tokens(self) -> ClioTokens | None:
        return self._tokens

    def limit_waits(self, seconds_left: Callable[[], float] | None) -> None:
        """From now on, wait (for a rate limit or a retry) only as long as `seconds_left()`
        allows; None: only `max_wait_seconds` bounds a wait."""
        self._seconds_left = seconds_left

    def _allowance(self) -> float:
        """The longest wait allowed now."""
        if self._seconds_left is None:
            return self._max_wait
        return max(0.0, min(self._max_wait, self._seconds_left()))

    @property
    def rate_limit(self) -> int | None:
        return self._rate_limit

    @property
    def rate_remaining(self) -> int | None:
        """Requests left in the window as Clio's last answer said; None when not known (no
        answer yet, a new token, or a window waited out)."""
        return self._rate_remaining

    # -- OAuth ------------------------------------------------------------------------------

    def authorize_url(self, state: str) -> str:
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self._client_id,
                "redirect_uri": self._redirect_uri,
                "state": state,
            }
        )
        return f"{self._base}/oauth/authorize?{query}"

    def exchange_code(self, code: str) -> ClioTokens:
        return self._token_grant(
            {
                "grant_type": "authorization_code",
                "code": code,
                "client_id": self._client_id,
                "client_secret": self._client_secret,
                "redirect_uri": self._redirect_uri,
            },
            previous_refresh=None,
            replay_safe=False,  # a code is single-use
        )

    def refresh(self) -> ClioTokens:
        if self._tokens is None:
            raise ClioAuthError("no Clio tokens to refresh: connect Clio first")
        return self._token_grant(
            {
                "grant_type": "refresh_token",
                "refresh_token": self._tokens.refresh_token,
                "client_id": self._client_id,
                "client_secret": self._client_secret,
            },
            previous_refresh=self._tokens.refresh_token,
            # Clio Manage does not rotate refresh tokens, so a lost answer can be asked again.
            replay_safe=True,
        )

    def ensure_fresh(self, min_valid_seconds: float = 86400) -> None:
        """Refresh now when the access token would expire within `min_valid_seconds`."""
        if self._tokens is None:
            raise ClioAuthError("no Clio tokens: connect Clio first")
        if self._tokens.expires_at.timestamp() - self._clock() < min_valid_seconds:
            self.refresh()

    def _token_grant(
        self, form: dict[str, str], *, previous_refresh: str | None, replay_safe: bool
    ) -> ClioTokens:
        response = self._send(
            "POST", f"{self._base}/oauth/token", form=form, authed=False, replay_safe=replay_safe
        )
        payload = self._json(response)
        access = payload.get("access_token") if isinstance(payload, dict) else None
        if not isinstance(access, str) or not access:
            raise ClioUnavailable("Clio's token answer has no access_token", status=200)
        refresh_token = payload.get("refresh_token") or previous_refresh
        if not isinstance(refresh_token, str) or not refresh_token:
            raise ClioAuthError("Clio's token answer has no refresh_token")
        try:
            lifetime = float(payload.get("expires_in") or DEFAULT_TOKEN_LIFETIME_SECONDS)
        except (TypeError, ValueError):
            lifetime = DEFAULT_TOKEN_LIFETIME_SECONDS
        tokens = ClioTokens(
            access_token=access,
            refresh_token=refresh_token,
            expires_at=datetime.fromtimestamp(self._clock() + lifetime, UTC),
        )
        self._tokens = tokens
        # A new token starts a new rate window.
        self._rate_remaining = None
        self._rate_reset_at = None
        if self._on_tokens is not None:
            self._on_tokens(tokens)
        return tokens

    # -- API --------------------------------------------------------------------------------

    def who_am_i(self) -> dict[str, Any]:
        """The Clio user these tokens act as, and their account (firm): `id`, `name`, `email`,
        `account{id,name}` (User#who_am_i; `account` is the User's nested Account)."""
        response = self._send(
            "GET", self._api("users/who_am_i.json"), params={"fields": WHO_AM_I_FIELDS}
        )
        return self._data(response)

    def iter_bill_pages(
        self,
        *,
        updated_since: datetime | None = None,
        state: str | None = None,
        start_url: str | None = None,
    ) -> Iterator[BillPage]:
        """Every bill, in pages of 200 by ascending id, following Clio's `next` URL verbatim.

        `start_url` (a `next_url` given earlier) resumes a walk; it already carries the walk's
        filters, so `updated_since` and `state` are then ignored."""
        url: str | None
        params: dict[str, Any] | None
        if start_url:
            url, params = start_url, None
        else:
            url = self._api("bills.json")
            params = {"fields": BILL_FIELDS, "limit": PAGE_LIMIT, "order": "id(asc)"}
            if updated_since is not None:
                params["updated_since"] = _iso(updated_since)
            if state is not None:
                params["state"] = state
        while url:
            payload = self._json(self._send("GET", url, params=params))
            data = payload.get("data") if isinstance(payload, dict) else None
            if not isinstance(data, list):
                raise ClioUnavailable("Clio's bill list has no data array", status=200)
            meta = payload.get("meta") or {}
            paging = (meta.get("paging") or {}) if isinstance(meta, dict) else {}
            next_url = paging.get("next") if isinstance(paging, dict) else None
            yield BillPage(bills=data, next_url=next_url or None)
            url, params = next_url or None, None

    def get_bill(self, bill_id: int) -> dict[str, Any] | None:
        response = self._send(
            "GET",
            self._api(f"bills/{int(bill_id)}.json"),
            params={"fields": BILL_FIELDS},
            allow_404=True,
        )
        if response.status_code == 404:
            return None
        return self._data(response)

    def bill_preview_html(self, bill_id: int, *, wait_for_budget: bool = True) -> str:
        response = self._send(
            "GET",
            self._api(f"bills/{int(bill_id)}/preview.json"),
            headers={"Accept": "text/html, application/json"},
            wait_for_budget=wait_for_budget,
        )
        # Without a declared charset requests would assume Latin-1 for text/*; Clio speaks UTF-8.
        declared = "charset=" in response.headers.get("Content-Type", "").lower()
        encoding = (response.encoding if declared else None) or "utf-8"
        try:
            return response.content.decode(encoding, errors="replace")
        except LookupError:  # a charset Python does not know
            return response.content.decode("utf-8", errors="replace")

    def bill_pdf(self, bill_id: int, *, wait_for_budget: bool = True) -> bytes:
        """The bill as a PDF, rendered from Clio's preview HTML (v4 has no PDF endpoint).

        `wait_for_budget=False` (the sync's prefetch) never waits for Clio's rate window: a
        spent window or a 429 raises ClioRateLimited at once, leaving the budget to others."""
        # Imported here: the renderer is heavy and only sending needs it, not every cold start.
        from billbridge.adapters.pdf import html_to_pdf

        html = self.bill_preview_html(bill_id, wait_for_budget=wait_for_budget)
        return html_to_pdf(html, title=f"Clio bill {int(bill_id)}")

    def create_bill_webhook(
        self,
        url: str,
        *,
        events: Sequence[str] = ("created", "updated", "deleted"),
        expires_at: datetime,
    ) -> dict[str, Any]:
        """Subscribe `url` to the firm's bill changes; the answer carries `id`, `shared_secret`,
        `status` and `expires_at`."""
        chosen = [events] if isinstance(events, str) else list(events)
        body = {
            "data": {
                "url": url,
                "model": "bill",
                "events": chosen,
                "fields": BILL_FIELDS,
                "expires_at": _iso(expires_at),
            }
        }
        response = self._send(
            "POST", self._api("webhooks.json"), params={"fields": WEBHOOK_FIELDS}, body=body
        )
        return self._data(response)

    def activate_webhook(self, webhook_id: int, shared_secret: str) -> None:
        self._send(
            "PUT",
            self._api(f"webhooks/{int(webhook_id)}/activate"),
            headers={"X-Hook-Secret": shared_secret},
        )

    def renew_webhook(self, webhook_id: int, expires_at: datetime) -> dict[str, Any]:
        response = self._send(
            "PATCH",
            self._api(f"webhooks/{int(webhook_id)}.json"),
            params={"fields": WEBHOOK_FIELDS},
            body={"data": {"expires_at": _iso(expires_at)}},
        )
        return self._data(response)

    def delete_webhook(self, webhook_id: int) -> None:
        # Already gone is as good as deleted.
        self._send("DELETE", self._api(f"webhooks/{int(webhook_id)}.json"), allow_404=True)

    # -- transport --------------------------------------------------------------------------

    def _api(self, path: str) -> str:
        return f"{self._base}/api/v4/{path}"

    def _json(self, response: requests.Response) -> Any:
        try:
            return json.loads(response.content, parse_float=Decimal)
        except ValueError:
            raise ClioUnavailable(
                f"Clio answered {urlsplit(response.url).path} with something that is not JSON",
                status=response.status_code,
            ) from None

    def _data(self, response: requests.Response) -> dict[str, Any]:
        payload = self._json(response)
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, dict):
            raise ClioUnavailable("Clio's answer has no data object", status=response.status_code)
        return data

    def _check_origin(self, url: str) -> None:
        parts = urlsplit(url)
        if (parts.scheme.lower(), parts.netloc.lower()) != self._origin:
            # A next-page URL or checkpoint pointing elsewhere must not receive our bearer token.
            raise ClioError(f"refusing to call {parts.scheme}://{parts.netloc}: not the Clio host")

    def _pace(self, wait_for_budget: bool = True) -> None:
        """Wait out the rate window when Clio's last answer said it is spent."""
        if self._rate_remaining is None or self._rate_remaining > 0 or self._rate_reset_at is None:
            return
        wait = self._rate_reset_at - self._clock()
        if wait > self._allowance() or (wait > 0 and not wait_for_budget):
            raise ClioRateLimited(
                f"Clio's rate window resets in {wait:.0f} s, longer than we may wait",
                retry_after=wait,
                status=None,
            )
        if wait > 0:
            logger.info("pacing to Clio's rate limit", extra={"wait_seconds": round(wait, 2)})
            self._sleep(wait)
        self._rate_remaining = None

    def _note_rate(self, response: requests.Response) -> None:
        limit = response.headers.get("X-RateLimit-Limit")
        remaining = response.headers.get("X-RateLimit-Remaining")
        reset = response.headers.get("X-RateLimit-Reset")
        try:
            self._rate_limit = int(limit) if limit is not None else None
        except ValueError:
            self._rate_limit = None
        try:
            self._rate_remaining = int(remaining) if remaining is not None else None
        except ValueError:
            self._rate_remaining = None
        try:
            value = float(reset) if reset is not None else None
        except ValueError:
            value = None
        # The header is a Unix time; a small number can only be "seconds from now".
        if value is not None and value < 1e9:
            value = self._clock() + value
        self._rate_reset_at = value

    def _retry_after(self, response: requests.Response) -> float | None:
        # Clio's support article calls it "Retry-At"; its API docs say Retry-After.
        raw = response.headers.get("Retry-After") or response.headers.get("Retry-At")
        if not raw:
            return None
        try:
            value = float(raw)
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(raw).timestamp() - self._clock())
            except (TypeError, ValueError):
                return None
        if math.isnan(value) or math.isinf(value):
            return None
        return max(0.0, value - self._clock()) if value > 1e9 else max(0.0, value)

    def _backoff(self, failures: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (failures - 1))
        # Jitter spreads the retries of many firms' syncs that failed together.
        return min(self._max_wait, self._random.uniform(ceiling / 2, ceiling))

    def _send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        form: Mapping[str, str] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        authed: bool = True,
        allow_404: bool = False,
        replay_safe: bool | None = None,
        wait_for_budget: bool = True,
    ) -> requests.Response:
        """One logical call: paced, authenticated, retried. Answers 2xx (and 404 when allowed);
        raises a ClioError for anything else. Without `wait_for_budget` a spent rate window
        or a 429 raises ClioRateLimited instead of being waited out."""
        self._check_origin(url)
        path = urlsplit(url).path
        if replay_safe is None:
            replay_safe = method != "POST"
        refreshed = False
        failures = 0
        while True:
            request_headers = {"Accept": "application/json", **(headers or {})}
            if authed:
                if self._tokens is None:
                    raise ClioAuthError("no Clio tokens: connect Clio first")
                self._pace(wait_for_budget)
                request_headers["X-API-VERSION"] = API_VERSION
                request_headers["Authorization"] = f"Bearer {self._tokens.access_token}"
            self.requests_made += 1
            try:
                response = self._session.request(
                    method,
                    url,
                    params=params,
                    data=form,
                    json=body,
                    headers=request_headers,
                    timeout=self._timeout,
                    allow_redirects=False,
                )
            except _TRANSIENT_NETWORK_ERRORS as exc:
                # A call whose answer timed out may have taken effect: repeat only what is safe
                # to repeat (a connect timeout means it never left).
                unanswered = isinstance(exc, requests.ReadTimeout)
                if unanswered and not replay_safe:
                    raise ClioUnavailable(f"Clio did not answer {method} {path} in time") from None
                failures += 1
                self._wait_or_give_up(failures, None, f"{method} {path}: {type(exc).__name__}")
                continue
            if authed:
                self._note_rate(response)
            status = response.status_code
            if 200 <= status < 300 or (status == 404 and allow_404):
                return response
            if status == 401 and authed:
                if refreshed:
                    raise ClioAuthError(
                        "Clio refused the access token even after a refresh", status=401
                    )
                logger.info("Clio access token refused; refreshing", extra={"path": path})
                self.refresh()
                refreshed = True
                continue
            if status == 429:
                failures += 1
                wait = self._retry_after(response)
                wait = DEFAULT_RETRY_AFTER_SECONDS if wait is None else wait
                allowance = self._allowance()
                # With a time budget the budget is the bound; without one, the retry count.
                cap = MAX_RATE_LIMITED_IN_A_ROW if self._seconds_left else self._max_retries
                if wait > allowance or failures > cap or not wait_for_budget:
                    why = f"retry after {wait:.0f} s"
                    if wait > allowance:
                        why += f", longer than we may wait ({allowance:.0f} s)"
                    raise ClioRateLimited(
                        f"Clio rate-limited {method} {path} ({why})", retry_after=wait
                    )
                logger.info("Clio rate limit hit", extra={"path": path, "wait_seconds": wait})
                self._sleep(wait)
                # The wait covered the window: the stale "remaining 0" must not wait again.
                self._rate_remaining = None
                continue
            if status >= 500:
                failures += 1
                self._wait_or_give_up(
                    failures,
                    self._retry_after(response),
                    f"{method} {path}: HTTP {status}",
                    status=status,
                )
                continue
            raise self._error_for(method, path, response, auth_endpoint=not authed)

    def _wait_or_give_up(
        self, failures: int, retry_after: float | None, what: str, *, status: int | None = None
    ) -> None:
        if failures > self._max_retries:
            raise ClioUnavailable(f"Clio kept failing: {what}", status=status)
        wait = self._backoff(failures, retry_after)
        if wait > self._allowance():
            raise ClioUnavailable(f"Clio asked us to wait {wait:.0f} s: {what}", status=status)
        logger.warning(
            "Clio call failed; retrying",
            extra={"failure": what, "attempt": failures, "wait_seconds": round(wait, 2)},
        )
        self._sleep(wait)

    def _error_for(
        self, method: str, path: str, response: requests.Response, *, auth_endpoint: bool
    ) -> ClioError:
        status = response.status_code
        message = _error_message(response)
        where = f"{method} {path}"
        if auth_endpoint and status in (400, 401):
            code = _oauth_error_code(response) or "error"
            return ClioAuthError(f"Clio refused the grant ({code}): {message}", status=status)
        if status == 403:
            return ClioAuthError(f"Clio forbade {where}: {message}", status=status)
        if status in (400, 422):
            return ClioBadRequest(f"Clio rejected {where}: {message}", status=status)
        if 300 <= status < 400:
            return ClioError(f"Clio redirected {where} (HTTP {status})", status=status)
        if status == 410:
            return ClioError(f"Clio no longer serves {where}: {message}", status=status)
        return ClioError(f"Clio answered {where} with HTTP {status}: {message}", status=status)
