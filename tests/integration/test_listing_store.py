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


# -- word-start search: the word items ---------------------------------------------------------


def word_items(store: Store, bill_id: int) -> set[str]:  # noqa: F811
    """The word items of one bill as the table holds them (their sort keys)."""
    items = store.client.query(
        TableName=store.table,
        KeyConditionExpression="pk = :p AND begins_with(sk, :w)",
        ExpressionAttributeValues={":p": {"S": f"FIRM#{FIRM}"}, ":w": {"S": "WORD#"}},
        ConsistentRead=True,
    )["Items"]
    return {i["sk"]["S"] for i in items if i["bill_id"]["N"] == str(bill_id)}


def expected_words(bill: Bill) -> set[str]:
    """The word items a person expects of a bill: one per word after the first, the name read
    from that word on, under the bill's state; none once deleted."""
    if bill.state is BillState.DELETED:
        return set()
    name = bill.client.name.lower().replace("é", "e").replace("  ", " ")
    words = name.split(" ")
    return {
        f"WORD#{bill.state.value}#{' '.join(words[i:])}#{bill.id:020d}"
        for i in range(1, len(words))
        if words[i][:1].isalnum()  # "&" begins no word
    }


def searched(repo, text: str, states=DEFAULT_STATES) -> list[int]:
    page = repo.search_page(
        FIRM,
        states,
        sort=None,
        query=parse_query(text),
        overdue_on=None,
        page_size=200,
        cursor=None,
    )
    assert page.last is None
    return [s.bill.id for s in page.items]


def one_bill(name: str, *, bill_id: int = 7, state=BillState.AWAITING_PAYMENT, at=T0) -> Bill:
    return replace(
        bills(1)[0],
        id=bill_id,
        state=state,
        client=Client(id=1, name=name, email="c@example.com"),
        clio_updated_at=at,
        etag=f"e-{at.timestamp():.0f}-{name}",
    )


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        ("raman", lambda b: b.client.name == "Priya Raman"),
        ("zola", lambda b: b.client.name == "Émile Zola"),
        ("ltd", lambda b: b.client.name == "acme ltd"),
        ("holdings", lambda b: b.client.name == "Acme Holdings"),
        ("co", lambda b: b.client.name == "Zed & Co"),
        ("& co", lambda b: False),  # a word starts at a letter or digit
        ("stone", lambda b: b.client.name == "Bob Stone"),
        ("raman p", lambda b: False),  # the name's words in their order
        ("aman", lambda b: False),  # inside a word
    ],
)
def test_given_a_search_then_it_finds_the_bills_whose_client_has_a_word_starting_so(
    store: Store,  # noqa: F811
    text: str,
    wanted,
) -> None:
    made = bills()
    store.bills().save_clio_bills(FIRM, made, T0)
    repo = store.bills()
    sort = Sort(SortField.DUE_AT)

    pages = all_pages(repo, DEFAULT_STATES, sort=sort, query=parse_query(text), overdue_on=None)

    by_id = {b.id: b for b in made}
    expected = [i for i in expected_order(made, sort, DEFAULT_STATES) if wanted(by_id[i])]
    assert [i for p in pages for i in p] == expected
    if text in ("raman", "ltd"):
        assert expected, "the seed has such bills"


def test_given_saved_bills_then_each_has_exactly_its_word_items(
    store: Store,  # noqa: F811
) -> None:
    made = bills()
    repo = store.bills()
    half = len(made) // 2
    repo.save_clio_bills(FIRM, made[:half], T0, existing_ids=())  # a full sync's new bills
    repo.save_clio_bills(FIRM, made[half:], T0)  # webhooks

    for bill in made:
        assert word_items(store, bill.id) == expected_words(bill), bill.client.name


def test_given_a_renamed_client_then_the_old_word_no_longer_finds_the_bill(
    store: Store,  # noqa: F811
) -> None:
    repo = store.bills()
    repo.save_clio_bills(FIRM, [one_bill("John Smith")], T0, existing_ids=())
    assert searched(repo, "smith") == [7]
    later = T0 + timedelta(minutes=5)

    renamed = one_bill("John Carter Holdings", at=later)
    assert repo.save_clio_bills(FIRM, [renamed], later, existing_ids={7}) == 1

    assert searched(repo, "smith") == []
    assert searched(repo, "carter") == [7]
    assert searched(repo, "holdings") == [7]
    assert word_items(store, 7) == expected_words(renamed)


def test_given_a_state_change_then_the_word_items_move_with_it(
    store: Store,  # noqa: F811
) -> None:
    repo = store.bills()
    repo.save_clio_bills(FIRM, [one_bill("John Smith")], T0)
    later = T0 + timedelta(minutes=5)

    paid = one_bill("John Smith", state=BillState.PAID, at=later)
    assert repo.save_clio_bills(FIRM, [paid], later) == 1

    assert searched(repo, "smith", (BillState.AWAITING_PAYMENT,)) == []
    assert searched(repo, "smith", (BillState.PAID,)) == [7]
    assert word_items(store, 7) == expected_words(paid)


