"""A firm's Clio connection (C1): region, OAuth tokens and the bill webhook subscription.

Tokens and the webhook secret are secrets: hidden from repr, encrypted at rest by the store,
never logged, never returned by the API.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from billbridge.domain.errors import InvalidInput


class Region(StrEnum):
    US = "us"
    CA = "ca"
    EU = "eu"
    AU = "au"


def parse_region(raw: str | None) -> Region:
    if raw is None or raw == "":
        return Region.US
    try:
        return Region(raw.lower())
    except ValueError:
        allowed = ", ".join(r.value for r in Region)
        raise InvalidInput(
            f"Unknown Clio region {raw!r}. Allowed: {allowed}.", field="region"
        ) from None


@dataclass(frozen=True)
class ClioConnection:
    firm_id: str
    region: Region
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    access_expires_at: datetime
    connected_at: datetime
    # Who was connected, as Clio's who_am_i says: the Clio user who approved, and their account.
    clio_user_id: int | None = None
    clio_user_name: str | None = None
    clio_user_email: str | None = None
    clio_account_id: int | None = None
    clio_account_name: str | None = None
    # The BillBridge user who started the connect.
    connected_by_user_id: str | None = None
    connected_by_email: str | None = None
    needs_reconnect: bool = False
    webhook_id: int | None = None
    webhook_secret: str | None = field(default=None, repr=False)
    webhook_expires_at: datetime | None = None

    def with_tokens(
        self, access_token: str, refresh_token: str, expires_at: datetime
    ) -> ClioConnection:
        return replace(
            self,
            access_token=access_token,
            refresh_token=refresh_token,
            access_expires_at=expires_at,
            needs_reconnect=False,
        )
