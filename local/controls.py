"""The local stack's own controls under `/_local/` on the API's address: never part of a deployed
function (no template route, no handler serves them), answered only by the local API Gateway
of `python -m local.stack`.

- `GET /_local/health`: no login. `{"ok": true, "pid", "worker_pids", "pids"}`: `pids` is the
  whole process tree that serves the stack (this process and every Lambda worker alive now).
- Everything else needs the local admin token, `Authorization: Bearer <token>`:
  `GET /_local/outbox` (every email sent), `GET /_local/stats` (each function's workers and
  counts), `POST /_local/firms/{firm_id}/payment-accounts`, `POST /_local/tick` (every schedule
  once, now), `GET /_local/clock` and `POST /_local/clock {"now"}` (the stack's clock,
  local/clock.py).
  `Authorization: Bearer dev-<firm_id>` (the local sign-in) also reads the outbox, limited to
  that firm's emails.
- The token is `LOCAL_ADMIN_TOKEN` when set, else the one kept in `.local/admin-token`
  (made at the first start, readable by its owner only); `make run` prints it.

Refusals are in the api.md error shape: 401 without an accepted token, 403 for a firm's token
on an admin control, 404 for no such control.
"""

from __future__ import annotations

import hmac
import json
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from local.clock import parse_now
from local.lambda_specs import ROOT
from local.worker import rss_bytes

TOKEN_ENV = "LOCAL_ADMIN_TOKEN"
TOKEN_FILE = ROOT / ".local" / "admin-token"
FIRM_TOKEN = re.compile(r"^Bearer dev-([A-Za-z0-9_.-]{1,64})$")
PAYMENT_ACCOUNTS = re.compile(r"/_local/firms/([A-Za-z0-9_.-]{1,64})/payment-accounts")

Answer = tuple[int, dict[str, str], bytes]


def admin_token(env: Mapping[str, str] | None = None, path: Path = TOKEN_FILE) -> str:
    """The local admin token: from the environment, else the saved one, else a new one saved."""
    env = os.environ if env is None else env
    given = env.get(TOKEN_ENV, "").strip()
    if given:
        return given
    try:
        saved = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        saved = ""
    if len(saved) >= 16:
        return saved
    token = secrets.token_urlsafe(24)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as out:
        out.write(token + "\n")
    return token


@dataclass(frozen=True)
class Caller:
    admin: bool
    firm_id: str | None  # a firm's own token: its outbox only


class ControlledStack(Protocol):
    """What the controls need of the stack."""

    def payment_accounts(self, firm_id: str, name: str | None = None) -> Any: ...

    def tick(self) -> Any: ...

    def clock_now(self) -> datetime: ...

    def set_clock(self, now: datetime) -> datetime: ...

    def outbox(self) -> list[dict[str, Any]]: ...

    def firm_of_message(self, message_id: str) -> str | None: ...

    def worker_pids(self) -> list[int]: ...

    def functions(self) -> dict[str, Any]: ...

    def make_user(self, email: str, password: str, firm_id: str, role: str) -> dict[str, str]: ...