def test_given_a_deleted_bill_then_no_word_item_is_left_and_a_stale_write_cannot_bring_one(
    store: Store,  # noqa: F811
) -> None:
    repo = store.bills()
    repo.save_clio_bills(FIRM, [one_bill("John Smith")], T0)
    later = T0 + timedelta(minutes=5)

    assert repo.mark_deleted(FIRM, 7, later)

    assert word_items(store, 7) == set()
    assert searched(repo, "smith", tuple(BillState)) == []
    # A webhook of a newer version that raced the delete: the bill stays deleted, no words.
    assert repo.save_clio_bills(FIRM, [one_bill("John Smith", at=later)], later) == 0
    assert word_items(store, 7) == set()
    # Deleted in Clio and written by the sync's deleted pass: the same.
    repo.save_clio_bills(FIRM, [one_bill("Ann Lee")], T0)
    assert word_items(store, 7) == set()
    gone = one_bill("Ann Lee Stone", bill_id=8, state=BillState.AWAITING_PAYMENT)
    repo.save_clio_bills(FIRM, [gone], T0)
    assert word_items(store, 8) == expected_words(gone)
    repo.save_clio_bills(
        FIRM, [replace(gone, state=BillState.DELETED, clio_updated_at=later)], later
    )
    assert word_items(store, 8) == set()
    assert searched(repo, "stone", tuple(BillState)) == []


def test_given_a_stale_word_item_then_the_search_never_shows_a_bill_that_does_not_match(
    store: Store,  # noqa: F811
) -> None:
    repo = store.bills()
    repo.save_clio_bills(FIRM, [one_bill("John Smith")], T0)
    # A word item no bill owns now (as a writer that died half way might have left one).
    for sk in (f"WORD#awaiting_payment#ghost#{7:020d}", f"WORD#awaiting_payment#gh#{99:020d}"):
        store.client.put_item(
            TableName=store.table,
            Item={"pk": {"S": f"FIRM#{FIRM}"}, "sk": {"S": sk}, "bill_id": {"N": sk[-20:]}},
        )

    assert searched(repo, "ghost") == []
    assert searched(repo, "gh") == []
    assert searched(repo, "smith") == [7]


def test_given_a_bill_stored_before_word_items_then_the_next_sync_gives_it_its_words(
    store: Store,  # noqa: F811
) -> None:
    repo = store.bills()
    bill = one_bill("John Smith")
    repo.save_clio_bills(FIRM, [bill], T0)
    # As an older version stored it: no word items, no lsearch_client.
    for sk in word_items(store, 7):
        store.client.delete_item(
            TableName=store.table, Key={"pk": {"S": f"FIRM#{FIRM}"}, "sk": {"S": sk}}
        )
    store.client.update_item(
        TableName=store.table,
        Key={"pk": {"S": f"FIRM#{FIRM}"}, "sk": {"S": f"BILL#{7:020d}"}},
        UpdateExpression="REMOVE lsearch_client",
    )
    assert searched(repo, "smith") == []

    # The sync's etags read answers none for it, so the sync writes it again.
    assert repo.etags(FIRM, [7]) == {7: ""}
    writes = repo.write_requests
    assert repo.save_clio_bills(FIRM, [bill], T0, existing_ids={7}) == 1
    assert repo.write_requests - writes == 1  # the update and its word items, one transaction

    assert searched(repo, "smith") == [7]
    assert repo.etags(FIRM, [7]) == {7: bill.etag}


class WriteFirst:
    """A client that lets another writer finish a write of the same bill just before this
    one's first write reaches DynamoDB: the race of a sync page and a webhook, made exact."""

    def __init__(self, client, other) -> None:
        self._client = client
        self._other = other

    def __getattr__(self, name: str):
        attribute = getattr(self._client, name)
        if name not in ("update_item", "transact_write_items") or self._other is None:
            return attribute

        def call(**kwargs):
            other, self._other = self._other, None
            other()
            return attribute(**kwargs)

        return call


