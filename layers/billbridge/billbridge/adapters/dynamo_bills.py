"""The bill items of the app table (implements services.ports.BillRepository): it owns how a
bill is stored, how syncs and webhooks write Clio's part of it without touching ours, the
state-filtered, id-ordered listing over gsi1 (one state) and gsi2 (a group of states listed
together, the default filter among them), and the queue of bills whose PDF is wanted (gsi3).
See docs/data-model.md, "Bill".
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Sequence
from datetime import date, datetime
from functools import partial
from typing import Any

from botocore.exceptions import ClientError

from billbridge.adapters.dynamo_common import (
    BATCH_GET_LIMIT,
    BATCH_WRITE_LIMIT,
    DynamoRepository,
    Item,
    StoreUnavailable,
    Update,
    backoff_delay,
    error_code,
    firm_pk,
    from_item,
    iso_utc,
    parse_iso,
    require_iso,
    to_item,
)
from billbridge.domain.bills import (
    DEFAULT_STATES,
    MONEY_COUNTERS,
    Bill,
    BillKind,
    BillState,
    Client,
    Matter,
    StoredBill,
    is_sendable,
)
from billbridge.domain.errors import InvalidInput
from billbridge.domain.listing import (
    MAX_SEARCH_MATCHES,
    Position,
    SearchField,
    Sort,
    SortField,
    after,
    arrange,
    index_key,
    is_overdue,
    matches,
    position_of,
    search_value,
    sort_value,
)
from billbridge.services.ports import BillsPage, SortedPage, WantedPdf

log = logging.getLogger(__name__)

STATE_INDEX = "gsi1"  # one state, newest id first
GROUP_INDEX = "gsi2"  # a group of states, newest id first
PDF_INDEX = "gsi3"  # sendable bills whose PDF is wanted (sparse), newest id first
# Sorted and searched lists (L5): partition `pk` (the firm), sort keys `{state}#{value}#{id}`.
SORT_INDEXES: dict[SortField, tuple[str, str]] = {
    SortField.DUE_AT: ("gsi4", "lsort_due"),
    SortField.AMOUNT: ("gsi5", "lsort_amount"),
    SortField.CLIENT: ("gsi6", "lsort_client"),
}
SEARCH_INDEXES: dict[SearchField, tuple[str, str]] = {
    SearchField.CLIENT: ("gsi6", "lsort_client"),  # the client sort key is also its search key
    SearchField.NUMBER: ("gsi7", "lsearch_number"),
    SearchField.MATTER: ("gsi8", "lsearch_matter"),
}
LIST_KEY_ATTRIBUTES = (
    "lsort_due",
    "lsort_amount",
    "lsort_client",
    "lsearch_number",
    "lsearch_matter",
)
_DELETED = BillState.DELETED.value

# States listed together, each group one Query of gsi2 in id order. The default filter is one
# group, so the default page is one Query; any other set of states is covered by whole groups
# and single states (gsi1).
LIST_GROUPS: dict[str, tuple[BillState, ...]] = {
    "issued": DEFAULT_STATES,
    "unissued": (BillState.DRAFT, BillState.AWAITING_APPROVAL),
    "archive": (BillState.VOID, BillState.DELETED),
}
_GROUP_OF = {state: name for name, states in LIST_GROUPS.items() for state in states}
assert set(_GROUP_OF) == set(BillState), "every state belongs to exactly one list group"


def bill_sk(bill_id: int) -> str:
    # Zero-padded so that string order on the sort key is numeric order of Clio ids.
    return f"BILL#{bill_id:020d}"


def state_pk(firm_id: str, state: BillState | str) -> str:
    return f"FIRM#{firm_id}#STATE#{BillState(state).value}"


def group_pk(firm_id: str, state: BillState | str) -> str:
    return f"FIRM#{firm_id}#GROUP#{_GROUP_OF[BillState(state)]}"


def pdf_queue_pk(firm_id: str) -> str:
    return f"FIRM#{firm_id}#PDFWANTED"


def list_queries(firm_id: str, states: Sequence[BillState]) -> list[tuple[str, str]]:
    """(index, partition key) of the fewest Queries that list exactly `states`: every group
    whose states are all asked for, then the single states left."""
    wanted = list(dict.fromkeys(BillState(s) for s in states))
    queries: list[tuple[str, str]] = []
    for members in LIST_GROUPS.values():
        if len(members) > 1 and all(m in wanted for m in members):
            queries.append((GROUP_INDEX, group_pk(firm_id, members[0])))
            wanted = [s for s in wanted if s not in members]
    queries += [(STATE_INDEX, state_pk(firm_id, s)) for s in wanted]
    return queries


def _date_or_none(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def list_keys(bill: Bill) -> list[tuple[str, Any]]:
    """The sort and search keys of a bill (domain/listing.py); none for a deleted bill, which
    only the id-ordered listing shows."""
    if bill.state is BillState.DELETED:
        return [(name, None) for name in LIST_KEY_ATTRIBUTES]
    stored = StoredBill(bill=bill)
    keys: list[tuple[str, Any]] = []
    for field, (_, attribute) in SORT_INDEXES.items():
        keys.append((attribute, index_key(bill.state, sort_value(stored, field), bill.id)))
    for search, (_, attribute) in SEARCH_INDEXES.items():
        if search is SearchField.CLIENT:
            continue
        value = search_value(stored, search)
        keys.append((attribute, index_key(bill.state, value, bill.id) if value else None))
    return keys


def clio_attributes(firm_id: str, bill: Bill, synced_at: str) -> list[tuple[str, Any]]:
    """The Clio-owned attributes of a bill item (None means absent). Product-owned attributes
    (paid_gl_cents, payment_link_id, last_sent_at) are never among them."""
    matter = bill.matter
    return [
        *list_keys(bill),
        ("type", "bill"),
        ("gsi1pk", state_pk(firm_id, bill.state)),
        ("gsi1sk", bill_sk(bill.id)),  # also the sort key of gsi2 and gsi3
        ("gsi2pk", group_pk(firm_id, bill.state)),
        # A new version of a sendable bill wants its PDF (the prefetch and sends fetch it).
        ("gsi3pk", pdf_queue_pk(firm_id) if is_sendable(bill) else None),
        ("bill_id", bill.id),
        ("etag", bill.etag),
        ("number", bill.number),
        ("state", bill.state.value),
        ("kind", bill.kind.value),
        ("client_id", bill.client.id),
        ("client_name", bill.client.name),
        ("client_email", bill.client.email),
        ("client_state", bill.client.state),
        ("matter_id", matter.id if matter else None),
        ("matter_display_number", matter.display_number if matter else None),
        ("matter_description", matter.description if matter else None),
        ("total_cents", bill.total_cents),
        ("outstanding_clio_cents", bill.outstanding_clio_cents),
        ("currency", bill.currency),
        ("issued_at", _date_or_none(bill.issued_at)),
        ("due_at", _date_or_none(bill.due_at)),
        ("clio_updated_at", iso_utc(bill.clio_updated_at)),
        ("clio_url", bill.clio_url),
        ("synced_at", synced_at),
    ]


def clio_item(firm_id: str, bill: Bill, synced_at: str) -> Item:
    """A whole new bill item, for a bill the store does not hold yet."""
    values = {"pk": firm_pk(firm_id), "sk": bill_sk(bill.id)}
    values.update({k: v for k, v in clio_attributes(firm_id, bill, synced_at) if v is not None})
    return to_item(values)


def clio_update(table: str, firm_id: str, bill: Bill, synced_at: str) -> Update:
    """The conditional Update that writes a bill's Clio-owned attributes, and only those.

    Product-owned attributes are never named, so they survive. The condition keeps a newer
    stored Clio version, and keeps a deleted bill deleted unless this write is itself the
    deletion (a delete is final in Clio, so a write that still says "awaiting payment" is a
    stale read that raced the delete)."""
    update = Update(table, {"pk": {"S": firm_pk(firm_id)}, "sk": {"S": bill_sk(bill.id)}})
    for attribute, value in clio_attributes(firm_id, bill, synced_at):
        update.set(attribute, value)
    clio_updated_at = iso_utc(bill.clio_updated_at)
    stamp = update.name("clio_updated_at")
    condition = f"(attribute_not_exists({stamp}) OR {stamp} <= {update.value(clio_updated_at)})"
    if bill.state is not BillState.DELETED:
        state = update.name("state")
        condition += f" AND (attribute_not_exists({state}) OR {state} <> {update.value(_DELETED)})"
    return update.when(condition)


def stored_bill_from_item(item: Item) -> StoredBill:
    data = from_item(item)
    matter = None
    if data.get("matter_id") is not None:
        matter = Matter(
            id=int(data["matter_id"]),
            display_number=str(data.get("matter_display_number") or ""),
            description=data.get("matter_description"),
        )
    issued_at, due_at = data.get("issued_at"), data.get("due_at")
    bill = Bill(
        id=int(data["bill_id"]),
        etag=str(data.get("etag") or ""),
        number=str(data.get("number") or ""),
        state=BillState(data["state"]),
        kind=BillKind(data.get("kind") or BillKind.INVOICE.value),
        client=Client(
            id=int(data.get("client_id") or 0),
            name=str(data.get("client_name") or ""),
            email=data.get("client_email"),
            state=data.get("client_state"),
        ),
        matter=matter,
        total_cents=int(data.get("total_cents") or 0),
        outstanding_clio_cents=int(data.get("outstanding_clio_cents") or 0),
        currency=str(data.get("currency") or "USD"),
        issued_at=date.fromisoformat(issued_at) if issued_at else None,
        due_at=date.fromisoformat(due_at) if due_at else None,
        clio_updated_at=require_iso(data["clio_updated_at"]),
        clio_url=str(data.get("clio_url") or ""),
    )
    return StoredBill(
        bill=bill,
        paid_gl_cents=int(data.get("paid_gl_cents") or 0),
        payment_link_id=data.get("payment_link_id"),
        last_sent_at=parse_iso(data.get("last_sent_at")),
        synced_at=parse_iso(data.get("synced_at")),
        pending_cents=int(data.get("pending_cents") or 0),
        refunded_cents=int(data.get("refunded_cents") or 0),
        baseline_outstanding_cents=(
            None
            if data.get("baseline_outstanding_cents") is None
            else int(data["baseline_outstanding_cents"])
        ),
        flags=tuple(sorted(data.get("flags") or ())),
        **{name: int(data.get(name) or 0) for name in MONEY_COUNTERS},
        pdf_etag=data.get("pdf_etag"),
        first_sent_at=parse_iso(data.get("first_sent_at")),
        reminders_paused=data.get("reminders_paused") is True,
        reminder_slot=int(data.get("reminder_slot") or 0),
        pending_reminder=_pending_reminder(data),
    )


def _pending_reminder(data: dict[str, Any]) -> tuple[str, str, datetime] | None:
    claimed_at = parse_iso(data.get("reminder_claimed_at"))
    batch_id, envelope_id = data.get("reminder_batch_id"), data.get("reminder_envelope_id")
    if claimed_at is None or not batch_id or not envelope_id:
        return None
    return str(batch_id), str(envelope_id), claimed_at


def _newest_per_id(bills: Iterable[Bill]) -> list[Bill]:
    # One transaction may not touch an item twice; of duplicates only the newest can win anyway.
    newest: dict[int, Bill] = {}
    for bill in bills:
        kept = newest.get(bill.id)
        if kept is None or iso_utc(bill.clio_updated_at) >= iso_utc(kept.clio_updated_at):
            newest[bill.id] = bill
    return list(newest.values())


class DynamoBillRepository(DynamoRepository):
    """BillRepository over one DynamoDB table (see docs/data-model.md)."""

    def get(self, firm_id: str, bill_id: int) -> StoredBill | None:
        item = self._get_item(firm_pk(firm_id), bill_sk(bill_id))
        return stored_bill_from_item(item) if item else None

    def get_many(self, firm_id: str, bill_ids: Sequence[int]) -> dict[int, StoredBill]:
        unique = list(dict.fromkeys(int(i) for i in bill_ids))
        found: dict[int, StoredBill] = {}
        for start in range(0, len(unique), BATCH_GET_LIMIT):
            keys = [
                {"pk": {"S": firm_pk(firm_id)}, "sk": {"S": bill_sk(bill_id)}}
                for bill_id in unique[start : start + BATCH_GET_LIMIT]
            ]
            for item in self._batch_get(keys):
                stored = stored_bill_from_item(item)
                found[stored.bill.id] = stored
        return found

    def etags(self, firm_id: str, bill_ids: Sequence[int]) -> dict[int, str]:
        unique = list(dict.fromkeys(int(i) for i in bill_ids))
        found: dict[int, str] = {}
        for start in range(0, len(unique), BATCH_GET_LIMIT):
            keys = [
                {"pk": {"S": firm_pk(firm_id)}, "sk": {"S": bill_sk(bill_id)}}
                for bill_id in unique[start : start + BATCH_GET_LIMIT]
            ]
            names = {
                "#b": "bill_id",
                "#e": "etag",
                "#g": "gsi2pk",
                "#l": "lsort_due",
                "#s": "state",
            }
            for item in self._batch_get(keys, "#b, #e, #g, #l, #s", names):
                data = from_item(item)
                # A bill stored before gsi2 (or the sort keys) existed is missing from some
                # listings: answering no etag makes the sync write it again, with its keys.
                current = "gsi2pk" in data and (
                    "lsort_due" in data or data.get("state") == _DELETED
                )
                found[int(data["bill_id"])] = str(data.get("etag") or "") if current else ""
        return found

    def save_clio_bills(
        self,
        firm_id: str,
        bills: Sequence[Bill],
        synced_at: datetime,
        existing_ids: Collection[int] | None = None,
    ) -> int:
        synced = iso_utc(synced_at)
        newest = _newest_per_id(bills)
        if existing_ids is None:
            new: list[Bill] = []
            known = newest
        else:
            new = [b for b in newest if b.id not in existing_ids]
            known = [b for b in newest if b.id in existing_ids]
        # A bill the store has never held has no product-owned attributes to keep, so whole
        # items go in batches of 25; a bill it holds gets a conditional update of Clio's part.
        self._put_new([clio_item(firm_id, b, synced) for b in new])
        return len(new) + self._save_one_by_one(
            [clio_update(self._table, firm_id, b, synced) for b in known]
        )

    def _put_new(self, items: list[Item]) -> None:
        for start in range(0, len(items), BATCH_WRITE_LIMIT):
            pending: dict[str, Any] = {
                self._table: [
                    {"PutRequest": {"Item": item}}
                    for item in items[start : start + BATCH_WRITE_LIMIT]
                ]
            }
            for attempt in range(self._max_attempts * 2):
                response = self._retrying(
                    partial(self._write, "batch_write_item", RequestItems=pending)
                )
                pending = response.get("UnprocessedItems") or {}
                if not pending:
                    break
                self._sleep(backoff_delay(attempt))
            else:
                raise StoreUnavailable("BatchWriteItem left items unprocessed after every retry")

    def _save_one_by_one(self, chunk: list[Update]) -> int:
        written = 0
        for update in chunk:
            try:
                self._update(update)
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
                continue  # a newer version is stored: this one is stale
            written += 1
        return written

    def mark_deleted(self, firm_id: str, bill_id: int, at: datetime) -> bool:
        update = Update(self._table, {"pk": {"S": firm_pk(firm_id)}, "sk": {"S": bill_sk(bill_id)}})
        update.set("state", _DELETED).set("gsi1pk", state_pk(firm_id, BillState.DELETED))
        update.set("gsi2pk", group_pk(firm_id, BillState.DELETED)).remove("gsi3pk")
        for attribute in LIST_KEY_ATTRIBUTES:  # sorted and searched lists leave it out
            update.remove(attribute)
        update.set("deleted_at", iso_utc(at))
        # A delete is final in Clio, so it wins over any stored version; only a bill we have and
        # have not already deleted changes.
        exists, state = update.name("pk"), update.name("state")
        update.when(f"attribute_exists({exists}) AND {state} <> {update.value(_DELETED)}")
        try:
            self._update(update)
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def page(
        self,
        firm_id: str,
        states: Sequence[BillState],
        page_size: int,
        before_bill_id: int | None,
    ) -> BillsPage:
        if page_size < 1:
            raise InvalidInput("page size must be at least 1", field="page_size")
        wanted = page_size + 1  # one more than a page tells whether another page follows
        newest: dict[int, StoredBill] = {}
        for index, partition in list_queries(firm_id, states):
            for stored in self._slice(index, partition, wanted, before_bill_id):
                # While an index catches up with a state change a bill can show twice.
                kept = newest.get(stored.bill.id)
                if kept is None or stored.bill.clio_updated_at > kept.bill.clio_updated_at:
                    newest[stored.bill.id] = stored
        ordered = sorted(newest.values(), key=lambda s: s.bill.id, reverse=True)
        if len(ordered) > page_size:
            kept_items = ordered[:page_size]
            return BillsPage(items=kept_items, last_bill_id=kept_items[-1].bill.id)
        return BillsPage(items=ordered, last_bill_id=None)

    def _slice(
        self, index: str, partition: str, wanted: int, before_bill_id: int | None
    ) -> list[StoredBill]:
        """Up to `wanted` bills of one index partition below the cursor, highest id first."""
        pk = "gsi1pk" if index == STATE_INDEX else "gsi2pk"
        items = self._index_items(index, pk, partition, wanted, before_bill_id)
        return [stored_bill_from_item(i) for i in items]

    def _index_items(
        self, index: str, pk: str, partition: str, wanted: int, before_bill_id: int | None
    ) -> list[Item]:
        condition = f"{pk} = :p"
        values: dict[str, Any] = {":p": {"S": partition}}
        if before_bill_id is not None:
            condition += " AND gsi1sk < :before"
            values[":before"] = {"S": bill_sk(before_bill_id)}
        return self._query_up_to(
            wanted,
            IndexName=index,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
            ScanIndexForward=False,
        )

    def _query_up_to(self, wanted: int, **query: Any) -> list[Item]:
        """Up to `wanted` items of one Query, paging on until enough are found or it ends:
        Limit is a ceiling, not a promise (a 1 MB response, or a filter dropping items, ends a
        page early)."""
        found: list[Item] = []
        start: Item | None = None
        while len(found) < wanted:
            args: dict[str, Any] = {
                "TableName": self._table,
                **query,
                "Limit": wanted - len(found),
            }
            if start:
                args["ExclusiveStartKey"] = start
            response = self._retrying(partial(self._read, "query", **args))
            found.extend(response.get("Items", []))
            start = response.get("LastEvaluatedKey")
            if not start:
                break
        return found

    # -- sorted and searched lists (L5) ---------------------------------------------------------

    def search_page(
        self,
        firm_id: str,
        states: Sequence[BillState],
        *,
        sort: Sort | None,
        query: str | None,
        overdue_on: date | None,
        page_size: int,
        cursor: Position | None,
    ) -> SortedPage:
        """One page of bills in some states, sorted (and searched, and only overdue ones).

        A sorted page is one Query per state of the sort's index, a range in order. A search
        first asks the search indexes for every match (one Query per state and field, at most
        MAX_SEARCH_MATCHES each) and sorts them; a search matching more than that (a client
        with thousands of bills) is dense, so it reads the listing's own order instead (the
        sort's index, or gsi1 for newest first) with the search as a filter, which then finds
        a page in the first few reads."""
        if page_size < 1:
            raise InvalidInput("The page size must be at least 1.", field="page_size")
        wanted_states = [BillState(s) for s in dict.fromkeys(states) if s is not BillState.DELETED]
        if overdue_on is not None:
            wanted_states = [s for s in wanted_states if s is BillState.AWAITING_PAYMENT]
        found: dict[int, StoredBill] = {}

        def keep(items: list[Item]) -> None:
            for item in items:
                stored = stored_bill_from_item(item)
                # While an index catches up with a change a bill can show twice: the newest.
                kept = found.get(stored.bill.id)
                if kept is None or stored.bill.clio_updated_at > kept.bill.clio_updated_at:
                    found[stored.bill.id] = stored

        dense = False
        if query is not None:
            for state in wanted_states:
                for index, attribute in SEARCH_INDEXES.values():
                    items = self._range(
                        index,
                        "#pk = :p AND begins_with(#k, :lo)",
                        {"#pk": "pk", "#k": attribute},
                        {":p": {"S": firm_pk(firm_id)}, ":lo": {"S": f"{state.value}#{query}"}},
                        True,
                        MAX_SEARCH_MATCHES + 1,
                    )
                    if len(items) > MAX_SEARCH_MATCHES:
                        dense = True
                        break
                    keep(items)
                if dense:
                    break
        if query is None or dense:
            found.clear()
            for state in wanted_states:
                keep(self._ordered(firm_id, state, sort, query, overdue_on, page_size, cursor))
            if sort is None and query is None:
                sort = Sort(SortField.DUE_AT)
        rows = [
            b
            for b in found.values()
            if b.bill.state in wanted_states
            and (overdue_on is None or is_overdue(b, overdue_on))
            and (query is None or matches(b, query))
            and after(b, sort, cursor)
        ]
        ordered = arrange(rows, sort)
        if len(ordered) > page_size:
            page = ordered[:page_size]
            return SortedPage(items=page, last=position_of(page[-1], sort))
        return SortedPage(items=ordered, last=None)

    def _ordered(
        self,
        firm_id: str,
        state: BillState,
        sort: Sort | None,
        query: str | None,
        overdue_on: date | None,
        page_size: int,
        cursor: Position | None,
    ) -> list[Item]:
        """The first bills of one state after the cursor in the listing's order: a range of
        the sort's index (gsi1 for newest first), with the search and overdue as filters."""
        values: dict[str, Any] = {}
        names: dict[str, str] = {}
        filters: list[str] = []
        if sort is None and query is not None:
            # Newest first: the state's id-ordered partition (gsi1).
            index = STATE_INDEX
            values[":p"] = {"S": state_pk(firm_id, state)}
            names["#pk"] = "gsi1pk"
            condition = "#pk = :p"
            if cursor is not None:
                names["#sk"] = "gsi1sk"
                condition += " AND #sk < :before"
                values[":before"] = {"S": bill_sk(cursor.bill_id)}
            forward = False
        else:
            chosen = sort or Sort(SortField.DUE_AT)
            index, attribute = SORT_INDEXES[chosen.field]
            low, high = f"{state.value}#", f"{state.value}$"  # '$' follows '#'
            if overdue_on is not None and chosen.field is SortField.DUE_AT:
                high = f"{state.value}#{overdue_on.isoformat()}"  # due before that day
            if cursor is not None:
                mark = index_key(state, cursor.value, cursor.bill_id)
                if chosen.descending:
                    high = min(high, mark)
                else:
                    low = max(low, mark)
            values.update({":p": {"S": firm_pk(firm_id)}, ":lo": {"S": low}, ":hi": {"S": high}})
            names.update({"#pk": "pk", "#k": attribute})
            condition = "#pk = :p AND #k BETWEEN :lo AND :hi"
            forward = not chosen.descending
        if query is not None:
            values[":q"] = {"S": f"{state.value}#{query}"}
            searched = [a for _, a in SEARCH_INDEXES.values()]
            names.update({f"#s{i}": a for i, a in enumerate(searched)})
            filters.append(
                "(" + " OR ".join(f"begins_with(#s{i}, :q)" for i in range(len(searched))) + ")"
            )
        if overdue_on is not None:
            values.update({":zero": {"N": "0"}, ":today": {"S": overdue_on.isoformat()}})
            names.update({"#o": "outstanding_clio_cents", "#d": "due_at"})
            filters.append("#o > :zero AND #d < :today")
        # The cursor's own bill may come back (BETWEEN is inclusive): one more than a page+1.
        return self._range(
            index, condition, names, values, forward, page_size + 2, " AND ".join(filters) or None
        )

    def _range(
        self,
        index: str,
        condition: str,
        names: dict[str, str],
        values: dict[str, Any],
        forward: bool,
        wanted: int,
        filter_expression: str | None = None,
    ) -> list[Item]:
        """Up to `wanted` items of one index Query (its filter applied), reading on past 1 MB
        responses and filtered-out items until enough are found or the range ends."""
        extra: dict[str, Any] = {}
        if filter_expression:
            extra["FilterExpression"] = filter_expression
        return self._query_up_to(
            wanted,
            IndexName=index,
            KeyConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ScanIndexForward=forward,
            **extra,
        )

    # -- bill PDFs ------------------------------------------------------------------------------

    def pdf_wanted(self, firm_id: str, limit: int) -> list[WantedPdf]:
        if limit < 1:
            return []
        items = self._index_items(PDF_INDEX, "gsi3pk", pdf_queue_pk(firm_id), limit, None)
        wanted = []
        for item in items:
            data = from_item(item)
            wanted.append(
                WantedPdf(
                    bill_id=int(data["bill_id"]),
                    etag=str(data.get("etag") or ""),
                    cached_etag=data.get("pdf_etag"),
                )
            )
        return wanted

    def mark_pdf_cached(self, firm_id: str, bill_id: int, etag: str) -> bool:
        update = Update(self._table, {"pk": {"S": firm_pk(firm_id)}, "sk": {"S": bill_sk(bill_id)}})
        update.set("pdf_etag", etag).remove("gsi3pk")
        # Only for the version still stored: a bill changed meanwhile stays wanted.
        update.when(f"{update.name('etag')} = {update.value(etag)}")
        try:
            self._update(update)
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True
