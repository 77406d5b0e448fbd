"""The searched, sorted and overdue invoices list (L5) on DynamoDB (moto, the template's
tables): every order against a plain Python sort of the same bills, paging by cursor without
repeats or gaps, search by client, number and matter, the overdue filter, and the number of
Queries a page costs (never a Scan)."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date, timedelta

import pytest

from billbridge.domain.bills import DEFAULT_STATES, Bill, BillKind, BillState, Client, Matter
from billbridge.domain.listing import Sort, SortField, parse_query
from tests.integration.test_store import T0, Store, store  # noqa: F401  (the fixture)

FIRM = "firm-l"
TODAY = date(2024, 6, 1)
CLIENTS = ["Priya Raman", "Émile Zola", "acme ltd", "Acme Holdings", "Zed & Co", "Bob Stone"]
STATES = [BillState.AWAITING_PAYMENT] * 3 + [BillState.PAID, BillState.DRAFT, BillState.VOID]


def bills(count: int = 48, seed: int = 13) -> list[Bill]:
    rng = random.Random(seed)
    made = []
    for i in range(1, count + 1):
        due = None if i % 9 == 0 else TODAY + timedelta(days=rng.randint(-40, 40))
        amount = rng.choice([0, 500, 12_345, 99_999, 12_345, 250_000])  # ties on purpose
        made.append(
            Bill(
                id=1000 + i,
                etag=f"e{i}",
                number=f"INV-{i:05d}" if i % 4 else f"TR-{i:05d}",
                state=STATES[i % len(STATES)],
                kind=BillKind.TRUST_REQUEST if i % 4 == 0 else BillKind.INVOICE,
                client=Client(id=i % 6, name=CLIENTS[i % 6], email="c@example.com"),
                matter=(
                    Matter(id=i, display_number=f"{i % 5:05d}-Matter", description=None)
                    if i % 7
                    else None
                ),
                total_cents=amount,
                outstanding_clio_cents=amount,
                currency="USD",
                issued_at=None,
                due_at=due,
                clio_updated_at=T0,
                clio_url="https://app.clio.com/",
            )
        )
    return made


def expected_order(made: list[Bill], sort: Sort, states) -> list[int]:
    """The order a person expects, written without the code under test."""

    def key(bill: Bill):
        if sort.field is SortField.DUE_AT:
            value = bill.due_at or date.max
        elif sort.field is SortField.AMOUNT:
            value = bill.outstanding_clio_cents
        else:
            value = bill.client.name.lower().replace("é", "e")
        return (value, bill.id)

    chosen = [b for b in made if b.state in states]
    return [b.id for b in sorted(chosen, key=key, reverse=sort.descending)]


def all_pages(repo, states, **kwargs) -> list[list[int]]:
    pages, cursor = [], None
    while True:
        page = repo.search_page(FIRM, states, page_size=7, cursor=cursor, **kwargs)
        pages.append([s.bill.id for s in page.items])
        if page.last is None:
            return pages
        cursor = page.last


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("field", list(SortField))
def test_given_bills_when_sorted_then_pages_follow_the_order_with_no_repeat_or_gap(
    store: Store,  # noqa: F811
    field: SortField,
    descending: bool,
) -> None:
    made = bills()
    store.bills().save_clio_bills(FIRM, made, T0)
    repo = store.bills()
    sort = Sort(field, descending)

    pages = all_pages(repo, DEFAULT_STATES, sort=sort, query=None, overdue_on=None)

    assert [i for p in pages for i in p] == expected_order(made, sort, DEFAULT_STATES)
    assert all(len(p) == 7 for p in pages[:-1])


def test_given_the_default_states_when_a_sorted_page_is_read_then_it_costs_one_query_a_state(
    store: Store,  # noqa: F811
) -> None:
    store.bills().save_clio_bills(FIRM, bills(), T0)
    repo = store.bills()
    repo.search_page(
        FIRM,
        DEFAULT_STATES,
        sort=Sort(SortField.DUE_AT),
        query=None,
        overdue_on=None,
        page_size=10,
        cursor=None,
    )
    assert repo.read_requests == len(DEFAULT_STATES)


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        ("priya", lambda b: b.client.name == "Priya Raman"),
        ("EMILE z", lambda b: b.client.name == "Émile Zola"),
        ("acme", lambda b: b.client.name.lower().startswith("acme")),
        ("tr-000", lambda b: b.number.startswith("TR-")),
        ("inv-0001", lambda b: b.number.startswith("INV-0001")),
        ("00003-mat", lambda b: b.matter is not None and b.matter.display_number == "00003-Matter"),
        ("nobody", lambda b: False),
    ],
)
def test_given_a_search_then_it_finds_every_bill_whose_client_number_or_matter_starts_so(
    store: Store,  # noqa: F811
    text: str,
    wanted,
) -> None:
    made = bills()
    store.bills().save_clio_bills(FIRM, made, T0)
    repo = store.bills()
    sort = Sort(SortField.AMOUNT, descending=True)

    pages = all_pages(repo, DEFAULT_STATES, sort=sort, query=parse_query(text), overdue_on=None)

    found = [i for p in pages for i in p]
    expected = [i for i in expected_order(made, sort, DEFAULT_STATES)]
    by_id = {b.id: b for b in made}
    assert found == [i for i in expected if wanted(by_id[i])]


def test_given_the_overdue_filter_then_only_unpaid_bills_with_a_balance_due_before_today(
    store: Store,  # noqa: F811
) -> None:
    made = bills()
    store.bills().save_clio_bills(FIRM, made, T0)
    repo = store.bills()

    for sort in (Sort(SortField.DUE_AT), Sort(SortField.CLIENT, descending=True)):
        pages = all_pages(repo, DEFAULT_STATES, sort=sort, query=None, overdue_on=TODAY)
        expected = [
            i
            for i in expected_order(made, sort, (BillState.AWAITING_PAYMENT,))
            if (b := next(x for x in made if x.id == i)).outstanding_clio_cents > 0
            and b.due_at is not None
            and b.due_at < TODAY
        ]
        assert expected, "the seed has overdue bills"
        assert [i for p in pages for i in p] == expected


def test_given_a_bill_that_changes_or_is_deleted_then_the_sorted_list_follows(
    store: Store,  # noqa: F811
) -> None:
    made = bills()
    store.bills().save_clio_bills(FIRM, made, T0)
    repo = store.bills()
    first = next(b for b in made if b.state is BillState.AWAITING_PAYMENT)
    later = T0 + timedelta(hours=1)
    # Paid in Clio and renamed: it moves to the paid state and the new client name.
    changed = replace(
        first,
        state=BillState.PAID,
        client=replace(first.client, name="Aaron First"),
        clio_updated_at=later,
        etag="new",
    )
    assert repo.save_clio_bills(FIRM, [changed], later, existing_ids={first.id}) == 1
    page = repo.search_page(
        FIRM,
        (BillState.PAID,),
        sort=Sort(SortField.CLIENT),
        query=None,
        overdue_on=None,
        page_size=1,
        cursor=None,
    )
    assert [s.bill.id for s in page.items] == [first.id]
    found = repo.search_page(
        FIRM,
        DEFAULT_STATES,
        sort=None,
        query=parse_query("aaron"),
        overdue_on=None,
        page_size=50,
        cursor=None,
    )
    assert [s.bill.id for s in found.items] == [first.id]

    assert repo.mark_deleted(FIRM, first.id, later)
    gone = repo.search_page(
        FIRM,
        tuple(BillState),
        sort=None,
        query=parse_query("aaron"),
        overdue_on=None,
        page_size=50,
        cursor=None,
    )
    assert gone.items == []


@pytest.mark.parametrize("sort", [None, Sort(SortField.AMOUNT), Sort(SortField.DUE_AT, True)])
def test_given_a_search_matching_many_bills_then_it_reads_in_order_with_the_search_as_filter(
    store: Store,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    sort: Sort | None,
) -> None:
    import billbridge.adapters.dynamo_bills as module

    monkeypatch.setattr(module, "MAX_SEARCH_MATCHES", 3)  # "inv" matches dozens: dense
    made = bills()
    store.bills().save_clio_bills(FIRM, made, T0)
    repo = store.bills()

    pages = all_pages(repo, DEFAULT_STATES, sort=sort, query=parse_query("inv"), overdue_on=None)

    if sort is None:
        expected = sorted(
            (b.id for b in made if b.state in DEFAULT_STATES and b.number.startswith("INV")),
            reverse=True,
        )
    else:
        by_id = {b.id: b for b in made}
        expected = [
            i
            for i in expected_order(made, sort, DEFAULT_STATES)
            if by_id[i].number.startswith("INV")
        ]
    assert [i for p in pages for i in p] == expected