@pytest.mark.parametrize("sync_is_newer", [True, False])
@pytest.mark.parametrize("sync_knows_the_bill", [True, False])
def test_given_a_sync_page_and_a_webhook_racing_on_one_bill_then_its_words_are_the_winners(
    store: Store,  # noqa: F811
    sync_is_newer: bool,
    sync_knows_the_bill: bool,
) -> None:
    t1, t2, t3 = (T0 + timedelta(minutes=m) for m in (1, 2, 3))
    if sync_knows_the_bill:
        store.bills().save_clio_bills(FIRM, [one_bill("John Smith")], T0)
    # The webhook renames the client (and the bill was paid) between the sync's read of what
    # is stored and its write; the sync's own version renames it otherwise.
    webhook = one_bill("Mary Carter Stone", state=BillState.PAID, at=t1 if sync_is_newer else t3)
    sync = one_bill("Jane Wu Holdings Ltd", at=t2)

    def webhook_writes() -> None:
        assert store.bills().save_clio_bills(FIRM, [webhook], t1) == 1

    repo = store.bills(WriteFirst(store.client, webhook_writes))
    existing = {7} if sync_knows_the_bill else set()
    written = repo.save_clio_bills(FIRM, [sync], t2, existing_ids=existing)

    winner = sync if sync_is_newer else webhook
    assert written == (1 if sync_is_newer else 0)
    stored = store.bills().get(FIRM, 7)
    assert stored is not None and stored.bill.client.name == winner.client.name
    assert word_items(store, 7) == expected_words(winner)
    reader = store.bills()
    alive = tuple(s for s in BillState if s is not BillState.DELETED)
    for word in ("smith", "carter", "stone", "wu", "holdings", "ltd"):
        words = winner.client.name.lower().split()
        expected = [7] if any(w.startswith(word) for w in words) else []
        assert searched(reader, word, alive) == expected, word


def test_given_a_delete_racing_a_rename_then_no_word_item_is_left(
    store: Store,  # noqa: F811
) -> None:
    store.bills().save_clio_bills(FIRM, [one_bill("John Smith")], T0)
    later = T0 + timedelta(minutes=1)

    def rename() -> None:
        assert store.bills().save_clio_bills(FIRM, [one_bill("Ann Lee Stone", at=later)], later)

    repo = store.bills(WriteFirst(store.client, rename))
    assert repo.mark_deleted(FIRM, 7, later)

    assert word_items(store, 7) == set()
    assert store.bills().get(FIRM, 7).bill.state is BillState.DELETED  # type: ignore[union-attr]


def test_given_many_writers_of_one_bill_at_once_then_its_word_items_are_its_last_names(
    store: Store,  # noqa: F811
) -> None:
    import threading

    names = ["John Smith", "Mary Carter Stone", "Jane Wu Holdings Ltd", "Ann Lee", "Bo"]
    states = [BillState.AWAITING_PAYMENT, BillState.PAID]
    versions = [
        one_bill(names[i % len(names)], state=states[i % 2], at=T0 + timedelta(seconds=i))
        for i in range(12)
    ]
    rng = random.Random(5)
    rng.shuffle(versions)
    start = threading.Barrier(len(versions))

    def write(bill: Bill) -> None:
        repo = store.bills()
        start.wait()
        repo.save_clio_bills(FIRM, [bill], T0)

    threads = [threading.Thread(target=write, args=(b,)) for b in versions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    newest = max(versions, key=lambda b: b.clio_updated_at)
    stored = store.bills().get(FIRM, 7)
    assert stored is not None and stored.bill.client.name == newest.client.name
    assert word_items(store, 7) == expected_words(newest)


def test_given_a_word_search_matching_many_bills_then_the_dense_read_finds_them_by_word(
    store: Store,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import billbridge.adapters.dynamo_bills as module

    monkeypatch.setattr(module, "MAX_SEARCH_MATCHES", 2)  # "raman" matches more: dense
    made = bills()
    store.bills().save_clio_bills(FIRM, made, T0)
    repo = store.bills()

    found = [
        i
        for p in all_pages(
            repo,
            DEFAULT_STATES,
            sort=Sort(SortField.AMOUNT),
            query=parse_query("raman"),
            overdue_on=None,
        )
        for i in p
    ]

    expected = [
        i
        for i in expected_order(made, Sort(SortField.AMOUNT), DEFAULT_STATES)
        if next(b for b in made if b.id == i).client.name == "Priya Raman"
    ]
    assert len(expected) > 2
    assert found == expected


def test_given_a_search_then_it_costs_four_queries_a_state_and_reads_of_word_matches(
    store: Store,  # noqa: F811
) -> None:
    store.bills().save_clio_bills(FIRM, bills(), T0)
    repo = store.bills()

    searched(repo, "raman")  # by a later word only: its bills are read by BatchGetItem

    # Per default state: gsi6, gsi7, gsi8 and the word items; then one BatchGetItem.
    assert repo.read_requests == 4 * len(DEFAULT_STATES) + 1


def test_given_clients_with_two_words_starting_so_then_the_search_still_finds_every_bill(
    store: Store,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import billbridge.adapters.dynamo_bills as module

    # Two bills whose client has two later words starting with "smith" (two word items each
    # match) and one whose client has one: three bills, more than the limit of two, so the
    # search reads them densely; none may be left out because a bill's items came twice.
    monkeypatch.setattr(module, "MAX_SEARCH_MATCHES", 2)
    made = [
        one_bill("Ann Smith Smithers", bill_id=7),
        one_bill("Bo Smith Smithson", bill_id=8),
        one_bill("Cy Smithy", bill_id=9),
        one_bill("Di Jones", bill_id=10),
    ]
    store.bills().save_clio_bills(FIRM, made, T0, existing_ids=())

    assert searched(store.bills(), "smith") == [9, 8, 7]
