"""The invoices list (C2, L1-L3): one page of a firm's bills, answered at once from the store,
with a sync started in the background when none is running (sync on view). A default page
reads the firm header once and queries one index once (docs/data-model.md)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from billbridge.domain.bills import BillState, StoredBill, parse_states
from billbridge.domain.errors import InvalidInput, NotFound
from billbridge.domain.settings import FirmSettings
from billbridge.domain.sync import SyncCheckpoint, SyncRun
from billbridge.services.ports import BillRepository, FirmHeaders

MAX_PAGE_SIZE = 200


@dataclass(frozen=True)
class InvoicesPage:
    items: list[StoredBill]
    next_cursor: str | None
    synced_at: datetime | None
    sync: SyncRun | None
    states: tuple[BillState, ...]
    # The settings the header carried (reminders: each bill's next reminder is worked out
    # from them, without another read).
    settings: FirmSettings | None = None


def encode_cursor(before_bill_id: int, states: Sequence[BillState]) -> str:
    raw = json.dumps({"b": before_bill_id, "s": [s.value for s in states]}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str, states: Sequence[BillState]) -> int:
    """The bill id a page continues below. A cursor only continues the listing it came from:
    any other names no page of this listing (404, as any id that is not the caller's)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
        before = int(payload["b"])
        cursor_states = tuple(payload["s"])
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise NotFound(
            "The cursor is not one this API gave out: start again from the first page.",
            field="cursor",
            code="unknown_cursor",
        ) from None
    if cursor_states != tuple(s.value for s in states):
        raise NotFound(
            "The cursor belongs to a listing with other states: start again from the first page.",
            field="cursor",
            code="unknown_cursor",
        )
    return before


class InvoicesService:
    def __init__(
        self,
        *,
        bills: BillRepository,
        headers: FirmHeaders,
        sync_on_view: Callable[
            [str, SyncCheckpoint | None], tuple[SyncRun | None, datetime | None]
        ],
    ) -> None:
        self._bills = bills
        self._headers = headers
        self._sync_on_view = sync_on_view

    def list(
        self, firm_id: str, *, states: str | None, page_size: int, cursor: str | None
    ) -> InvoicesPage:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise InvalidInput(
                f"The page size must be between 1 and {MAX_PAGE_SIZE}.", field="page_size"
            )
        # One read for the default filter, the sync state and the run: the firm header.
        header = self._headers.read(firm_id)
        chosen = (
            parse_states(states) if states is not None else tuple(header.settings.default_states)
        )
        before = decode_cursor(cursor, chosen) if cursor else None
        sync, synced_at = self._sync_on_view(firm_id, header.checkpoint)
        page = self._bills.page(firm_id, chosen, page_size, before)
        return InvoicesPage(
            items=page.items,
            next_cursor=encode_cursor(page.last_bill_id, chosen) if page.last_bill_id else None,
            synced_at=synced_at,
            sync=sync,
            states=chosen,
            settings=header.settings,
        )
