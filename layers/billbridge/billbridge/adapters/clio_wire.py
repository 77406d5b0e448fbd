"""Clio's region hosts and webhook signature: the parts of Clio's wire format a handler needs
without the HTTP client (adapters/clio.py, which loads `requests`), so cold starts stay light."""

from __future__ import annotations

import hashlib
import hmac

REGION_HOSTS = {
    "us": "https://app.clio.com",
    "ca": "https://ca.app.clio.com",
    "eu": "https://eu.app.clio.com",
    "au": "https://au.app.clio.com",
}


def verify_webhook_signature(shared_secret: str, raw_body: bytes, signature: str | None) -> bool:
    """Whether `signature` (X-Hook-Signature) is the hex HMAC-SHA256 of the raw body under the
    webhook's shared secret. Compared in constant time."""
    if not signature or not shared_secret:
        return False
    expected = hmac.new(shared_secret.encode(), raw_body, hashlib.sha256).hexdigest().encode()
    try:
        given = signature.strip().lower().encode("ascii")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(expected, given)
