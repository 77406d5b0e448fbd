"""The local API Gateway's Cognito authorizer: what API Gateway does with `Authorization:
Bearer <IdToken>` on a route the template gives `CognitoAuthorizer`.

A token passes only when it is a JWT signed (RS256) by a key of the pool's JWKS
(`/<pool_id>/.well-known/jwks.json`, fetched from the emulator as API Gateway fetches it from
Cognito), issued by that pool (`iss`), for the web UI's app client (`aud`), an ID token
(`token_use`), and not expired (`exp`). Its claims then reach the handler as API Gateway's REST
API passes them under `requestContext.authorizer.claims`: every value a string (a list such as
`cognito:groups` comma-joined, times like `Fri Jul 29 18:52:53 UTC 2016`).

`Bearer dev-<firm_id>` is the local stack's stand-in for tests and scripts: an admin of that
firm. No deployed API accepts it (API Gateway's authorizer knows nothing of it).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import requests
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact

from local.cognito import UserPoolInfo

DEV_TOKEN = re.compile(r"^Bearer dev-([A-Za-z0-9_.-]{1,64})$")
BEARER = re.compile(r"^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$")
# The claims API Gateway turns from epoch seconds into dates.
TIME_CLAIMS = ("exp", "iat", "auth_time")
# A JWKS is fetched again for an unknown `kid` at most this often.
JWKS_REFRESH_SECONDS = 30.0


def dev_claims(firm_id: str) -> dict[str, str]:
    """What `Bearer dev-<firm_id>` stands for: an admin of that firm."""
    return {
        "sub": f"dev-user-{firm_id}",
        "custom:firm_id": firm_id,
        "cognito:groups": "admin",
        "token_use": "id",
    }


def _as_gateway_string(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if name in TIME_CLAIMS and isinstance(value, int):
        return datetime.fromtimestamp(value, UTC).strftime("%a %b %d %H:%M:%S UTC %Y")
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def gateway_claims(claims: Mapping[str, Any]) -> dict[str, str]:
    return {name: _as_gateway_string(name, value) for name, value in claims.items()}


class CognitoAuthorizer:
    """Verifies ID tokens of one user pool for one app client, as API Gateway's authorizer."""

    def __init__(
        self,
        pool: UserPoolInfo,
        *,
        clock: Callable[[], float] = time.time,
        fetch_jwks: Callable[[str], Mapping[str, Any]] | None = None,
    ) -> None:
        self.pool = pool
        self._clock = clock
        self._fetch = fetch_jwks or _fetch_jwks
        self._keys: KeySet | None = None
        self._fetched_at = 0.0
        self._lock = threading.Lock()

    def _key_set(self, kid: str | None) -> KeySet:
        with self._lock:
            known = self._keys is not None and any(key.kid == kid for key in self._keys.keys)
            stale = time.monotonic() - self._fetched_at > JWKS_REFRESH_SECONDS
            if self._keys is None or (not known and stale):
                self._keys = KeySet.import_key_set(self._fetch(self.pool.jwks_url))  # type: ignore[arg-type]
                self._fetched_at = time.monotonic()
            return self._keys

    def verify(self, token: str) -> dict[str, Any] | None:
        """The token's claims when API Gateway would let it through, else None."""
        try:
            header = _header(token)
            keys = self._key_set(header.get("kid"))
            decoded = jwt.decode(token, keys, algorithms=["RS256"])
        except (JoseError, ValueError, KeyError, TypeError, requests.RequestException):
            return None
        claims = dict(decoded.claims)
        exp = claims.get("exp")
        if (
            claims.get("iss") != self.pool.issuer
            or claims.get("token_use") != "id"
            or claims.get("aud") != self.pool.client_id
            or isinstance(exp, bool)
            or not isinstance(exp, int)
            or exp <= self._clock()
        ):
            return None
        return claims

    def claims_for(self, authorization: str) -> dict[str, str] | None:
        """The handler's `requestContext.authorizer.claims` for an Authorization header."""
        found = BEARER.match(authorization.strip())
        if not found:
            return None
        claims = self.verify(found.group(1))
        return gateway_claims(claims) if claims is not None else None


def _header(token: str) -> dict[str, Any]:
    return dict(extract_compact(token.encode()).protected)


def _fetch_jwks(url: str) -> Mapping[str, Any]:
    answer = requests.get(url, timeout=10)
    answer.raise_for_status()
    keys: Mapping[str, Any] = answer.json()
    return keys
