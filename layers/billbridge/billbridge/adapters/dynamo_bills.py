"""The bill items of the app table (implements services.ports.BillRepository): it owns how a
bill is stored, how syncs and webhooks write Clio's part of it without touching ours, the
state-filtered, id-ordered listing over gsi1 (one state) and gsi2 (a group of states listed
together, the default filter among them), the queue of bills whose PDF is wanted (gsi3), the
sorted and searched lists (gsi4-gsi8) and the word-start search's word items (`WORD#` items
beside the bills, written in the same transaction as the bill they index). See
docs/data-model.md, "Bill" and "Sorted and searched lists".
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
    CONDITION_FAILED,
    TRANSACTION_BYTES,
    TRANSACTION_LIMIT,
    DynamoRepository,
    Item,
    StoreUnavailable,
    Update,
    action_bytes,
    cancellation_codes,
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
    client_search_texts,
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
# Word-start search: the bill's client texts as its word items were made from them (its state,
# then client_search_texts, one a line); absent when the bill has no word items (deleted, or
# stored before they existed). Every change of it and of the word items is one write.
SEARCH_TEXTS = "lsearch_client"
WORD_PREFIX = "WORD#"

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


def search_texts(bill: Bill) -> str | None:
    """The bill's `lsearch_client`: its state, then the texts a search by client compares
    (domain/listing.py, client_search_texts), one a line; none for a deleted bill. Normalised
    text never holds a newline, so the lines are unambiguous."""
    if bill.state is BillState.DELETED:
        return None
    return "\n".join([bill.state.value, *client_search_texts(bill.client.name)])


def word_sk(state: str, text: str, bill_id: int) -> str:
    return f"{WORD_PREFIX}{state}#{text}#{bill_id:020d}"


def word_sks(texts: str | None, bill_id: int) -> list[str]:
    """The sort keys of the word items a bill with these `lsearch_client` texts has: one per
    word after the first (the whole name is gsi6's key already)."""
    if texts is None:
        return []
    state, _whole, *later = texts.split("\n")
    return [word_sk(state, text, bill_id) for text in later]


def word_item(firm_id: str, sk: str, bill_id: int) -> Item:
    return to_item({"pk": firm_pk(firm_id), "sk": sk, "type": "bill_word", "bill_id": bill_id})


def clio_attributes(firm_id: str, bill: Bill, synced_at: str) -> list[tuple[str, Any]]:
    """The Clio-owned attributes of a bill item (None means absent). Product-owned attributes
    (paid_gl_cents, payment_link_id, last_sent_at) are never among them."""
    matter = bill.matter
    return [
        *list_keys(bill),
        (SEARCH_TEXTS, search_texts(bill)),
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


def texts_condition(update: Update, stored_texts: str | None) -> str:
    """The bill's `lsearch_client` is still what the writer read: the word items it replaces
    are those, exactly."""
    name = update.name(SEARCH_TEXTS)
    if stored_texts is None:
        return f"attribute_not_exists({name})"
    return f"{name} = {update.value(stored_texts)}"


def clio_update(
    table: str, firm_id: str, bill: Bill, synced_at: str, stored_texts: str | None
) -> Update:
    """The conditional Update that writes a bill's Clio-owned attributes, and only those.

    Product-owned attributes are never named, so they survive. The condition keeps a newer
    stored Clio version, and keeps a deleted bill deleted unless this write is itself the
    deletion (a delete is final in Clio, so a write that still says "awaiting payment" is a
    stale read that raced the delete), and holds only while the stored `lsearch_client` is
    `stored_texts` (the word items written beside it replace exactly those)."""
    update = Update(table, {"pk": {"S": firm_pk(firm_id)}, "sk": {"S": bill_sk(bill.id)}})
    for attribute, value in clio_attributes(firm_id, bill, synced_at):
        update.set(attribute, value)
    clio_updated_at = iso_utc(bill.clio_updated_at)
    stamp = update.name("clio_updated_at")
    condition = f"(attribute_not_exists({stamp}) OR {stamp} <= {update.value(clio_updated_at)})"
    if bill.state is not BillState.DELETED:
        state = update.name("state")
        condition += f" AND (attribute_not_exists({state}) OR {state} <> {update.value(_DELETED)})"
    condition += f" AND {texts_condition(update, stored_texts)}"
    return update.when(condition)


def condition_failure(exc: ClientError) -> tuple[bool, Item | None]:
    """Whether the write failed on its first action's condition, and the item as it was
    then (ReturnValuesOnConditionCheckFailure=ALL_OLD; none when the item is absent)."""
    code = error_code(exc)
    response: dict[str, Any] = dict(exc.response)
    if code == "ConditionalCheckFailedException":
        return True, response.get("Item")
    if code == "TransactionCanceledException" and cancellation_codes(exc)[:1] == [CONDITION_FAILED]:
        reasons = response.get("CancellationReasons") or [{}]
        return True, reasons[0].get("Item")
    return False, None


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


def _is_newer_or_deleted(stored: dict[str, Any], bill: Bill) -> bool:
    """Whether the stored bill keeps `bill` out: a newer Clio version, or deleted while `bill`
    is not (the two parts of clio_update's condition)."""
    stamp = stored.get("clio_updated_at")
    if stamp is not None and str(stamp) > iso_utc(bill.clio_updated_at):
        return True
    return stored.get("state") == _DELETED and bill.state is not BillState.DELETED


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
                "#t": SEARCH_TEXTS,
            }
            for item in self._batch_get(keys, "#b, #e, #g, #l, #s, #t", names):
                data = from_item(item)
                # A bill stored before gsi2 (or the sort keys, or its word items) existed is
                # missing from some listings: answering no etag makes the sync write it again,
                # with its keys.
                current = "gsi2pk" in data and (
                    ("lsort_due" in data and SEARCH_TEXTS in data) or data.get("state") == _DELETED
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
        # A bill the store has never held has no product-owned attributes to keep: whole items
        # with their word items go in transactions of up to 100 actions, each bill conditional
        # on its absence; a bill it holds gets a conditional update of Clio's part.
        written, present = self._insert_new(firm_id, new, synced)
        return written + self._save_known(firm_id, [*known, *present], synced)

    def _insert_new(self, firm_id: str, bills: list[Bill], synced: str) -> tuple[int, list[Bill]]:
        """Write bills new to the store, each with its word items, in as few transactions as
        fit (up to 100 actions and under 4 MB: Clio's texts have no length limit, so 100
        bill items can pass it); answers how many were written and the bills found stored
        meanwhile (a webhook was first: they take the conditional update instead)."""
        written, present = 0, list[Bill]()
        pack: list[tuple[Bill, list[dict[str, Any]]]] = []
        size = nbytes = 0
        for bill in bills:
            item = clio_item(firm_id, bill, synced)
            actions: list[dict[str, Any]] = [
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": item,
                        "ConditionExpression": "attribute_not_exists(#pk)",
                        "ExpressionAttributeNames": {"#pk": "pk"},
                    }
                },
                *(
                    {"Put": {"TableName": self._table, "Item": word_item(firm_id, sk, bill.id)}}
                    for sk in word_sks(search_texts(bill), bill.id)
                ),
            ]
            weight = sum(action_bytes(a) for a in actions)
            if pack and (
                size + len(actions) > TRANSACTION_LIMIT or nbytes + weight > TRANSACTION_BYTES
            ):
                done, found = self._insert_pack(pack)
                written, present, pack, size, nbytes = written + done, present + found, [], 0, 0
            pack.append((bill, actions))
            size += len(actions)
            nbytes += weight
        if pack:
            done, found = self._insert_pack(pack)
            written, present = written + done, present + found
        return written, present

    def _insert_pack(self, pack: list[tuple[Bill, list[dict[str, Any]]]]) -> tuple[int, list[Bill]]:
        remaining, present = list(pack), list[Bill]()
        while remaining:
            actions: list[dict[str, Any]] = []
            firsts = []
            for _, bill_actions in remaining:
                firsts.append(len(actions))
                actions += bill_actions
            try:
                self._transact(actions)
                return len(remaining), present
            except ClientError as exc:
                if error_code(exc) != "TransactionCanceledException":
                    raise
                codes = cancellation_codes(exc)
                stored = {
                    n
                    for n, at in enumerate(firsts)
                    if at < len(codes) and codes[at] == CONDITION_FAILED
                }
                if not stored:
                    raise
                present += [remaining[n][0] for n in sorted(stored)]
                remaining = [r for n, r in enumerate(remaining) if n not in stored]
        return 0, present

    def _stored_texts(self, firm_id: str, bill_ids: Sequence[int]) -> dict[int, str | None]:
        """The stored `lsearch_client` of those bills that exist (batched reads)."""
        found: dict[int, str | None] = {}
        unique = list(dict.fromkeys(bill_ids))
        for start in range(0, len(unique), BATCH_GET_LIMIT):
            keys = [
                {"pk": {"S": firm_pk(firm_id)}, "sk": {"S": bill_sk(bill_id)}}
                for bill_id in unique[start : start + BATCH_GET_LIMIT]
            ]
            names = {"#b": "bill_id", "#t": SEARCH_TEXTS}
            for item in self._batch_get(keys, "#b, #t", names):
                data = from_item(item)
                found[int(data["bill_id"])] = data.get(SEARCH_TEXTS)
        return found

    def _save_known(self, firm_id: str, bills: list[Bill], synced: str) -> int:
        if not bills:
            return 0
        stored = self._stored_texts(firm_id, [b.id for b in bills])
        return sum(self._save_one(firm_id, bill, synced, stored.get(bill.id)) for bill in bills)

    def _save_one(self, firm_id: str, bill: Bill, synced: str, stored_texts: str | None) -> int:
        """One bill's Clio part, conditional on its version and on its word items being those
        read: with no word item to change one UpdateItem, else one TransactWriteItems (the
        update, the new word items, the removal of the old). A condition that failed on
        another writer's word items (not on a newer version) is tried again on what that
        writer left, which the failure returns."""
        for _ in range(self._max_attempts):
            update = clio_update(self._table, firm_id, bill, synced, stored_texts)
            words = self._word_changes(firm_id, bill.id, stored_texts, search_texts(bill))
            try:
                self._write_checked(update, words)
                return 1
            except ClientError as exc:
                failed, item = condition_failure(exc)
                if not failed:
                    raise
            data = from_item(item) if item else None
            if data is not None and _is_newer_or_deleted(data, bill):
                return 0  # a newer version is stored (or the bill was deleted): this one is stale
            stored_texts = data.get(SEARCH_TEXTS) if data else None
        raise StoreUnavailable("a bill's word items kept changing under every attempt")

    def _word_changes(
        self, firm_id: str, bill_id: int, old: str | None, new: str | None
    ) -> list[dict[str, Any]]:
        """Put every word item of `new` (idempotent) and delete those of `old` it has not, when
        the texts change; nothing when they do not."""
        if old == new:
            return []
        keep = word_sks(new, bill_id)
        gone = [sk for sk in word_sks(old, bill_id) if sk not in set(keep)]
        return [
            *(
                {"Put": {"TableName": self._table, "Item": word_item(firm_id, sk, bill_id)}}
                for sk in keep
            ),
            *(
                {
                    "Delete": {
                        "TableName": self._table,
                        "Key": {"pk": {"S": firm_pk(firm_id)}, "sk": {"S": sk}},
                    }
                }
                for sk in gone
            ),
        ]

    def _write_checked(self, update: Update, words: list[dict[str, Any]]) -> None:
        """The update alone (UpdateItem) or with its word items (TransactWriteItems, the update
        first); a failed condition returns the item as it was."""
        request = {**update.request(), "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
        if not words:
            self._retrying(partial(self._write, "update_item", **request))
        else:
            self._transact([{"Update": request}, *words])

    def mark_deleted(self, firm_id: str, bill_id: int, at: datetime) -> bool:
        stored_texts = self._stored_texts(firm_id, [bill_id]).get(bill_id)
        for _ in range(self._max_attempts):
            key = {"pk": {"S": firm_pk(firm_id)}, "sk": {"S": bill_sk(bill_id)}}
            update = Update(self._table, key)
            update.set("state", _DELETED).set("gsi1pk", state_pk(firm_id, BillState.DELETED))
            update.set("gsi2pk", group_pk(firm_id, BillState.DELETED)).remove("gsi3pk")
            for attribute in (*LIST_KEY_ATTRIBUTES, SEARCH_TEXTS):  # searches leave it out
                update.remove(attribute)
            update.set("deleted_at", iso_utc(at))
            # A delete is final in Clio, so it wins over any stored version; only a bill we
            # have and have not already deleted changes, with its word items as read.
            exists, state = update.name("pk"), update.name("state")
            update.when(
                f"attribute_exists({exists}) AND {state} <> {update.value(_DELETED)}"
                f" AND {texts_condition(update, stored_texts)}"
            )
            words = self._word_changes(firm_id, bill_id, stored_texts, None)
            try:
                self._write_checked(update, words)
                return True
            except ClientError as exc:
                failed, item = condition_failure(exc)
                if not failed:
                    raise
            data = from_item(item) if item else None
            if data is None or data.get("state") == _DELETED:
                return False
            stored_texts = data.get(SEARCH_TEXTS)
        raise StoreUnavailable("a bill's word items kept changing under every attempt")

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
        MAX_SEARCH_MATCHES each), and the word items for the bills whose client has a later
        word starting so (one Query per state, then BatchGetItem of those bills not found
        yet), and sorts them; every bill is checked against the query again, so a word item
        left by a change never shows a bill that does not match. A search matching more than
        that (a client with thousands of bills) is dense, so it reads the listing's own order
        instead (the sort's index, or gsi1 for newest first) with the search as a filter,
        which then finds a page in the first few reads."""
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
        by_word: list[int] = []
        if query is not None:
            for state in wanted_states:
                ids = self._word_matches(firm_id, state, query, MAX_SEARCH_MATCHES + 1)
                if len(ids) > MAX_SEARCH_MATCHES:
                    dense = True
                    break
                by_word += ids
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
        if query is not None and not dense:
            # The bills found by a later word of their client's name alone, read as they are
            # now (consistently): `matches` below checks them against the query again.
            keep(self._bills_by_id(firm_id, [i for i in by_word if i not in found]))
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
            # A line of lsearch_client starting with the query: the name from one of its words.
            values[":nq"] = {"S": f"\n{query}"}
            searched = [a for _, a in SEARCH_INDEXES.values()]
            names.update({f"#s{i}": a for i, a in enumerate(searched)})
            names["#w"] = SEARCH_TEXTS
            clauses = [f"begins_with(#s{i}, :q)" for i in range(len(searched))]
            filters.append("(" + " OR ".join([*clauses, "contains(#w, :nq)"]) + ")")
        if overdue_on is not None:
            values.update({":zero": {"N": "0"}, ":today": {"S": overdue_on.isoformat()}})
            names.update({"#o": "outstanding_clio_cents", "#d": "due_at"})
            filters.append("#o > :zero AND #d < :today")
        # The cursor's own bill may come back (BETWEEN is inclusive): one more than a page+1.
        return self._range(
            index, condition, names, values, forward, page_size + 2, " AND ".join(filters) or None
        )

    def _word_matches(self, firm_id: str, state: BillState, query: str, wanted: int) -> list[int]:
        """Ids of the bills in `state` whose client has a word after the first from which the
        name starts with `query` (their word items), up to `wanted` bills; read consistently.
        A bill can own several matching items ("smith" and "John Smith Smithson"), so the
        Query pages on until it has `wanted` distinct bills or the range ends: counting items
        would stop short and leave bills out."""
        ids: dict[int, None] = {}
        start: Item | None = None
        while len(ids) < wanted:
            args: dict[str, Any] = {
                "TableName": self._table,
                "KeyConditionExpression": "#pk = :p AND begins_with(#sk, :w)",
                "ExpressionAttributeNames": {"#pk": "pk", "#sk": "sk", "#b": "bill_id"},
                "ExpressionAttributeValues": {
                    ":p": {"S": firm_pk(firm_id)},
                    ":w": {"S": f"{WORD_PREFIX}{state.value}#{query}"},
                },
                "ProjectionExpression": "#b",
                "ConsistentRead": True,
                "Limit": wanted - len(ids),
            }
            if start:
                args["ExclusiveStartKey"] = start
            response = self._retrying(partial(self._read, "query", **args))
            for item in response.get("Items", []):
                ids[int(from_item(item)["bill_id"])] = None
            start = response.get("LastEvaluatedKey")
            if not start:
                break
        return list(ids)

    def _bills_by_id(self, firm_id: str, bill_ids: Sequence[int]) -> list[Item]:
        unique = list(dict.fromkeys(bill_ids))
        items: list[Item] = []
        for start in range(0, len(unique), BATCH_GET_LIMIT):
            keys = [
                {"pk": {"S": firm_pk(firm_id)}, "sk": {"S": bill_sk(bill_id)}}
                for bill_id in unique[start : start + BATCH_GET_LIMIT]
            ]
            items += self._batch_get(keys, consistent=True)
        return items

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
