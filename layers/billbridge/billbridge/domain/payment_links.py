"""Payment links (P1): one per set of bills sent together, created the first time that set is
sent and reused when it is sent again.

The link's address carries a token that is unguessable (256 bits of HMAC output) and is stored
only as its SHA-256 hash. The token is derived from a server-held key and the link id, so a
second send of the same bills can email the same address without the token ever being stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from billbridge.domain.errors import RuleViolation


@dataclass(frozen=True)
class PaymentLink:
    id: str
    firm_id: str
    bill_ids: tuple[int, ...]
    created_at: datetime


def refuse_off_link(link: PaymentLink, bill_ids: Iterable[int]) -> None:
    """Refuse bills the client chose that are not on their link (422 `bill_not_on_link`)."""
    unknown = [i for i in bill_ids if i not in link.bill_ids]
    if unknown:
        raise RuleViolation(
            f"Bill {unknown[0]} is not on this payment link.",
            field="bill_ids",
            code="bill_not_on_link",
        )


def new_link_id() -> str:
    return f"pl_{secrets.token_urlsafe(12)}"


def bill_set_key(bill_ids: Iterable[int]) -> str:
    """The identity of a set of bills, whatever order they were selected in."""
    return ",".join(str(i) for i in sorted(set(bill_ids)))


def link_token(key: bytes, firm_id: str, link_id: str) -> str:
    mac = hmac.new(key, f"{firm_id}:{link_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def token_hash(token: str) -> str:
    # Any text hashes: a token that is not one of ours (non-ASCII included) matches no link.
    # Ours are URL-safe base64, so their UTF-8 bytes are their ASCII bytes.
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def link_url(pay_base_url: str, token: str) -> str:
    return f"{pay_base_url.rstrip('/')}/pay/{token}"
