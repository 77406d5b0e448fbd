"""The OAuth `state` parameter (C1): signed, expiring, naming the firm that asked to connect.

The callback has no session and no Authorization header (Clio's redirect carries neither), so
the state alone must say which firm is connecting, and must be impossible to forge or replay
after it expires.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from billbridge.domain.connection import Region
from billbridge.domain.errors import InvalidInput

STATE_TTL = timedelta(minutes=15)


@dataclass(frozen=True)
class ConnectIntent:
    firm_id: str
    region: Region


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_state(intent: ConnectIntent, key: bytes, now: datetime) -> str:
    payload = {
        "f": intent.firm_id,
        "r": intent.region.value,
        "exp": int((now + STATE_TTL).timestamp()),
        "n": secrets.token_urlsafe(12),
    }
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    mac = hmac.new(key, body.encode("ascii"), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def verify_state(state: str, key: bytes, now: datetime) -> ConnectIntent:
    invalid = InvalidInput("the state parameter is invalid or has expired", field="state")
    body, _, mac = state.partition(".")
    if not body or not mac:
        raise invalid
    expected = hmac.new(key, body.encode("ascii"), hashlib.sha256).digest()
    try:
        given = _unb64(mac)
        payload = json.loads(_unb64(body))
    except (ValueError, UnicodeDecodeError):
        raise invalid from None
    if not hmac.compare_digest(expected, given):
        raise invalid
    if not isinstance(payload, dict) or int(payload.get("exp", 0)) < now.timestamp():
        raise invalid
    return ConnectIntent(firm_id=str(payload["f"]), region=Region(payload["r"]))
