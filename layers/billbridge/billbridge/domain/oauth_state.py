"""The OAuth `state` of connecting Clio (C1): signed, short lived, single use, and bound to the
browser of the signed-in user who started the connect.

The callback is reached by the browser's redirect from Clio, with no Authorization header, so
the state must say which firm is connecting. A signature alone is not enough: anyone who gets
the authorize URL (a link forwarded, a screenshot) could approve it with *their* Clio account
and connect it to this firm, and use it again with a new code. So:

* the state names the firm, the region, the user who asked (the token's `sub`) and a single-use
  id, and expires after `STATE_TTL`; it is HMAC-signed, so none of that can be changed;
* `/clio/connect` also answers a random browser secret, set as an HttpOnly cookie whose path is
  the callback's; the state carries only the secret's hash, and the callback accepts the state
  only from the browser holding the secret (`check_browser`);
* the single-use id is recorded when the connect starts and consumed atomically by the callback
  (a conditional write), so the same state never connects twice.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from billbridge.domain.connection import Region
from billbridge.domain.errors import RuleViolation, Unauthenticated

STATE_TTL = timedelta(minutes=10)
# The cookie that binds a connect to the browser that started it (path: the callback's).
CONNECT_COOKIE = "billbridge_clio_connect"


@dataclass(frozen=True)
class ConnectIntent:
    """What a signed state says: who asked to connect which firm to which region, until when."""

    firm_id: str
    region: Region
    user_id: str
    state_id: str
    browser_hash: str
    expires_at: datetime


@dataclass(frozen=True)
class ConnectingUser:
    """The signed-in BillBridge user who started a connect (the token's `sub` and email)."""

    user_id: str
    email: str | None = None


@dataclass(frozen=True)
class ConnectStart:
    intent: ConnectIntent
    state: str  # the signed state, for Clio's authorize URL
    browser_secret: str  # the cookie's value; only its hash is in the state


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _hash(browser_secret: str) -> str:
    return hashlib.sha256(browser_secret.encode("utf-8")).hexdigest()


def start_connect(
    firm_id: str, region: Region, user_id: str, key: bytes, now: datetime
) -> ConnectStart:
    browser_secret = secrets.token_urlsafe(32)
    intent = ConnectIntent(
        firm_id=firm_id,
        region=region,
        user_id=user_id,
        state_id=secrets.token_urlsafe(18),
        browser_hash=_hash(browser_secret),
        expires_at=now + STATE_TTL,
    )
    return ConnectStart(intent=intent, state=sign_state(intent, key), browser_secret=browser_secret)


def sign_state(intent: ConnectIntent, key: bytes) -> str:
    payload = {
        "f": intent.firm_id,
        "r": intent.region.value,
        "u": intent.user_id,
        "i": intent.state_id,
        "b": intent.browser_hash,
        "exp": int(intent.expires_at.timestamp()),
    }
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    mac = hmac.new(key, body.encode("ascii"), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def verify_state(state: str, key: bytes, now: datetime) -> ConnectIntent:
    """The intent of a state signed with `key` and not expired; Unauthenticated otherwise."""
    # A state we did not sign (or no longer honour) proves no connect of ours: a 401, like a
    # bad webhook signature.
    invalid = Unauthenticated(
        "The state parameter is invalid or has expired. Start connecting Clio again.",
        field="state",
        code="invalid_state",
    )
    body, _, mac = state.partition(".")
    if not body or not mac or not body.isascii():
        raise invalid
    expected = hmac.new(key, body.encode("ascii"), hashlib.sha256).digest()
    try:
        given = _unb64(mac)
        payload = json.loads(_unb64(body))
    except (ValueError, UnicodeDecodeError):
        raise invalid from None
    if not hmac.compare_digest(expected, given) or not isinstance(payload, dict):
        raise invalid
    try:
        intent = ConnectIntent(
            firm_id=str(payload["f"]),
            region=Region(payload["r"]),
            user_id=str(payload["u"]),
            state_id=str(payload["i"]),
            browser_hash=str(payload["b"]),
            expires_at=datetime.fromtimestamp(int(payload["exp"]), UTC),
        )
    except (KeyError, ValueError, TypeError):
        raise invalid from None  # signed by an older version of this code
    if intent.expires_at < now:
        raise invalid
    return intent


def check_browser(intent: ConnectIntent, browser_secret: str | None) -> None:
    """The callback must come from the browser that started the connect (it holds the cookie
    whose hash the state carries)."""
    if not browser_secret or not hmac.compare_digest(_hash(browser_secret), intent.browser_hash):
        raise RuleViolation(
            "This Clio approval was not started from this browser. Start connecting Clio again "
            "from BillBridge, in the browser you are signed in with.",
            field="state",
            code="clio_connect_other_browser",
        )


def already_used() -> RuleViolation:
    return RuleViolation(
        "This Clio approval was already used. Start connecting Clio again from BillBridge.",
        field="state",
        code="clio_connect_used",
    )