def _json(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Answer:
    return (
        status,
        {"Content-Type": "application/json", "Cache-Control": "no-store", **(headers or {})},
        json.dumps(body).encode(),
    )


def _not_allowed(method: str, path: str) -> Answer:
    return _error(405, "method_not_allowed", f"{method} is not allowed on {path}")


def _error(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Answer:
    return _json(status, {"error": {"code": code, "message": message, "field": field}}, headers)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class LocalControls:
    """The `/_local/` routes, given to the local API Gateway as its extra route."""

    def __init__(self, stack: ControlledStack, token: str) -> None:
        self._stack = stack
        self._token = token
        self._admin: dict[str, tuple[str, Callable[[], Answer]]] = {
            "/_local/stats": ("GET", self._stats),
            "/_local/tick": ("POST", self._tick),
        }

    def __call__(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        if path == "/_local/health":
            if method not in ("GET", "HEAD"):
                return _not_allowed(method, path)
            return self._health()
        onboarding = PAYMENT_ACCOUNTS.fullmatch(path)
        if path == "/_local/outbox":
            expected = "GET"
        elif path == "/_local/users":
            expected = "POST"
        elif onboarding is not None:
            expected = "POST"
        elif path == "/_local/clock":
            expected = method if method in ("GET", "POST") else "GET"
        elif path in self._admin:
            expected = self._admin[path][0]
        else:
            return _error(404, "not_found", f"no local control {path}")
        caller = self._caller(headers)
        if caller is None:
            return _error(
                401,
                "unauthenticated",
                "local controls need the local admin token (Authorization: Bearer <token>, "
                "printed by make run)",
                headers={"WWW-Authenticate": 'Bearer realm="local"'},
            )
        if method != expected:
            return _not_allowed(method, path)
        if path == "/_local/outbox":
            return self._outbox(caller.firm_id)
        if path == "/_local/users":
            return self._make_user(caller, body)
        if not caller.admin:
            return _error(403, "forbidden", "this local control needs the local admin token")
        if onboarding is not None:
            return self._onboard(onboarding.group(1))
        if path == "/_local/clock":
            return self._clock(method, body)
        return self._admin[path][1]()

    def _caller(self, headers: Mapping[str, str]) -> Caller | None:
        """The admin (the token), a firm (the local sign-in, `dev-<firm_id>`), or nobody."""
        raw = next((v for k, v in headers.items() if k.lower() == "authorization"), "").strip()
        scheme, _, credential = raw.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            credential.strip().encode(), self._token.encode()
        ):
            return Caller(admin=True, firm_id=None)
        firm = FIRM_TOKEN.match(raw)
        return Caller(admin=False, firm_id=firm.group(1)) if firm else None

    def _health(self) -> Answer:
        workers = self._stack.worker_pids()
        return _json(
            200,
            {
                "ok": True,
                "pid": os.getpid(),
                "worker_pids": workers,
                "pids": [os.getpid(), *workers],
            },
        )

    def _stats(self) -> Answer:
        return _json(
            200,
            {"pid": os.getpid(), "rss_bytes": rss_bytes(), "functions": self._stack.functions()},
        )

    def _onboard(self, firm_id: str) -> Answer:
        made = self._stack.payment_accounts(firm_id)
        return _json(
            201,
            {
                "trust_account_id": made.trust_account_id,
                "operating_account_id": made.operating_account_id,
            },
        )

    def _make_user(self, caller: Caller, body: bytes) -> Answer:
        from local.cognito import LocalUserError

        try:
            given = json.loads(body or b"{}")
        except ValueError:
            return _error(400, "invalid_input", "the body is not JSON")
        fields = ("email", "password", "firm_id", "role")
        if not isinstance(given, dict) or any(not isinstance(given.get(f), str) for f in fields):
            return _error(400, "invalid_input", "give email, password, firm_id and role as text")
        if not caller.admin and caller.firm_id != given["firm_id"]:
            return _error(403, "forbidden", "a firm's sign-in makes users of its own firm only")
        try:
            made = self._stack.make_user(*(given[f] for f in fields))
        except LocalUserError as exc:
            return _json(
                exc.status,
                {"error": {"code": exc.code, "message": exc.message, "field": exc.field}},
            )
        return _json(201, made)

    def _tick(self) -> Answer:
        try:
            ran = self._stack.tick()
        except Exception as exc:  # a schedule's function failed: say so, as a gateway would
            return _error(502, "tick_failed", f"a schedule's function failed: {exc}"[:500])
        return _json(202, {"ticked": True, **(ran if isinstance(ran, dict) else {})})

    def _clock(self, method: str, body: bytes) -> Answer:
        if method == "POST":
            try:
                given = json.loads(body or b"null")
            except ValueError:
                return _error(400, "invalid_input", 'the body must be JSON: {"now": time}')
            if not isinstance(given, dict) or set(given) != {"now"}:
                return _error(400, "invalid_input", 'the body must be {"now": time}', "now")
            try:
                moment = parse_now(given["now"])
            except ValueError as exc:
                return _error(400, "invalid_input", str(exc), "now")
            now = self._stack.set_clock(moment)
        else:
            now = self._stack.clock_now()
        return _json(200, {"now": _iso(now)})

    def _outbox(self, firm_id: str | None) -> Answer:
        mails = self._stack.outbox()
        if firm_id is not None:
            mails = [m for m in mails if self._stack.firm_of_message(m["message_id"]) == firm_id]
        return _json(200, mails)
