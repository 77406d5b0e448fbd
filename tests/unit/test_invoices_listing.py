"""The invoices list searched, sorted and overdue (L5) through the service: the parameters,
the cursor that continues only its own listing, and the default page left as it was."""

from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest

from billbridge.domain.bills import Matter
from billbridge.domain.errors import InvalidInput, NotFound
from billbridge.domain.listing import normalize_text, parse_query, parse_sort
from billbridge.services.invoices import InvoicesService
from tests.fakes import T0, FakeBills, FakeHeaders, FakeSettings, FakeSyncs, stored_bill

FIRM = "firm-a"
TODAY = date(2026, 11, 15)
DAY = timedelta(days=1)


def _bills() -> FakeBills:
    bills = FakeBills()
    rows = [
        # id, client, due, amount, state
        (1, "Priya Raman", date(2026, 11, 1), 30_000, "awaiting_payment"),
        (2, "Acme Ltd", date(2026, 11, 20), 10_000, "awaiting_payment"),
        (3, "Émile Zola", date(2026, 10, 1), 50_000, "awaiting_payment"),
        (4, "Bob Stone", date(2026, 9, 1), 20_000, "paid"),
        (5, "acme holdings", None, 40_000, "awaiting_payment"),
        (6, "Zed", date(2026, 8, 1), 0, "awaiting_payment"),
    ]
    for bill_id, name, due, amount, state in rows:
        stored = stored_bill(bill_id, total=amount, state=state)
        bill = replace(
            stored.bill,
            client=replace(stored.bill.client, name=name),
            due_at=due,
            matter=Matter(id=55, display_number="00042-Acme", description=None),
        )
        bills.items[(FIRM, bill_id)] = replace(stored, bill=bill)
    return bills


def _service(bills: FakeBills) -> InvoicesService:
    headers = FakeHeaders(FakeSettings(), FakeSyncs())
    return InvoicesService(
        bills=bills,
        headers=headers,
        sync_on_view=lambda firm_id, checkpoint: (None, None),
        clock=lambda: datetime(2026, 11, 15, 9, tzinfo=T0.tzinfo),
    )


def ids(page) -> list[int]:
    return [s.bill.id for s in page.items]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("due_at", [6, 4, 3, 1, 2, 5]),
        ("-due_at", [5, 2, 1, 3, 4, 6]),
        ("amount", [6, 2, 4, 1, 5, 3]),
        ("-amount", [3, 5, 1, 4, 2, 6]),
        ("client", [5, 2, 4, 3, 1, 6]),  # acme holdings, Acme Ltd, Bob, Émile, Priya, Zed
        ("-client", [6, 1, 3, 4, 2, 5]),
    ],
)
def test_given_a_sort_then_every_page_follows_it(sort, expected):
    service = _service(_bills())
    seen, cursor = [], None
    while True:
        page = service.list(FIRM, states=None, page_size=4, cursor=cursor, sort=sort)
        seen += ids(page)
        assert page.sort == sort
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == expected


def test_given_a_search_then_it_finds_by_client_number_or_matter_newest_first():
    service = _service(_bills())
    assert ids(service.list(FIRM, states=None, page_size=10, cursor=None, q="ACME")) == [5, 2]
    assert ids(service.list(FIRM, states=None, page_size=10, cursor=None, q="emile")) == [3]
    assert ids(service.list(FIRM, states=None, page_size=10, cursor=None, q="inv-00004")) == [4]
    page = service.list(FIRM, states=None, page_size=10, cursor=None, q="00042-ac", sort="amount")
    assert ids(page) == [6, 2, 4, 1, 5, 3] and page.q == "00042-ac"


def test_given_the_overdue_filter_then_unpaid_bills_with_a_balance_due_before_today():
    service = _service(_bills())
    page = service.list(FIRM, states=None, page_size=10, cursor=None, overdue=True)
    assert ids(page) == [3, 1] and page.sort == "due_at" and page.overdue
    first = service.list(FIRM, states=None, page_size=1, cursor=None, overdue=True)
    rest = service.list(FIRM, states=None, page_size=1, cursor=first.next_cursor, overdue=True)
    assert ids(first) + ids(rest) == [3, 1] and rest.next_cursor is None
    page = service.list(FIRM, states=None, page_size=10, cursor=None, overdue=True, sort="-amount")
    assert ids(page) == [3, 1]


def test_given_a_cursor_of_one_listing_then_another_listing_refuses_it():
    service = _service(_bills())
    first = service.list(FIRM, states=None, page_size=2, cursor=None, sort="amount")
    assert first.next_cursor
    for other in (
        {"sort": "-amount"},
        {"sort": "amount", "q": "acme"},
        {"sort": "amount", "overdue": True},
        {},
    ):
        with pytest.raises(NotFound) as refused:
            service.list(FIRM, states=None, page_size=2, cursor=first.next_cursor, **other)
        assert refused.value.code == "unknown_cursor"
    plain = service.list(FIRM, states=None, page_size=2, cursor=None)
    with pytest.raises(NotFound):
        service.list(FIRM, states=None, page_size=2, cursor=plain.next_cursor, sort="amount")


def test_given_no_search_sort_or_filter_then_the_default_page_is_newest_id_first():
    page = _service(_bills()).list(FIRM, states=None, page_size=10, cursor=None)
    assert ids(page) == [6, 5, 4, 3, 2, 1] and page.sort is None and page.q is None


@pytest.mark.parametrize("raw", ["due", "-", "amount-", "--client", "Client"])
def test_given_an_unknown_sort_then_400_names_the_field(raw):
    with pytest.raises(InvalidInput) as refused:
        parse_sort(raw)
    assert refused.value.field == "sort" and refused.value.message.startswith("Unknown sort")


def test_given_search_text_then_it_is_normalised_and_blank_is_no_search():
    assert normalize_text("  Émile\tZOLA ") == "emile zola"
    assert parse_query("   ") is None and parse_query(None) is None
    with pytest.raises(InvalidInput):
        parse_query("x" * 101)
    with pytest.raises(InvalidInput):
        parse_query("ab\ud800")


def test_given_a_bill_due_today_then_it_is_not_overdue_yet():
    bills = _bills()
    stored = bills.items[(FIRM, 2)]
    bills.items[(FIRM, 2)] = replace(stored, bill=replace(stored.bill, due_at=TODAY))
    page = _service(bills).list(FIRM, states=None, page_size=10, cursor=None, overdue=True)
    assert 2 not in ids(page)
    bills.items[(FIRM, 2)] = replace(stored, bill=replace(stored.bill, due_at=TODAY - DAY))
    page = _service(bills).list(FIRM, states=None, page_size=10, cursor=None, overdue=True)
    assert 2 in ids(page)
