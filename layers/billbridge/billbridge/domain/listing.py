"""Searching and sorting the invoices list (L5): what `q`, `sort` and `overdue` mean, and the
sort and search keys a bill is indexed by (docs/data-model.md, "Sorted and searched lists").

- `sort`: `due_at`, `amount` (Outstanding (Clio)) or `client` (the client's name), ascending,
  or descending with a leading `-`. Ties go by Clio id, so the order is total and stable.
- `q`: word-start search. It finds a bill when the client's name, read from the start of any
  of its words, begins with the query ("smith" and "john sm" find "John Smith", "ltd" and
  "holdings l" find "Acme Holdings Ltd"; "smith j" does not: the query's words are the name's
  words in their order), or when the bill number or the matter's display number begins with
  it. Case- and accent-insensitive, spaces collapsed. A word starts at a letter or digit that
  follows anything else ("O'Brien" has the words "o" and "brien"); the first
  MAX_NAME_WORDS words of a name are found so.
- `overdue`: awaiting payment, a balance in Clio, and due before today (the firm's calendar
  date in UTC).

Every key is `{state}#{value}#{bill id:020d}`, so one Query per state reads a range in order.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from billbridge.domain.bills import BillState, StoredBill
from billbridge.domain.errors import InvalidInput

# A bill without a due date sorts after every dated one (ascending).
NO_DUE_DATE = "9999-12-31"
# Outstanding amounts are shifted so that negative balances (credits) sort below zero.
AMOUNT_OFFSET = 10**14
KEY_TEXT_CHARS = 120  # of a name, number or matter kept in a key (enough to order and find)
MIN_QUERY_CHARS = 1
MAX_QUERY_CHARS = 100
# A search reads every match to sort them: beyond this many, it asks for more letters.
MAX_SEARCH_MATCHES = 1000
# Words of a client's name a search finds by their start (each word after the first is one
# index item of the bill: docs/data-model.md, "Word-start search").
MAX_NAME_WORDS = 16


class SortField(StrEnum):
    DUE_AT = "due_at"
    AMOUNT = "amount"
    CLIENT = "client"


class SearchField(StrEnum):
    CLIENT = "client"
    NUMBER = "number"
    MATTER = "matter"


SORT_VALUES = tuple(
    f"{sign}{field.value}" for field in SortField for sign in ("", "-")
)  # what `sort` may be


@dataclass(frozen=True)
class Sort:
    field: SortField
    descending: bool = False

    @property
    def text(self) -> str:
        return f"{'-' if self.descending else ''}{self.field.value}"


def parse_sort(raw: str | None) -> Sort | None:
    if raw is None or raw == "":
        return None
    descending = raw.startswith("-")
    try:
        field = SortField(raw.removeprefix("-"))
    except ValueError:
        allowed = ", ".join(SORT_VALUES)
        raise InvalidInput(f"Unknown sort {raw!r}. Allowed: {allowed}.", field="sort") from None
    return Sort(field, descending)


def normalize_text(text: str | None) -> str:
    """Case-, accent- and spacing-insensitive text for keys and queries ("Émile  Zola" ->
    "emile zola")."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"\s+", " ", plain.casefold()).strip()[:KEY_TEXT_CHARS]


def parse_query(raw: str | None) -> str | None:
    """The normalised search text, or None for no search."""
    if raw is None:
        return None
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: not text DynamoDB can compare
        raise InvalidInput("The search text is not valid text.", field="q") from None
    text = normalize_text(raw)
    if not text:
        return None
    if len(raw) > MAX_QUERY_CHARS:
        raise InvalidInput(
            f"The search text is longer than {MAX_QUERY_CHARS} characters.", field="q"
        )
    return text


def word_starts(text: str) -> list[int]:
    """Where the words of a normalised text begin: a letter or digit at the start or after
    anything that is neither (a space, a hyphen, an apostrophe, a bracket)."""
    return [i for i, c in enumerate(text) if c.isalnum() and (i == 0 or not text[i - 1].isalnum())]


def client_search_texts(name: str | None) -> list[str]:
    """What a search by client compares the query's start with: the whole normalised name,
    then the name read from each later word on, for the first MAX_NAME_WORDS words
    ("Acme Holdings Ltd" -> ["acme holdings ltd", "holdings ltd", "ltd"])."""
    whole = normalize_text(name)
    later = [whole[i:] for i in word_starts(whole)[:MAX_NAME_WORDS] if i > 0]
    return [whole, *later]


def sort_value(stored: StoredBill, field: SortField) -> str:
    """The part of a bill's sort key between its state and its id."""
    bill = stored.bill
    if field is SortField.DUE_AT:
        return bill.due_at.isoformat() if bill.due_at else NO_DUE_DATE
    if field is SortField.AMOUNT:
        return f"{max(0, bill.outstanding_clio_cents + AMOUNT_OFFSET):015d}"
    return normalize_text(bill.client.name)


def search_value(stored: StoredBill, field: SearchField) -> str | None:
    bill = stored.bill
    if field is SearchField.CLIENT:
        return normalize_text(bill.client.name)
    if field is SearchField.NUMBER:
        return normalize_text(bill.number)
    return normalize_text(bill.matter.display_number) if bill.matter else None


def index_key(state: BillState, value: str, bill_id: int) -> str:
    return f"{state.value}#{value}#{bill_id:020d}"


def is_overdue(stored: StoredBill, today: date) -> bool:
    bill = stored.bill
    return (
        bill.state is BillState.AWAITING_PAYMENT
        and bill.outstanding_clio_cents > 0
        and bill.due_at is not None
        and bill.due_at < today
    )


def matches(stored: StoredBill, query: str) -> bool:
    """Whether a search finds the bill: the client's name from the start of one of its words,
    the bill number or the matter's display number starts with the query."""
    if any(text.startswith(query) for text in client_search_texts(stored.bill.client.name)):
        return True
    return any(
        (search_value(stored, f) or "").startswith(query)
        for f in (SearchField.NUMBER, SearchField.MATTER)
    )


@dataclass(frozen=True)
class Position:
    """Where a sorted page ends: the last bill's sort value and id (the cursor's content)."""

    value: str
    bill_id: int


def position_of(stored: StoredBill, sort: Sort | None) -> Position:
    """A bill's place in a listing; with no sort, newest Clio id first."""
    if sort is None:
        return Position("", stored.bill.id)
    return Position(sort_value(stored, sort.field), stored.bill.id)


def order_key(stored: StoredBill, sort: Sort | None) -> tuple[str, int]:
    position = position_of(stored, sort)
    return (position.value, position.bill_id)


def after(stored: StoredBill, sort: Sort | None, cursor: Position | None) -> bool:
    """Whether the bill comes after the cursor in the listing's order."""
    if cursor is None:
        return True
    key = order_key(stored, sort)
    mark = (cursor.value, cursor.bill_id)
    descending = sort is None or sort.descending
    return key < mark if descending else key > mark


def arrange(bills: list[StoredBill], sort: Sort | None) -> list[StoredBill]:
    descending = sort is None or sort.descending
    return sorted(bills, key=lambda s: order_key(s, sort), reverse=descending)
