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
from typing import TYPE_CHECKING

from billbridge.domain.bills import BillState, StoredBill, parse_states
from billbridge.domain.errors import InvalidInput, NotFound
from billbridge.domain.listing import Position, Sort, SortField, parse_query, parse_sort
from billbridge.domain.settings import FirmSettings
from billbridge.domain.sync import SyncCheckpoint, SyncRun, utcnow

if TYPE_CHECKING:  # the ports only as annotations: none is loaded with this module
    from billbridge.services.ports import BillRepository, FirmHeader, FirmHeaders

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
    sort: str | None = None
    q: str | None = None
    overdue: bool = False


def _b64(payload: dict[str, object]) -> str:
    raw = json.dumps(payload, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode("ascii")


def _listing(
    states: Sequence[BillState], sort: Sort | None, query: str | None, overdue: bool
) -> dict[str, object]:
    """What a cursor belongs to: a cursor continues only the listing it came from."""
    listing: dict[str, object] = {"s": [s.value for s in states]}
    if sort is not None or query is not None or overdue:
        listing.update({"o": sort.text if sort else "", "q": query or "", "d": overdue})
    return listing


def encode_cursor(
    before_bill_id: int,
    states: Sequence[BillState],
) -> str:
    return _b64({"b": before_bill_id, **_listing(states, None, None, False)})


def encode_position(
    position: Position,
    states: Sequence[BillState],
    sort: Sort | None,
    query: str | None,
    overdue: bool,
) -> str:
    return _b64(
        {"b": position.bill_id, "v": position.value, **_listing(states, sort, query, overdue)}
    )


def _unknown(other_listing: bool = False) -> NotFound:
    if other_listing:
        return NotFound(
            "The cursor belongs to another listing (other states, sort, search or filter): "
            "start again from the first page.",
            field="cursor",
            code="unknown_cursor",
        )
    return NotFound(
        "The cursor is not one this API gave out: start again from the first page.",
        field="cursor",
        code="unknown_cursor",
    )


def _payload(cursor: str) -> dict[str, object]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
        if not isinstance(payload, dict):
            raise TypeError
        int(payload["b"])
        return payload
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise _unknown() from None


def decode_cursor(
    cursor: str,
    states: Sequence[BillState],
    sort: Sort | None = None,
    query: str | None = None,
    overdue: bool = False,
) -> Position:
    """Where a page continues. A cursor only continues the listing it came from (the same
    states, sort, search and overdue filter): any other names no page of this listing (404,
    as any id that is not the caller's)."""
    payload = _payload(cursor)
    mine = {k: v for k, v in payload.items() if k not in ("b", "v")}
    if mine != _listing(states, sort, query, overdue):
        raise _unknown(other_listing=True)
    value = payload.get("v", "")
    if not isinstance(value, str):
        raise _unknown()
    return Position(value, int(str(payload["b"])))


class InvoicesService:
    def __init__(
        self,
        *,
        bills: BillRepository,
        headers: FirmHeaders,
        sync_on_view: Callable[
            [str, SyncCheckpoint | None], tuple[SyncRun | None, datetime | None]
        ],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._clock = clock
        self._bills = bills
        self._headers = headers
        self._sync_on_view = sync_on_view

    def list(
        self,
        firm_id: str,
        *,
        states: str | None,
        page_size: int,
        cursor: str | None,
        q: str | None = None,
        sort: str | None = None,
        overdue: bool = False,
        header: FirmHeader | None = None,
    ) -> InvoicesPage:
        """One page: by default newest id first from one Query (L3); searched (`q`), sorted
        (`sort`) or only overdue bills from the sort and search indexes (L5). `header`: the
        firm header when the caller has read it already this request (the access check reads
        it with the member record), else it is read here."""
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise InvalidInput(
                f"The page size must be between 1 and {MAX_PAGE_SIZE}.", field="page_size"
            )
        chosen_sort = parse_sort(sort)
        query = parse_query(q)
        if overdue and chosen_sort is None and query is None:
            chosen_sort = Sort(SortField.DUE_AT)  # overdue bills, oldest due first
        # One read for the default filter, the sync state and the run: the firm header.
        if header is None:
            header = self._headers.read(firm_id)
        chosen = (
            parse_states(states) if states is not None else tuple(header.settings.default_states)
        )
        listed = chosen_sort is not None or query is not None or overdue
        position = decode_cursor(cursor, chosen, chosen_sort, query, overdue) if cursor else None
        sync, synced_at = self._sync_on_view(firm_id, header.checkpoint)
        if not listed:
            page = self._bills.page(
                firm_id, chosen, page_size, position.bill_id if position else None
            )
            next_cursor = encode_cursor(page.last_bill_id, chosen) if page.last_bill_id else None
            items = page.items
        else:
            sorted_page = self._bills.search_page(
                firm_id,
                chosen,
                sort=chosen_sort,
                query=query,
                overdue_on=self._clock().date() if overdue else None,
                page_size=page_size,
                cursor=position,
            )
            items = sorted_page.items
            next_cursor = (
                encode_position(sorted_page.last, chosen, chosen_sort, query, overdue)
                if sorted_page.last
                else None
            )
        return InvoicesPage(
            items=items,
            next_cursor=next_cursor,
            synced_at=synced_at,
            sync=sync,
            states=chosen,
            settings=header.settings,
            sort=chosen_sort.text if chosen_sort else None,
            q=query,
            overdue=overdue,
        )
