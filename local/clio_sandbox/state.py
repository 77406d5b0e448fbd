"""The Clio sandbox's in-memory world: accounts, their contacts, matters and bills, OAuth grants,
per-token rate windows, injected faults, request statistics and bill webhooks.

Everything here is guarded by one re-entrant lock, so the HTTP handler threads, the webhook
delivery threads and tests poking `sandbox.state` directly all see consistent data. Money is held
as integer cents and only turned into Clio's major-unit JSON numbers when a record is rendered.
Webhook deliveries are computed under the lock but handed to the dispatcher after it is released,
so a slow receiver never stalls the API.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from local.clio_sandbox.fields import (
    BILL,
    USER_SCHEMA,
    WEBHOOK,
    FieldsError,
    FieldSpec,
    nested_names,
    parse_fields,
)

BILL_STATES = ("draft", "awaiting_approval", "awaiting_payment", "paid", "void", "deleted")
# Our product's words for the two bill kinds, and Clio's.
KIND_TO_CLIO = {"invoice": "revenue_kind", "trust_request": "trust_kind"}
# The list filter `type` uses yet other words (revenue|trust) than the bill's `kind`.
TYPE_FILTER_TO_KIND = {"revenue": "revenue_kind", "trust": "trust_kind"}
WEBHOOK_EVENTS = ("created", "updated", "deleted")
WEBHOOK_MODELS = {
    "matter": 1,
    "activity": 2,
    "bill": 3,
    "calendar_entry": 4,
    "communication": 5,
    "contact": 6,
    "task": 7,
    "document": 8,
    "folder": 9,
    "clio_payments_payment": 10,
}
WEBHOOK_DEFAULT_LIFETIME = timedelta(days=3)
WEBHOOK_MAX_LIFETIME = timedelta(days=31)
WEBHOOK_FIELDS_MAX_CHARS = 1000
AUTH_CODE_TTL_SECONDS = 600.0
# Which states Clio would let a bill move to from each state (sandbox guess; Clio only publishes
# the `available_state_transitions` field, not the rules).
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "draft": ("awaiting_approval", "awaiting_payment", "deleted"),
    "awaiting_approval": ("draft", "awaiting_payment", "deleted"),
    "awaiting_payment": ("draft", "void"),
    "paid": (),
    "void": (),
    "deleted": (),
}
CURRENCY = {"id": 1, "code": "USD", "sign": "$"}
_STATE_MESSAGE = f"state must be one of {', '.join(BILL_STATES)}"
_COMPANY_WORDS = frozenset({"llc", "ltd", "inc", "co", "corp", "llp", "group", "trust", "partners"})


class ApiError(Exception):
    """An API answer in Clio's error envelope: `{"error": {"type", "message"}}`."""

    def __init__(self, status: int, type_: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.field = field

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.field is not None:
            error["field"] = self.field
        return {"error": error}


class OAuthError(Exception):
    """An OAuth answer in the flat shape `{"error", "error_description"}`."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description

    def body(self) -> dict[str, Any]:
        return {"error": self.error, "error_description": self.description}


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def major(cents: int) -> float:
    # cents / 100 is the double nearest the exact decimal, and its repr is the shortest
    # string that round-trips, so 123450 renders as 1234.5 and parses back exactly.
    return cents / 100


def _etag(*parts: object) -> str:
    digest = hashlib.sha1(":".join(str(p) for p in parts).encode(), usedforsecurity=False)
    return f'"{digest.hexdigest()}"'


@dataclass
class Account:
    name: str
    id: int
    user_id: int
    user_name: str
    firm_name: str
    next_number: int = 1


@dataclass
class Contact:
    id: int
    account: str
    name: str
    email: str | None
    type: str
    first_name: str | None
    last_name: str | None
    created_at: datetime
    etag: str
    # The client's address as Clio keeps it (street, city, province, postal_code, country).
    address: dict[str, str] | None = None


@dataclass
class Matter:
    id: int
    account: str
    display_number: str
    number: int
    description: str
    status: str
    client_id: int
    created_at: datetime
    etag: str


@dataclass
class Bill:
    id: int
    account: str
    number: str
    kind: str  # Clio's kind: revenue_kind | trust_kind
    state: str
    total_cents: int
    balance_cents: int
    paid_cents: int
    client_id: int
    matter_id: int | None
    issued_at: date | None
    due_at: date | None
    created_at: datetime
    updated_at: datetime
    etag: str
    subject: str | None = None
    memo: str | None = None
    paid_at: datetime | None = None
    last_sent_at: datetime | None = None
    pending_cents: int = 0
    version: int = 1


@dataclass
class Token:
    access_token: str
    refresh_token: str
    account: str
    expires_at: float
    revoked: bool = False


@dataclass
class AuthCode:
    code: str
    account: str
    client_id: str
    redirect_uri: str
    expires_at: float
    used: bool = False


@dataclass
class Webhook:
    id: int
    account: str
    url: str
    model: str
    events: list[str]
    fields: str
    spec: FieldSpec
    shared_secret: str
    status: str
    expires_at: datetime
    created_at: datetime
    updated_at: datetime
    etag: str
    # What each bill looked like (watched fields only) when last delivered: Clio fires
    # `updated` only when a watched field changed, except for a record never sent before.
    last_sent: dict[int, dict[str, Any]] = field(default_factory=dict)


@dataclass
class Fault:
    account: str | None
    status: int
    remaining: int
    retry_after: int
    # Only requests whose path contains this (e.g. "preview"); None: any API request.
    path: str | None = None


@dataclass
class RateWindow:
    start: float
    count: int = 0


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset: int  # unix seconds of the window's end, rounded up
    retry_after: int


@dataclass(frozen=True)
class OutgoingHook:
    """One HTTP POST the dispatcher owes a webhook receiver."""

    kind: str  # "handshake" | "delivery"
    webhook_id: int
    account: str
    url: str
    shared_secret: str
    body: bytes
    event: str | None = None
    bill_id: int | None = None


@dataclass(frozen=True)
class BillFilter:
    """The list filters of GET /bills.json, parsed; hashable so record counts can be cached."""

    state: str | None = None
    kind: str | None = None
    updated_since: datetime | None = None
    created_since: datetime | None = None
    client_id: int | None = None
    matter_id: int | None = None
    matter_is_null: bool = False
    ids: frozenset[int] | None = None
    query: str | None = None
    issued_after: date | None = None
    issued_before: date | None = None
    due_after: date | None = None
    due_before: date | None = None
    overdue_on: date | None = None
    include_deleted: bool = False

    def matches(self, bill: Bill) -> bool:
        if self.state is not None:
            if bill.state != self.state:
                return False
        elif bill.state == "deleted" and not self.include_deleted:
            return False
        if self.kind is not None and bill.kind != self.kind:
            return False
        if self.updated_since is not None and not bill.updated_at > self.updated_since:
            return False
        if self.created_since is not None and not bill.created_at > self.created_since:
            return False
        if self.client_id is not None and bill.client_id != self.client_id:
            return False
        if self.matter_is_null and bill.matter_id is not None:
            return False
        if self.matter_id is not None and bill.matter_id != self.matter_id:
            return False
        if self.ids is not None and bill.id not in self.ids:
            return False
        if self.query is not None and self.query.lower() not in bill.number.lower():
            return False
        if self.issued_after is not None and (
            bill.issued_at is None or bill.issued_at < self.issued_after
        ):
            return False
        if self.issued_before is not None and (
            bill.issued_at is None or bill.issued_at > self.issued_before
        ):
            return False
        if self.due_after is not None and (bill.due_at is None or bill.due_at < self.due_after):
            return False
        if self.due_before is not None and (bill.due_at is None or bill.due_at > self.due_before):
            return False
        return self.overdue_on is None or (
            bill.state == "awaiting_payment"
            and bill.due_at is not None
            and bill.due_at < self.overdue_on
        )


class SandboxState:
    """All of the sandbox's data and the rules that change it."""

    def __init__(
        self,
        *,
        rate_limit: int = 50,
        rate_window_seconds: float = 60.0,
        token_ttl_seconds: int = 2592000,
        list_includes_deleted: bool = False,
        client_id: str = "sandbox-client-id",
        client_secret: str = "sandbox-client-secret",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.lock = threading.RLock()
        self.rate_limit = rate_limit
        self.rate_window_seconds = rate_window_seconds
        self.token_ttl_seconds = token_ttl_seconds
        self.list_includes_deleted = list_includes_deleted
        self.client_id = client_id
        self.client_secret = client_secret
        self.clock = clock
        # Set by the server: receives the webhook POSTs owed after a change.
        self.emit: Callable[[list[OutgoingHook]], None] | None = None

        self.accounts: dict[str, Account] = {}
        self.contacts: dict[int, Contact] = {}
        self.matters: dict[int, Matter] = {}
        self.bills: dict[int, Bill] = {}
        self.webhooks: dict[int, Webhook] = {}
        self.deliveries: list[dict[str, Any]] = []
        self.faults: list[Fault] = []
        self._bill_ids: dict[str, list[int]] = {}
        self._contact_by_name: dict[tuple[str, str], int] = {}
        self._matter_by_number: dict[tuple[str, str], int] = {}
        self._codes: dict[str, AuthCode] = {}
        self._tokens: dict[str, Token] = {}
        self._refresh: dict[str, str] = {}  # refresh token -> account
        self._windows: dict[str, RateWindow] = {}
        self._stats: dict[str, dict[str, int]] = {}
        self._stats_total: dict[str, int] = {}
        self._stats_limited: dict[str, int] = {}
        self._counts_cache: dict[tuple[str, BillFilter], tuple[int, int]] = {}
        self._version = 0
        self._last_stamp = datetime.fromtimestamp(0, UTC)
        # Ids are unique across the whole sandbox, as Clio's are across its region.
        self._next_id = {
            "account": 1,
            "user": 101,
            "contact": 5001,
            "matter": 7001,
            "bill": 10001,
            "webhook": 301,
        }

    # -- basics -------------------------------------------------------------------------------

    def _new_id(self, kind: str) -> int:
        value = self._next_id[kind]
        self._next_id[kind] = value + 1
        return value

    def stamp(self) -> datetime:
        """Now, but strictly later than any stamp given before, even within one microsecond."""
        with self.lock:
            now = datetime.fromtimestamp(self.clock(), UTC)
            if now <= self._last_stamp:
                now = self._last_stamp + timedelta(microseconds=1)
            self._last_stamp = now
            return now

    def today(self) -> date:
        return datetime.fromtimestamp(self.clock(), UTC).date()

    def account(self, name: str) -> Account:
        """The account named `name`, created on first use (as the authorize page does)."""
        with self.lock:
            found = self.accounts.get(name)
            if found is None:
                title = name.replace("-", " ").replace("_", " ").title()
                found = Account(
                    name=name,
                    id=self._new_id("account"),
                    user_id=self._new_id("user"),
                    user_name=f"{title} Admin",
                    firm_name=f"{title} Law LLP",
                )
                self.accounts[name] = found
                self._bill_ids[name] = []
            return found

    # -- OAuth --------------------------------------------------------------------------------

    def issue_code(self, account: str, client_id: str, redirect_uri: str) -> str:
        with self.lock:
            self.account(account)
            code = secrets.token_urlsafe(18)
            self._codes[code] = AuthCode(
                code, account, client_id, redirect_uri, self.clock() + AUTH_CODE_TTL_SECONDS
            )
            return code

    def _check_client(self, client_id: str | None, client_secret: str | None) -> None:
        if client_id != self.client_id or client_secret != self.client_secret:
            raise OAuthError(401, "invalid_client", "Client authentication failed")

    def exchange_code(
        self,
        code: str | None,
        client_id: str | None,
        client_secret: str | None,
        redirect_uri: str | None,
    ) -> dict[str, Any]:
        with self.lock:
            self._check_client(client_id, client_secret)
            grant = self._codes.get(code or "")
            if grant is None or grant.used or grant.expires_at <= self.clock():
                raise OAuthError(
                    400, "invalid_grant", "The authorization code is invalid, expired or used"
                )
            if grant.redirect_uri != redirect_uri or grant.client_id != client_id:
                raise OAuthError(
                    400, "invalid_grant", "client_id or redirect_uri differ from the authorization"
                )
            grant.used = True
            refresh_token = secrets.token_urlsafe(32)
            self._refresh[refresh_token] = grant.account
            return self._issue_access(grant.account, refresh_token)

    def refresh(
        self, refresh_token: str | None, client_id: str | None, client_secret: str | None
    ) -> dict[str, Any]:
        with self.lock:
            self._check_client(client_id, client_secret)
            account = self._refresh.get(refresh_token or "")
            if account is None or refresh_token is None:
                raise OAuthError(400, "invalid_grant", "The refresh token is invalid or revoked")
            # Clio Manage does not rotate refresh tokens: the same one stays good.
            return self._issue_access(account, refresh_token)

    def _issue_access(self, account: str, refresh_token: str) -> dict[str, Any]:
        access = secrets.token_urlsafe(32)
        self._tokens[access] = Token(
            access, refresh_token, account, self.clock() + self.token_ttl_seconds
        )
        return {
            "token_type": "bearer",
            "access_token": access,
            "expires_in": self.token_ttl_seconds,
            "refresh_token": refresh_token,
        }

    def authenticate(self, authorization: str | None) -> Token:
        if not authorization or not authorization.lower().startswith("bearer "):
            raise OAuthError(401, "invalid_token", "The access token is missing")
        value = authorization[7:].strip()
        with self.lock:
            token = self._tokens.get(value)
            if token is None:
                raise OAuthError(401, "invalid_token", "The access token is invalid")
            if token.revoked:
                raise OAuthError(401, "invalid_token", "The access token was revoked")
            if token.expires_at <= self.clock():
                raise OAuthError(401, "invalid_token", "The access token expired")
            return token

    def access_token_of(self, account: str) -> str | None:
        """The account's newest access token still good (what its connected app now uses)."""
        with self.lock:
            now = self.clock()
            good = [
                t.access_token
                for t in self._tokens.values()
                if t.account == account and not t.revoked and t.expires_at > now
            ]
            return good[-1] if good else None

    def token_account(self, authorization: str | None) -> str | None:
        """The account an access token belongs to, valid or not (for request statistics)."""
        if not authorization or not authorization.lower().startswith("bearer "):
            return None
        with self.lock:
            token = self._tokens.get(authorization[7:].strip())
            return token.account if token else None

    def expire_tokens(self, account: str) -> int:
        with self.lock:
            now = self.clock()
            hit = [t for t in self._tokens.values() if t.account == account and t.expires_at > now]
            for token in hit:
                token.expires_at = now
            return len(hit)

    def revoke_tokens(self, account: str) -> int:
        """Revoke every grant of the account (what a user disconnecting the app does)."""
        with self.lock:
            hit = [t for t in self._tokens.values() if t.account == account and not t.revoked]
            for token in hit:
                token.revoked = True
            for refresh_token in [r for r, a in self._refresh.items() if a == account]:
                del self._refresh[refresh_token]
            return len(hit)

    # -- rate limiting, faults, statistics ----------------------------------------------------

    def set_rate_limit(self, limit: int, window_seconds: float) -> None:
        with self.lock:
            self.rate_limit = limit
            self.rate_window_seconds = window_seconds
            self._windows.clear()

    def take_rate(self, access_token: str) -> RateDecision:
        """Count one request against the token's fixed window."""
        with self.lock:
            now = self.clock()
            window = self._windows.get(access_token)
            if window is None or now >= window.start + self.rate_window_seconds:
                window = RateWindow(start=now)
                self._windows[access_token] = window
            end = window.start + self.rate_window_seconds
            reset = int(-(-end // 1))  # ceil: a client waiting until `reset` is past the end
            if window.count >= self.rate_limit:
                retry_after = max(1, int(-(-(end - now) // 1)))
                return RateDecision(False, self.rate_limit, 0, reset, retry_after)
            window.count += 1
            return RateDecision(True, self.rate_limit, self.rate_limit - window.count, reset, 0)

    def peek_rate(self, access_token: str) -> RateDecision:
        """The token's window as it stands, without counting a request."""
        with self.lock:
            now = self.clock()
            window = self._windows.get(access_token)
            if window is None or now >= window.start + self.rate_window_seconds:
                reset = int(-(-(now + self.rate_window_seconds) // 1))
                return RateDecision(True, self.rate_limit, self.rate_limit, reset, 0)
            end = window.start + self.rate_window_seconds
            remaining = max(0, self.rate_limit - window.count)
            return RateDecision(remaining > 0, self.rate_limit, remaining, int(-(-end // 1)), 0)

    def add_fault(
        self,
        account: str | None,
        status: int,
        count: int,
        retry_after: int,
        path: str | None = None,
    ) -> None:
        with self.lock:
            self.faults.append(Fault(account, status, count, retry_after, path))

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def take_fault(self, account: str, path: str = "") -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.path is not None and fault.path not in path:
                    continue
                if fault.remaining > 0 and fault.account in (None, account):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self.faults.remove(fault)
                    return fault
            return None

    def count_request(self, account: str | None, path: str) -> None:
        with self.lock:
            for key in ("*", account) if account else ("*",):
                by_path = self._stats.setdefault(key, {})
                by_path[path] = by_path.get(path, 0) + 1
                self._stats_total[key] = self._stats_total.get(key, 0) + 1

    def count_rate_limited(self, account: str) -> None:
        """A request answered 429 by the rate limit (not an injected fault)."""
        with self.lock:
            for key in ("*", account):
                self._stats_limited[key] = self._stats_limited.get(key, 0) + 1

    def stats(self, account: str | None) -> dict[str, Any]:
        key = account or "*"
        with self.lock:
            return {
                "account": account,
                "api_requests": self._stats_total.get(key, 0),
                "rate_limited": self._stats_limited.get(key, 0),
                "by_path": dict(sorted(self._stats.get(key, {}).items())),
            }

    def reset_stats(self) -> None:
        with self.lock:
            self._stats.clear()
            self._stats_total.clear()
            self._stats_limited.clear()

    # -- contacts and matters -----------------------------------------------------------------

    def contact(
        self, account: str, name: str, email: str | None, address: dict[str, str] | None = None
    ) -> Contact:
        """The account's contact of that name, made on first use; a new email (or address)
        replaces the old."""
        with self.lock:
            self.account(account)
            found_id = self._contact_by_name.get((account, name))
            if found_id is not None:
                found = self.contacts[found_id]
                if email is not None and email != found.email:
                    found.email = email
                    found.etag = _etag("contact", found.id, email)
                if address is not None and address != found.address:
                    found.address = dict(address)
                    found.etag = _etag("contact", found.id, f"{email}|{sorted(address.items())}")
                return found
            words = name.split()
            company = len(words) != 2 or any(
                w.rstrip(".,").lower() in _COMPANY_WORDS for w in words
            )
            new_id = self._new_id("contact")
            found = Contact(
                id=new_id,
                account=account,
                name=name,
                email=email,
                type="Company" if company else "Person",
                first_name=None if company else words[0],
                last_name=None if company else words[1],
                created_at=self.stamp(),
                etag=_etag("contact", new_id, email),
                address=dict(address) if address else None,
            )
            self.contacts[new_id] = found
            self._contact_by_name[(account, name)] = new_id
            return found

    def matter(self, account: str, display_number: str, description: str, client_id: int) -> Matter:
        with self.lock:
            found_id = self._matter_by_number.get((account, display_number))
            if found_id is not None:
                return self.matters[found_id]
            digits = "".join(ch for ch in display_number.split("-")[0] if ch.isdigit())
            new_id = self._new_id("matter")
            found = Matter(
                id=new_id,
                account=account,
                display_number=display_number,
                number=int(digits) if digits else new_id,
                description=description,
                status="Open",
                client_id=client_id,
                created_at=self.stamp(),
                etag=_etag("matter", new_id),
            )
            self.matters[new_id] = found
            self._matter_by_number[(account, display_number)] = new_id
            return found

    # -- bills --------------------------------------------------------------------------------

    def create_bill(
        self,
        *,
        account: str,
        kind: str,
        total_cents: int,
        state: str,
        client_name: str,
        client_email: str | None,
        client_address: dict[str, str] | None = None,
        matter_display_number: str | None = None,
        matter_description: str | None = None,
        balance_cents: int | None = None,
        issued_at: date | None = None,
        due_at: date | None = None,
        number: str | None = None,
        subject: str | None = None,
        last_sent_at: datetime | None = None,
        notify: bool = True,
    ) -> Bill:
        """Create a bill (`kind` in our words: invoice | trust_request) and fire `created`."""
        if kind not in KIND_TO_CLIO:
            raise ApiError(400, "BadRequest", "kind must be invoice or trust_request", "kind")
        if state not in BILL_STATES:
            raise ApiError(400, "BadRequest", _STATE_MESSAGE, "state")
        if total_cents < 0:
            raise ApiError(400, "BadRequest", "total_cents must not be negative", "total_cents")
        with self.lock:
            acct = self.account(account)
            client = self.contact(account, client_name, client_email, client_address)
            matter = (
                self.matter(account, matter_display_number, matter_description or "", client.id)
                if matter_display_number
                else None
            )
            balance = (
                _default_balance(state, total_cents) if balance_cents is None else balance_cents
            )
            if not 0 <= balance <= total_cents:
                raise ApiError(
                    400,
                    "BadRequest",
                    "balance_cents must be between 0 and total_cents",
                    "balance_cents",
                )
            if number is None:
                prefix = "TR" if kind == "trust_request" else "INV"
                number = f"{prefix}-{acct.next_number:05d}"
                acct.next_number += 1
            now = self.stamp()
            issued = issued_at or (None if state == "draft" else now.date())
            bill_id = self._new_id("bill")
            paid = _paid(state, total_cents, balance)
            bill = Bill(
                id=bill_id,
                account=account,
                number=number,
                kind=KIND_TO_CLIO[kind],
                state=state,
                total_cents=total_cents,
                balance_cents=balance,
                paid_cents=paid,
                client_id=client.id,
                matter_id=matter.id if matter else None,
                issued_at=issued,
                due_at=due_at or (issued + timedelta(days=30) if issued else None),
                created_at=now,
                updated_at=now,
                etag=_etag("bill", bill_id, 1, now.timestamp()),
                subject=subject,
                paid_at=now if paid > 0 else None,
                last_sent_at=last_sent_at,
            )
            self.bills[bill_id] = bill
            self._bill_ids[account].append(bill_id)  # ids only grow: the list stays sorted
            self._version += 1
            pending = self._hooks_for(bill, "created") if notify else []
        self._emit(pending)
        return bill

    def update_bill(
        self,
        bill_id: int,
        *,
        state: str | None = None,
        balance_cents: int | None = None,
        changes: dict[str, Any] | None = None,
        notify: bool = True,
    ) -> Bill:
        """Change a bill as Clio would, then fire `updated` (`deleted` when it becomes deleted)."""
        with self.lock:
            bill = self.bills.get(bill_id)
            if bill is None:
                raise ApiError(404, "NotFound", f"no bill with id {bill_id}")
            if state is not None and state not in BILL_STATES:
                raise ApiError(400, "BadRequest", _STATE_MESSAGE, "state")
            now = self.stamp()
            if balance_cents is not None:
                if not 0 <= balance_cents <= bill.total_cents:
                    raise ApiError(
                        400,
                        "BadRequest",
                        "balance_cents must be between 0 and the bill's total",
                        "balance_cents",
                    )
                before = bill.paid_cents
                bill.balance_cents = balance_cents
                bill.paid_cents = bill.total_cents - balance_cents
                if bill.paid_cents > before:
                    bill.paid_at = now
                # Clio moves an unpaid bill to Paid by itself once its balance reaches zero.
                if state is None and balance_cents == 0 and bill.state == "awaiting_payment":
                    state = "paid"
            was_deleted = bill.state == "deleted"
            if state is not None and state != bill.state:
                if state == "paid" and balance_cents is None:
                    bill.balance_cents = 0
                    bill.paid_cents = bill.total_cents
                    bill.paid_at = now
                elif state in ("draft", "awaiting_approval") and balance_cents is None:
                    bill.balance_cents, bill.paid_cents = bill.total_cents, 0
                elif state == "void" and balance_cents is None:
                    # A void bill is no longer owed.
                    bill.balance_cents = 0
                bill.state = state
            for key, value in (changes or {}).items():
                setattr(bill, key, value)
            bill.version += 1
            bill.updated_at = now
            bill.etag = _etag("bill", bill.id, bill.version, now.timestamp())
            self._version += 1
            event = "deleted" if bill.state == "deleted" and not was_deleted else "updated"
            pending = self._hooks_for(bill, event) if notify else []
        self._emit(pending)
        return bill

    def delete_bill_as_clio(self, bill: Bill) -> Bill:
        """DELETE /bills/{id}: drafts and pending approvals are deleted, unpaid bills voided."""
        with self.lock:
            if bill.paid_cents > 0:
                raise ApiError(422, "UnprocessableEntity", "a bill with payments cannot be deleted")
            if bill.state in ("draft", "awaiting_approval"):
                return self.update_bill(bill.id, state="deleted")
            if bill.state == "awaiting_payment":
                return self.update_bill(bill.id, state="void")
            raise ApiError(
                422, "UnprocessableEntity", f"a bill in state {bill.state} cannot be deleted"
            )

    def bill_of(self, account: str, bill_id: int) -> Bill:
        with self.lock:
            bill = self.bills.get(bill_id)
            if bill is None or bill.account != account:
                # Another account's bill is indistinguishable from a missing one.
                raise ApiError(404, "NotFound", f"The requested Bill (id {bill_id}) was not found")
            return bill

    def list_bills(
        self, account: str, flt: BillFilter, after_id: int, limit: int
    ) -> tuple[list[Bill], bool, int]:
        """Up to `limit` matching bills with ids above `after_id`, whether more follow, and how
        many match in all."""
        with self.lock:
            ids = self._bill_ids.get(account, [])
            start = bisect.bisect_right(ids, after_id)
            page: list[Bill] = []
            more = False
            for bill_id in ids[start:]:
                bill = self.bills[bill_id]
                if flt.matches(bill):
                    if len(page) == limit:
                        more = True
                        break
                    page.append(bill)
            key = (account, flt)
            cached = self._counts_cache.get(key)
            if cached is not None and cached[0] == self._version:
                records = cached[1]
            else:
                records = sum(1 for i in ids if flt.matches(self.bills[i]))
                if len(self._counts_cache) > 256:
                    self._counts_cache.clear()
                self._counts_cache[key] = (self._version, records)
            return page, more, records

    def render_bill(self, bill: Bill, spec: FieldSpec) -> dict[str, Any]:
        with self.lock:
            out: dict[str, Any] = {}
            for name, inner in spec:
                if name == "client":
                    out[name] = self._render_contact(self.contacts[bill.client_id], inner)
                elif name == "client_addresses":
                    out[name] = self._render_addresses(self.contacts[bill.client_id], inner)
                elif name == "matters":
                    out[name] = (
                        [self._render_matter(self.matters[bill.matter_id], inner)]
                        if bill.matter_id is not None
                        else []
                    )
                elif name == "currency":
                    names = nested_names(inner, BILL.nested[name])
                    out[name] = {k: _currency_value(k) for k in names}
                elif name == "user":
                    acct = self.accounts[bill.account]
                    out[name] = {
                        k: _user_value(acct, k) for k in nested_names(inner, BILL.nested[name])
                    }
                else:
                    out[name] = _bill_scalar(bill, name)
            return out

    def _render_contact(self, contact: Contact, inner: tuple[str, ...] | None) -> dict[str, Any]:
        values = {
            "id": contact.id,
            "etag": contact.etag,
            "name": contact.name,
            "first_name": contact.first_name,
            "last_name": contact.last_name,
            "type": contact.type,
            "primary_email_address": contact.email,
            "initials": "".join(w[0] for w in contact.name.split()[:2]).upper(),
            "is_client": True,
            "created_at": iso(contact.created_at),
            "updated_at": iso(contact.created_at),
        }
        return {k: values[k] for k in nested_names(inner, BILL.nested["client"])}

    def _render_addresses(
        self, contact: Contact, inner: tuple[str, ...] | None
    ) -> list[dict[str, Any]]:
        """Clio's Address objects of the bill's client (`province` is the state)."""
        if not contact.address:
            return []
        address = contact.address
        values = {
            "id": contact.id,
            "etag": contact.etag,
            "name": "Billing",
            "primary": True,
            "street": address.get("street"),
            "city": address.get("city"),
            "province": address.get("state"),
            "postal_code": address.get("postal_code"),
            "country": address.get("country"),
        }
        return [{k: values[k] for k in nested_names(inner, BILL.nested["client_addresses"])}]

    def _render_matter(self, matter: Matter, inner: tuple[str, ...] | None) -> dict[str, Any]:
        values = {
            "id": matter.id,
            "etag": matter.etag,
            "display_number": matter.display_number,
            "number": matter.number,
            "description": matter.description,
            "status": matter.status,
            "client_id": matter.client_id,
            "created_at": iso(matter.created_at),
            "updated_at": iso(matter.created_at),
        }
        return {k: values[k] for k in nested_names(inner, BILL.nested["matters"])}

    def who_am_i(self, account: str, raw_fields: str | None) -> dict[str, Any]:
        try:
            spec = parse_fields(raw_fields, USER_SCHEMA)
        except FieldsError as exc:
            raise ApiError(400, "BadRequest", str(exc), "fields") from None
        acct = self.account(account)
        out: dict[str, Any] = {}
        for name, inner in spec:
            if name == "account":
                names = nested_names(inner, USER_SCHEMA.nested["account"])
                out[name] = {k: _account_value(acct, k) for k in names}
            else:
                out[name] = _user_value(acct, name)
        return out

    # -- webhooks -----------------------------------------------------------------------------

    def create_webhook(self, account: str, data: Any, *, local_http_ok: bool = True) -> Webhook:
        if not isinstance(data, dict):
            raise ApiError(400, "BadRequest", 'the body must be {"data": {...}}', "data")
        url = _required_str(data, "url")
        model_raw = data.get("model")
        model = _webhook_model(model_raw)
        fields = _required_str(data, "fields")
        events = _webhook_events(data.get("events"))
        spec = self._webhook_spec(model, fields)
        _check_webhook_url(url, local_http_ok)
        with self.lock:
            now = self.stamp()
            expires_at = _webhook_expiry(data.get("expires_at"), now)
            webhook_id = self._new_id("webhook")
            hook = Webhook(
                id=webhook_id,
                account=account,
                url=url,
                model=model,
                events=events,
                fields=fields,
                spec=spec,
                shared_secret=secrets.token_hex(20),
                status="pending",
                expires_at=expires_at,
                created_at=now,
                updated_at=now,
                etag=_etag("webhook", webhook_id, now.timestamp()),
            )
            self.webhooks[webhook_id] = hook
            pending = [self._handshake(hook)]
        self._emit(pending)
        return hook

    def _webhook_spec(self, model: str, fields: str) -> FieldSpec:
        if len(fields) > WEBHOOK_FIELDS_MAX_CHARS:
            raise ApiError(
                422,
                "UnprocessableEntity",
                f"fields must be at most {WEBHOOK_FIELDS_MAX_CHARS} characters",
                "fields",
            )
        if model != "bill":
            # The sandbox models bills only: other models are accepted and never fire.
            return []
        try:
            return parse_fields(fields, BILL)
        except FieldsError as exc:
            raise ApiError(400, "BadRequest", str(exc), "fields") from None

    def _handshake(self, hook: Webhook) -> OutgoingHook:
        body = f'{{"data":{{"id":{hook.id}}}}}'.encode()
        return OutgoingHook("handshake", hook.id, hook.account, hook.url, hook.shared_secret, body)

    def webhook_of(self, account: str, webhook_id: int) -> Webhook:
        with self.lock:
            hook = self.webhooks.get(webhook_id)
            if hook is None or hook.account != account:
                raise ApiError(
                    404, "NotFound", f"The requested Webhook (id {webhook_id}) was not found"
                )
            return hook

    def webhooks_of(self, account: str) -> list[Webhook]:
        with self.lock:
            return [h for h in self.webhooks.values() if h.account == account]

    def update_webhook(
        self, account: str, webhook_id: int, data: Any, *, local_http_ok: bool = True
    ) -> Webhook:
        if not isinstance(data, dict):
            raise ApiError(400, "BadRequest", 'the body must be {"data": {...}}', "data")
        pending: list[OutgoingHook] = []
        with self.lock:
            hook = self.webhook_of(account, webhook_id)
            now = self.stamp()
            if "expires_at" in data:
                hook.expires_at = _webhook_expiry(data["expires_at"], now, required=True)
            if "events" in data:
                hook.events = _webhook_events(data["events"])
            if "fields" in data:
                fields = _required_str(data, "fields")
                hook.spec = self._webhook_spec(hook.model, fields)
                hook.fields = fields
            if "url" in data:
                url = _required_str(data, "url")
                _check_webhook_url(url, local_http_ok)
                if url != hook.url:
                    # A new URL has to prove itself again with a handshake.
                    hook.url = url
                    hook.status = "pending"
                    pending.append(self._handshake(hook))
            hook.updated_at = now
            hook.etag = _etag("webhook", hook.id, now.timestamp())
        self._emit(pending)
        return hook

    def delete_webhook(self, account: str, webhook_id: int) -> None:
        with self.lock:
            self.webhook_of(account, webhook_id)
            del self.webhooks[webhook_id]

    def activate_webhook(self, account: str, webhook_id: int, secret: str | None) -> Webhook:
        with self.lock:
            hook = self.webhook_of(account, webhook_id)
            if not secret or not secrets.compare_digest(secret, hook.shared_secret):
                raise ApiError(
                    422,
                    "UnprocessableEntity",
                    "X-Hook-Secret does not match the webhook's secret",
                    "X-Hook-Secret",
                )
            self.set_webhook_status(webhook_id, "enabled")
            return hook

    def set_webhook_status(self, webhook_id: int, status: str) -> None:
        with self.lock:
            hook = self.webhooks.get(webhook_id)
            if hook is not None and hook.status != status:
                hook.status = status
                hook.updated_at = self.stamp()
                hook.etag = _etag("webhook", hook.id, hook.updated_at.timestamp())

    def render_webhook(self, hook: Webhook, spec: FieldSpec) -> dict[str, Any]:
        with self.lock:
            acct = self.accounts[hook.account]
            values: dict[str, Any] = {
                "id": hook.id,
                "etag": hook.etag,
                "url": hook.url,
                "fields": hook.fields,
                "shared_secret": hook.shared_secret,
                "model": hook.model,
                "status": hook.status,
                "events": list(hook.events),
                "expires_at": iso(hook.expires_at),
                "created_at": iso(hook.created_at),
                "updated_at": iso(hook.updated_at),
            }
            out: dict[str, Any] = {}
            for name, inner in spec:
                if name == "user":
                    out[name] = {
                        k: _user_value(acct, k) for k in nested_names(inner, WEBHOOK.nested["user"])
                    }
                else:
                    out[name] = values[name]
            return out

    def _hooks_for(self, bill: Bill, event: str) -> list[OutgoingHook]:
        """The deliveries a change of `bill` owes; called under the lock."""
        now = datetime.fromtimestamp(self.clock(), UTC)
        out: list[OutgoingHook] = []
        for hook in self.webhooks.values():
            if (
                hook.account != bill.account
                or hook.model != "bill"
                or hook.status != "enabled"
                or hook.expires_at <= now
                or event not in hook.events
            ):
                continue
            data = self.render_bill(bill, hook.spec)
            watched = {k: v for k, v in data.items() if k not in ("etag", "updated_at")}
            if event == "updated" and hook.last_sent.get(bill.id) == watched:
                continue
            hook.last_sent[bill.id] = watched
            body = json.dumps(
                {"data": data, "meta": {"event": event, "webhook_id": hook.id}},
                separators=(",", ":"),
            ).encode()
            out.append(
                OutgoingHook(
                    "delivery",
                    hook.id,
                    hook.account,
                    hook.url,
                    hook.shared_secret,
                    body,
                    event,
                    bill.id,
                )
            )
        return out

    def _emit(self, pending: list[OutgoingHook]) -> None:
        if pending and self.emit is not None:
            self.emit(pending)

    def record_delivery(self, entry: dict[str, Any]) -> None:
        with self.lock:
            entry["id"] = len(self.deliveries) + 1
            self.deliveries.append(entry)

    def delivery_log(self, account: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(d) for d in self.deliveries if account is None or d["account"] == account]

    # -- summaries ----------------------------------------------------------------------------

    def account_summaries(self) -> list[dict[str, Any]]:
        with self.lock:
            out = []
            for acct in self.accounts.values():
                ids = self._bill_ids.get(acct.name, [])
                out.append(
                    {
                        "name": acct.name,
                        "id": acct.id,
                        "firm_name": acct.firm_name,
                        "user": {"id": acct.user_id, "name": acct.user_name},
                        "bills": len(ids),
                        "webhooks": sum(
                            1 for h in self.webhooks.values() if h.account == acct.name
                        ),
                    }
                )
            return out

    def iter_account_bills(self, account: str) -> Iterable[Bill]:
        with self.lock:
            return [self.bills[i] for i in self._bill_ids.get(account, [])]


def _default_balance(state: str, total_cents: int) -> int:
    return 0 if state in ("paid", "void") else total_cents


def _paid(state: str, total_cents: int, balance_cents: int) -> int:
    if state in ("draft", "awaiting_approval"):
        return 0
    if state == "void":
        return 0 if balance_cents == 0 else total_cents - balance_cents
    return total_cents - balance_cents


def _currency_value(name: str) -> Any:
    return {"etag": '"usd"', **CURRENCY}[name]


def _user_value(acct: Account, name: str) -> Any:
    first, _, last = acct.user_name.partition(" ")
    return {
        "id": acct.user_id,
        "etag": _etag("user", acct.user_id),
        "name": acct.user_name,
        "first_name": first,
        "last_name": last,
        "email": f"admin@{acct.name}.example",
    }[name]


def _account_value(acct: Account, name: str) -> Any:
    """The account as Clio's Account_base shows it: the firm's name is the account's name."""
    return {
        "id": acct.id,
        "etag": _etag("account", acct.id),
        "name": acct.firm_name,
        "state": "active",
        "created_at": "2020-01-01T00:00:00Z",
        "updated_at": "2020-01-01T00:00:00Z",
    }[name]


def _bill_scalar(bill: Bill, name: str) -> Any:
    if name == "id":
        return bill.id
    if name == "etag":
        return bill.etag
    if name == "number":
        return bill.number
    if name == "subject":
        return bill.subject
    if name == "memo":
        return bill.memo
    if name == "purchase_order":
        return None
    if name == "state":
        return bill.state
    if name == "kind":
        return bill.kind
    if name == "type":
        return "MatterBill" if bill.matter_id is not None else "ClientBill"
    if name in ("issued_at", "start_at"):
        return bill.issued_at.isoformat() if bill.issued_at else None
    if name == "end_at":
        return bill.issued_at.isoformat() if bill.issued_at else None
    if name == "due_at":
        return bill.due_at.isoformat() if bill.due_at else None
    if name == "created_at":
        return iso(bill.created_at)
    if name == "updated_at":
        return iso(bill.updated_at)
    if name == "paid_at":
        return iso(bill.paid_at)
    if name == "last_sent_at":
        return iso(bill.last_sent_at)
    if name in ("total", "due", "sub_total"):
        return major(bill.total_cents)
    if name == "paid":
        return major(bill.paid_cents)
    if name == "balance":
        return major(bill.balance_cents)
    if name == "pending":
        return major(bill.pending_cents)
    if name in ("credits_issued", "tax_sum"):
        return 0.0
    if name in ("tax_rate", "secondary_tax_rate"):
        return 0.0
    if name == "can_update":
        return bill.state in ("draft", "awaiting_approval", "awaiting_payment")
    if name == "shared":
        return bill.last_sent_at is not None
    if name == "available_state_transitions":
        return list(TRANSITIONS[bill.state])
    raise KeyError(name)


def _required_str(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, "BadRequest", f"{name} is required", name)
    return value


def _webhook_model(raw: Any) -> str:
    if isinstance(raw, int) and not isinstance(raw, bool):
        for name, number in WEBHOOK_MODELS.items():
            if number == raw:
                return name
    if isinstance(raw, str) and raw in WEBHOOK_MODELS:
        return raw
    if raw is None:
        raise ApiError(400, "BadRequest", "model is required", "model")
    raise ApiError(422, "UnprocessableEntity", f"model {raw!r} is not supported", "model")


def _webhook_events(raw: Any) -> list[str]:
    if raw is None:
        return list(WEBHOOK_EVENTS)
    if not isinstance(raw, list) or not raw or not all(isinstance(e, str) for e in raw):
        raise ApiError(400, "BadRequest", "events must be a non-empty list of strings", "events")
    unknown = [e for e in raw if e not in WEBHOOK_EVENTS]
    if unknown:
        raise ApiError(422, "UnprocessableEntity", f"unknown events: {unknown}", "events")
    return list(dict.fromkeys(raw))


def _check_webhook_url(url: str, local_http_ok: bool) -> None:
    parts = urlsplit(url)
    local = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and local and local_http_ok:
        # Real Clio takes https only; the sandbox lets local receivers use plain http.
        return
    raise ApiError(422, "UnprocessableEntity", "url must be an https URL", "url")


def parse_timestamp(raw: Any, name: str) -> datetime:
    """An ISO-8601 timestamp (or date); naive values are UTC."""
    if not isinstance(raw, str) or not raw:
        raise ApiError(400, "BadRequest", f"{name} must be an ISO-8601 timestamp", name)
    text = raw.strip().replace(" ", "+")  # a `+` that arrived unencoded in a query string
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ApiError(400, "BadRequest", f"{name} must be an ISO-8601 timestamp", name) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_date(raw: Any, name: str) -> date:
    if not isinstance(raw, str):
        raise ApiError(400, "BadRequest", f"{name} must be an ISO-8601 date", name)
    try:
        return date.fromisoformat(raw[:10])
    except ValueError:
        raise ApiError(400, "BadRequest", f"{name} must be an ISO-8601 date", name) from None


def _webhook_expiry(raw: Any, now: datetime, *, required: bool = False) -> datetime:
    if raw is None:
        if required:
            raise ApiError(400, "BadRequest", "expires_at must be a timestamp", "expires_at")
        return now + WEBHOOK_DEFAULT_LIFETIME
    moment = parse_timestamp(raw, "expires_at")
    if moment <= now:
        raise ApiError(422, "UnprocessableEntity", "expires_at must be in the future", "expires_at")
    if moment > now + WEBHOOK_MAX_LIFETIME:
        raise ApiError(
            422, "UnprocessableEntity", "expires_at must be at most 31 days from now", "expires_at"
        )
    return moment
