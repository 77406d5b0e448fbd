"""Integration tests of the DynamoDB store (billbridge.adapters.dynamo*) against moto, on the
tables that template.yaml declares (created only through local.aws_template)."""

from __future__ import annotations

import functools
import itertools
import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from billbridge.adapters.dynamo import (
    DynamoBillRepository,
    DynamoConnectionRepository,
    DynamoSettingsRepository,
    DynamoSyncRepository,
)
from billbridge.adapters.dynamo_accounts import DynamoMembers
from billbridge.adapters.dynamo_bills import group_pk, state_pk
from billbridge.adapters.dynamo_common import to_attr
from billbridge.adapters.dynamo_header import DynamoFirmHeaders
from billbridge.adapters.kms_cipher import CipherError, KmsCipher
from billbridge.domain.access import Role
from billbridge.domain.accounts import Member, MemberStatus
from billbridge.domain.bills import DEFAULT_STATES, Bill, BillKind, BillState, Client, Matter
from billbridge.domain.connection import ClioConnection, Region
from billbridge.domain.errors import Conflict
from billbridge.domain.settings import FirmSettings
from billbridge.domain.sync import (
    LOCK_TTL,
    SyncCheckpoint,
    SyncMode,
    SyncRun,
    SyncStatus,
    SyncTrigger,
)
from local.aws_template import create_dynamodb_tables, load_template, load_template_text

REGION = "us-east-1"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
FIRM = "firm-a"


@functools.cache
def template() -> dict[str, Any]:
    # Parsed once per session: PyYAML is slow on a large template and the file does not change.
    return load_template()


def no_sleep(_seconds: float) -> None:
    return None


@dataclass
class Store:
    client: Any
    table: str

    @functools.cached_property
    def kms(self) -> Any:
        # Made on first use: most tests never touch KMS and a key costs setup time.
        return boto3.client("kms", region_name=REGION)

    @functools.cached_property
    def key_id(self) -> str:
        key_id: str = self.kms.create_key(Description="clio tokens")["KeyMetadata"]["KeyId"]
        return key_id

    def bills(self, client: Any = None) -> DynamoBillRepository:
        return DynamoBillRepository(client or self.client, self.table, sleep=no_sleep)

    def sync(self) -> DynamoSyncRepository:
        return DynamoSyncRepository(self.client, self.table, sleep=no_sleep)

    def settings(self) -> DynamoSettingsRepository:
        return DynamoSettingsRepository(self.client, self.table, sleep=no_sleep)

    def connections(self) -> DynamoConnectionRepository:
        cipher = KmsCipher(self.kms, self.key_id)
        return DynamoConnectionRepository(self.client, self.table, cipher, sleep=no_sleep)

    def raw(self, pk: str, sk: str) -> dict[str, Any]:
        item: dict[str, Any] = self.client.get_item(
            TableName=self.table, Key={"pk": {"S": pk}, "sk": {"S": sk}}
        ).get("Item", {})
        return item


_TABLE_NUMBERS = itertools.count(1)


@pytest.fixture
def store(aws: Any) -> Iterator[Store]:
    number = next(_TABLE_NUMBERS)
    tables = create_dynamodb_tables(
        aws, template(), name_for=lambda logical_id: f"test-{logical_id}-{number}"
    )
    yield Store(client=aws, table=tables["AppTable"])
    for table in tables.values():
        aws.delete_table(TableName=table)


def make_bill(
    bill_id: int,
    *,
    state: BillState = BillState.AWAITING_PAYMENT,
    updated: datetime = T0,
    total_cents: int = 10_000,
    matter: bool = True,
    client_name: str = "Acme Ltd",
) -> Bill:
    return Bill(
        id=bill_id,
        etag=f"etag-{bill_id}-{updated.timestamp():.0f}",
        number=f"INV-{bill_id}",
        state=state,
        kind=BillKind.INVOICE,
        client=Client(id=7, name=client_name, email="ap@acme.example"),
        matter=Matter(id=70, display_number="00070-Acme", description=None) if matter else None,
        total_cents=total_cents,
        outstanding_clio_cents=total_cents,
        currency="USD",
        issued_at=date(2024, 4, 1),
        due_at=date(2024, 5, 1),
        clio_updated_at=updated,
        clio_url=f"https://app.clio.com/nc/#/bills/{bill_id}",
    )


def set_product_fields(store: Store, firm_id: str, bill_id: int) -> None:
    """What the payment and send features do: a direct UpdateItem of our own attributes."""
    store.client.update_item(
        TableName=store.table,
        Key={"pk": {"S": f"FIRM#{firm_id}"}, "sk": {"S": f"BILL#{bill_id:020d}"}},
        UpdateExpression="SET paid_gl_cents = :p, payment_link_id = :l, last_sent_at = :s",
        ExpressionAttributeValues={
            ":p": {"N": "2500"},
            ":l": {"S": "plink_1"},
            ":s": {"S": "2024-05-02T09:00:00.000000+00:00"},
        },
    )


def seed_bills(store: Store, firm_id: str, by_state: dict[BillState, list[int]]) -> None:
    """Many bills fast: one written by the repository, cloned under other ids and states.

    moto spends tens of milliseconds on each conditional update; cloning a real item keeps
    the stored shape the repository's own while the seeding stays quick."""
    store.bills().save_clio_bills(firm_id, [make_bill(1)], T0)
    written = store.raw(f"FIRM#{firm_id}", f"BILL#{1:020d}")
    items = []
    for state, ids in by_state.items():
        for bill_id in ids:
            item = dict(written)
            item["sk"] = item["gsi1sk"] = {"S": f"BILL#{bill_id:020d}"}
            item["gsi1pk"] = {"S": state_pk(firm_id, state)}
            item["gsi2pk"] = {"S": group_pk(firm_id, state)}
            if state is not BillState.AWAITING_PAYMENT:
                item.pop("gsi3pk", None)
            item["state"] = {"S": state.value}
            item["bill_id"] = {"N": str(bill_id)}
            items.append(item)
    for start in range(0, len(items), 25):
        batch = [{"PutRequest": {"Item": i}} for i in items[start : start + 25]]
        assert not store.client.batch_write_item(RequestItems={store.table: batch}).get(
            "UnprocessedItems"
        )


def all_pages(
    repo: DynamoBillRepository, firm_id: str, states: Sequence[BillState], size: int
) -> list[list[int]]:
    pages: list[list[int]] = []
    before: int | None = None
    while True:
        page = repo.page(firm_id, states, size, before)
        pages.append([s.bill.id for s in page.items])
        if page.last_bill_id is None:
            return pages
        assert page.last_bill_id == page.items[-1].bill.id
        before = page.last_bill_id


def new_run(run_id: str, started: datetime = T0, firm_id: str = FIRM) -> SyncRun:
    return SyncRun(
        firm_id=firm_id,
        id=run_id,
        status=SyncStatus.RUNNING,
        mode=SyncMode.FULL,
        trigger=SyncTrigger.MANUAL,
        started_at=started,
    )


def make_connection(firm_id: str, token: str = "access-secret-123") -> ClioConnection:
    return ClioConnection(
        firm_id=firm_id,
        region=Region.EU,
        access_token=token,
        refresh_token=f"refresh-{token}",
        access_expires_at=T0 + timedelta(hours=1),
        connected_at=T0,
        clio_user_id=42,
        clio_user_name="Pat Clerk",
        webhook_id=9,
        webhook_secret="whsec-456",
        webhook_expires_at=T0 + timedelta(days=30),
    )


class FlakyWrites:
    """A client whose next UpdateItem calls fail with the given error codes."""

    def __init__(self, client: Any, *, update_errors: list[str] | None = None) -> None:
        self._client = client
        self._update_errors = update_errors or []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def update_item(self, **kwargs: Any) -> Any:
        if self._update_errors:
            code = self._update_errors.pop(0)
            raise ClientError({"Error": {"Code": code, "Message": "flaky"}}, "UpdateItem")
        return self._client.update_item(**kwargs)


# -- tables from the template ------------------------------------------------------------------


def test_given_the_template_when_tables_are_created_then_keys_index_and_ttl_match_it(
    store: Store,
) -> None:
    table = store.client.describe_table(TableName=store.table)["Table"]
    ttl = store.client.describe_time_to_live(TableName=store.table)["TimeToLiveDescription"]

    assert {(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]} == {
        ("pk", "HASH"),
        ("sk", "RANGE"),
    }
    indexes = {gsi["IndexName"]: gsi for gsi in table["GlobalSecondaryIndexes"]}
    assert set(indexes) == {f"gsi{n}" for n in range(1, 9)}
    for name, key in (
        ("gsi4", "lsort_due"),
        ("gsi5", "lsort_amount"),
        ("gsi6", "lsort_client"),
        ("gsi7", "lsearch_number"),
        ("gsi8", "lsearch_matter"),
    ):
        assert [(k["AttributeName"], k["KeyType"]) for k in indexes[name]["KeySchema"]] == [
            ("pk", "HASH"),
            (key, "RANGE"),
        ]
        assert indexes[name]["Projection"]["ProjectionType"] == "ALL"
    assert {k["AttributeName"] for k in indexes["gsi2"]["KeySchema"]} == {"gsi2pk", "gsi1sk"}
    assert indexes["gsi1"]["Projection"]["ProjectionType"] == "ALL"
    assert indexes["gsi2"]["Projection"]["ProjectionType"] == "ALL"
    assert indexes["gsi3"]["Projection"] == {
        "ProjectionType": "INCLUDE",
        "NonKeyAttributes": ["bill_id", "etag", "pdf_etag"],
    }
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert ttl == {"AttributeName": "expires_at_epoch", "TimeToLiveStatus": "ENABLED"}


def test_given_short_form_tags_when_loading_a_template_then_they_become_long_form_dicts() -> None:
    loaded = load_template_text(
        "A: !Ref Stage\nB: !GetAtt AppTable.Arn\nC: !Sub '${AWS::StackName}-x'\n"
        "D: !If [IsProd, 1, 2]\nE: !Condition IsProd\n"
    )

    assert loaded == {
        "A": {"Ref": "Stage"},
        "B": {"Fn::GetAtt": ["AppTable", "Arn"]},
        "C": {"Fn::Sub": "${AWS::StackName}-x"},
        "D": {"Fn::If": ["IsProd", 1, 2]},
        "E": {"Condition": "IsProd"},
    }


# -- bills ---------------------------------------------------------------------------------------


def test_given_450_bills_in_3_states_when_paging_by_37_then_each_is_seen_once_newest_first(
    store: Store,
) -> None:
    states = [BillState.AWAITING_PAYMENT, BillState.PAID, BillState.VOID]
    rng = random.Random(450)
    by_state: dict[BillState, list[int]] = {s: [] for s in states}
    for bill_id in range(1, 451):
        by_state[rng.choice(states)].append(bill_id)
    seed_bills(store, FIRM, by_state)
    repo = store.bills()

    for wanted in (states, states[1:]):
        expected = sorted((i for s in wanted for i in by_state[s]), reverse=True)
        pages = all_pages(repo, FIRM, wanted, 37)
        seen = [i for page in pages for i in page]

        assert seen == expected
        assert all(len(page) == 37 for page in pages[:-1])
        assert 0 < len(pages[-1]) <= 37


def test_given_product_fields_when_a_sync_writes_a_newer_version_then_they_survive(
    store: Store,
) -> None:
    repo = store.bills()
    repo.save_clio_bills(FIRM, [make_bill(1), make_bill(2)], T0)
    set_product_fields(store, FIRM, 1)
    set_product_fields(store, FIRM, 2)
    later = T0 + timedelta(hours=1)

    # Bill 1 beside a new bill in a sync page, bill 2 alone (a webhook): both spare our fields.
    chunk = [make_bill(1, updated=later, total_cents=12_345, matter=False), make_bill(3)]
    assert repo.save_clio_bills(FIRM, chunk, later, existing_ids={1}) == 2
    assert repo.save_clio_bills(FIRM, [make_bill(2, updated=later, total_cents=999)], later) == 1

    for bill_id, total in ((1, 12_345), (2, 999)):
        stored = repo.get(FIRM, bill_id)
        assert stored is not None
        assert stored.bill.total_cents == total
        assert stored.paid_gl_cents == 2500
        assert stored.payment_link_id == "plink_1"
        assert stored.last_sent_at == datetime(2024, 5, 2, 9, 0, tzinfo=UTC)
        assert stored.synced_at == later
    stored_1 = repo.get(FIRM, 1)
    assert stored_1 is not None and stored_1.bill.matter is None
    assert "matter_id" not in store.raw(f"FIRM#{FIRM}", f"BILL#{1:020d}")


def test_given_a_newer_stored_version_when_an_older_one_arrives_in_a_page_then_it_is_skipped(
    store: Store,
) -> None:
    repo = store.bills()
    t1, t2, t3 = T0, T0 + timedelta(minutes=5), T0 + timedelta(minutes=10)
    repo.save_clio_bills(FIRM, [make_bill(i, updated=t2, total_cents=200) for i in range(1, 6)], t2)
    requests_before = repo.write_requests

    chunk = [
        make_bill(i, updated=t1 if i == 3 else t3, total_cents=100 if i == 3 else 300)
        for i in range(1, 6)
    ]
    written = repo.save_clio_bills(FIRM, chunk, t3, existing_ids=set(range(1, 6)))

    assert written == 4
    # One conditional UpdateItem per bill the store holds.
    assert repo.write_requests - requests_before == 5
    totals = {i: repo.get(FIRM, i).bill.total_cents for i in range(1, 6)}  # type: ignore[union-attr]
    assert totals == {1: 300, 2: 300, 3: 200, 4: 300, 5: 300}
    assert repo.get(FIRM, 3).bill.clio_updated_at == t2  # type: ignore[union-attr]


def test_given_a_newer_stored_version_when_an_older_one_arrives_alone_then_it_is_skipped(
    store: Store,
) -> None:
    repo = store.bills()
    newer = T0 + timedelta(minutes=5)
    repo.save_clio_bills(FIRM, [make_bill(1, updated=newer, total_cents=200)], newer)

    written = repo.save_clio_bills(FIRM, [make_bill(1, updated=T0, total_cents=100)], newer)

    assert written == 0
    stored = repo.get(FIRM, 1)
    assert stored is not None and stored.bill.total_cents == 200


def test_given_250_new_bills_when_saved_then_they_go_in_transactions_of_100_actions(
    store: Store,
) -> None:
    repo = store.bills()

    # "Acme Ltd": each bill is its item and one word item ("ltd"), two actions of 100.
    written = repo.save_clio_bills(
        FIRM, [make_bill(i) for i in range(1, 251)], T0, existing_ids=set()
    )

    assert written == 250
    assert repo.write_requests == 5
    assert repo.read_requests == 0
    stored = repo.get(FIRM, 250)
    assert stored is not None and stored.bill.total_cents == make_bill(250).total_cents
    word = store.raw(f"FIRM#{FIRM}", f"WORD#awaiting_payment#ltd#{250:020d}")
    assert word["bill_id"] == {"N": "250"}


class TransactionSizes:
    """A client that notes the size of each TransactWriteItems it sends (its actions as JSON:
    more than the items' own size, never less). DynamoDB refuses a transaction whose items
    pass 4 MB in all; moto does not check it."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.sizes: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def transact_write_items(self, **kwargs: Any) -> Any:
        self.sizes.append(len(json.dumps(kwargs["TransactItems"]).encode()))
        return self._client.transact_write_items(**kwargs)


def test_given_new_bills_with_long_matter_descriptions_then_no_transaction_passes_4_mb(
    store: Store,
) -> None:
    # Clio's matter descriptions are free text of any length: 15 bills of 300 KB each are
    # 4.5 MB, which 30 actions (each bill and its "ltd" word item) would send in one.
    long_text = "Estate of the late J. Smith, probate and trust administration. " * 4800
    made = [
        replace(
            make_bill(i),
            matter=Matter(id=70, display_number="00070-Acme", description=long_text),
        )
        for i in range(1, 16)
    ]
    sizes = TransactionSizes(store.client)
    repo = store.bills(sizes)

    assert repo.save_clio_bills(FIRM, made, T0, existing_ids=set()) == 15

    assert max(sizes.sizes) <= 4 * 1024 * 1024
    for bill_id in range(1, 16):
        stored = repo.get(FIRM, bill_id)
        assert stored is not None and stored.bill.matter is not None
        assert stored.bill.matter.description == long_text
        assert store.raw(f"FIRM#{FIRM}", f"WORD#awaiting_payment#ltd#{bill_id:020d}")


def test_given_a_bill_stored_meanwhile_when_new_bills_are_saved_then_it_is_updated_not_replaced(
    store: Store,
) -> None:
    repo = store.bills()
    # A webhook stored bill 2 after the sync read its etags, and our fields were set on it.
    repo.save_clio_bills(FIRM, [make_bill(2)], T0)
    set_product_fields(store, FIRM, 2)
    later = T0 + timedelta(minutes=1)

    written = repo.save_clio_bills(
        FIRM,
        [make_bill(i, updated=later, total_cents=7) for i in (1, 2, 3)],
        later,
        existing_ids=(),
    )

    assert written == 3
    for bill_id in (1, 2, 3):
        stored = repo.get(FIRM, bill_id)
        assert stored is not None and stored.bill.total_cents == 7
    stored_2 = repo.get(FIRM, 2)
    assert stored_2 is not None and stored_2.paid_gl_cents == 2500  # not replaced by a Put


def test_given_stored_bills_when_the_same_versions_arrive_again_then_they_are_rewritten(
    store: Store,
) -> None:
    repo = store.bills()
    repo.save_clio_bills(FIRM, [make_bill(i) for i in range(1, 4)], T0)
    later = T0 + timedelta(minutes=1)

    # Equal clio_updated_at passes the condition: a replayed version is harmless.
    assert repo.save_clio_bills(FIRM, [make_bill(i) for i in range(1, 4)], later) == 3
    assert repo.write_requests == 6
    assert repo.get(FIRM, 2).synced_at == later  # type: ignore[union-attr]


def test_given_duplicate_ids_in_one_call_when_saved_then_the_newest_wins(store: Store) -> None:
    repo = store.bills()
    later = T0 + timedelta(minutes=1)

    written = repo.save_clio_bills(
        FIRM, [make_bill(1, updated=later, total_cents=2), make_bill(1, total_cents=1)], later
    )

    assert written == 1
    assert repo.get(FIRM, 1).bill.total_cents == 2  # type: ignore[union-attr]


def test_given_throttling_that_persists_when_saving_then_the_error_bubbles(store: Store) -> None:
    store.bills().save_clio_bills(FIRM, [make_bill(1), make_bill(2)], T0)
    repo = store.bills(FlakyWrites(store.client, update_errors=["ThrottlingException"] * 10))
    later = T0 + timedelta(minutes=1)

    with pytest.raises(ClientError):
        repo.save_clio_bills(FIRM, [make_bill(1, updated=later), make_bill(2, updated=later)], T0)
    assert repo.write_requests == 5


def test_given_stored_bills_when_asking_etags_then_batches_of_100_return_those_that_exist(
    store: Store,
) -> None:
    repo = store.bills()
    stored_ids = [3, 7, 150, 201, 250]
    repo.save_clio_bills(FIRM, [make_bill(i) for i in stored_ids], T0)
    reads_before = repo.read_requests

    etags = repo.etags(FIRM, [*range(1, 251), 7])

    assert set(etags) == set(stored_ids)
    assert etags[201] == make_bill(201).etag
    assert repo.read_requests - reads_before == 3


def test_given_two_firms_when_one_pages_then_it_never_sees_the_other_firms_bills(
    store: Store,
) -> None:
    repo = store.bills()
    repo.save_clio_bills("firm-a", [make_bill(i, client_name="A") for i in range(1, 11)], T0)
    repo.save_clio_bills("firm-b", [make_bill(i, client_name="B") for i in range(5, 8)], T0)

    page = repo.page("firm-b", [BillState.AWAITING_PAYMENT], 50, None)

    assert [s.bill.id for s in page.items] == [7, 6, 5]
    assert {s.bill.client.name for s in page.items} == {"B"}
    assert repo.get("firm-b", 1) is None
    assert set(repo.etags("firm-b", [1, 2, 5])) == {5}


def test_given_a_bill_when_marked_deleted_then_it_moves_state_and_a_stale_sync_cannot_revive_it(
    store: Store,
) -> None:
    repo = store.bills()
    set_at = T0 + timedelta(minutes=1)
    repo.save_clio_bills(FIRM, [make_bill(1), make_bill(2)], T0)

    assert repo.mark_deleted(FIRM, 1, set_at) is True
    assert repo.mark_deleted(FIRM, 1, set_at) is False
    assert repo.mark_deleted(FIRM, 99, set_at) is False
    assert repo.save_clio_bills(FIRM, [make_bill(1)], T0) == 0

    awaiting = repo.page(FIRM, [BillState.AWAITING_PAYMENT], 10, None)
    deleted = repo.page(FIRM, [BillState.DELETED], 10, None)
    assert [s.bill.id for s in awaiting.items] == [2]
    assert [s.bill.id for s in deleted.items] == [1]
    assert repo.get(FIRM, 99) is None


def test_given_the_default_states_when_a_page_is_read_then_it_is_one_query_in_id_order(
    store: Store,
) -> None:
    seed_bills(
        store,
        FIRM,
        {
            BillState.AWAITING_PAYMENT: list(range(2, 200, 3)),
            BillState.PAID: list(range(3, 200, 3)),
            BillState.DRAFT: list(range(4, 200, 3)),
        },
    )
    repo = store.bills()

    page = repo.page(FIRM, DEFAULT_STATES, 50, None)

    assert repo.read_requests == 1
    expected = sorted((i for i in range(2, 200) if i % 3 != 1), reverse=True)
    assert [s.bill.id for s in page.items] == expected[:50]
    assert all(s.bill.state in DEFAULT_STATES for s in page.items)


def test_given_a_bill_paid_in_clio_when_the_default_list_is_paged_then_it_shows_once_as_paid(
    store: Store,
) -> None:
    repo = store.bills()
    repo.save_clio_bills(FIRM, [make_bill(i) for i in (1, 2, 3)], T0)
    paid = replace(make_bill(2, updated=T0 + timedelta(hours=1)), state=BillState.PAID)
    repo.save_clio_bills(FIRM, [paid], T0, existing_ids={2})

    pages = all_pages(repo, FIRM, DEFAULT_STATES, 2)

    assert pages == [[3, 2], [1]]
    assert repo.get(FIRM, 2).bill.state is BillState.PAID  # type: ignore[union-attr]


def test_given_a_bill_stored_before_the_list_index_when_etags_are_read_then_it_counts_as_changed(
    store: Store,
) -> None:
    repo = store.bills()
    repo.save_clio_bills(FIRM, [make_bill(1), make_bill(2)], T0)
    store.client.update_item(
        TableName=store.table,
        Key={"pk": {"S": f"FIRM#{FIRM}"}, "sk": {"S": f"BILL#{1:020d}"}},
        UpdateExpression="REMOVE gsi2pk",
    )

    etags = repo.etags(FIRM, [1, 2])

    assert etags == {1: "", 2: make_bill(2).etag}


# -- bill PDFs -----------------------------------------------------------------------------------


def test_given_sendable_bills_when_saved_then_their_pdfs_are_wanted_newest_first(
    store: Store,
) -> None:
    repo = store.bills()
    paid = replace(make_bill(3), state=BillState.PAID)
    repo.save_clio_bills(FIRM, [make_bill(1), make_bill(2), paid], T0)

    wanted = repo.pdf_wanted(FIRM, 10)

    assert [(w.bill_id, w.etag, w.cached_etag) for w in wanted] == [
        (2, make_bill(2).etag, None),
        (1, make_bill(1).etag, None),
    ]
    assert repo.pdf_wanted("firm-b", 10) == []


def test_given_a_cached_pdf_when_the_bill_changes_then_the_new_version_is_wanted_again(
    store: Store,
) -> None:
    repo = store.bills()
    repo.save_clio_bills(FIRM, [make_bill(1)], T0)
    assert repo.mark_pdf_cached(FIRM, 1, make_bill(1).etag) is True
    assert repo.pdf_wanted(FIRM, 10) == []

    newer = make_bill(1, updated=T0 + timedelta(hours=1))
    repo.save_clio_bills(FIRM, [newer], T0, existing_ids={1})

    (wanted,) = repo.pdf_wanted(FIRM, 10)
    assert (wanted.etag, wanted.cached_etag) == (newer.etag, make_bill(1).etag)
    # The old version's PDF arriving late does not count for the new one.
    assert repo.mark_pdf_cached(FIRM, 1, make_bill(1).etag) is False
    assert repo.get(FIRM, 1).pdf_etag == make_bill(1).etag  # type: ignore[union-attr]


def test_given_a_wanted_pdf_when_the_bill_is_paid_or_deleted_then_it_is_no_longer_wanted(
    store: Store,
) -> None:
    repo = store.bills()
    repo.save_clio_bills(FIRM, [make_bill(1), make_bill(2)], T0)
    paid = replace(make_bill(1, updated=T0 + timedelta(hours=1)), state=BillState.PAID)
    repo.save_clio_bills(FIRM, [paid], T0, existing_ids={1})
    repo.mark_deleted(FIRM, 2, T0)

    assert repo.pdf_wanted(FIRM, 10) == []
    assert repo.mark_pdf_cached(FIRM, 99, "nope") is False


# -- sync lock, checkpoint and runs ------------------------------------------------------------


def test_given_a_live_lock_when_another_run_starts_then_the_holder_is_returned(
    store: Store,
) -> None:
    repo = store.sync()
    first = new_run("sync_1")
    assert repo.start_run(first, T0) == (first, True)

    holder, started = repo.start_run(new_run("sync_2"), T0 + timedelta(minutes=1))

    assert started is False
    assert holder == first
    assert repo.get_run(FIRM, "sync_2") is None
    assert repo.checkpoint(FIRM).lock_run_id == "sync_1"


def test_given_an_expired_lock_when_another_run_starts_then_it_takes_over(store: Store) -> None:
    repo = store.sync()
    repo.start_run(new_run("sync_1"), T0)
    later = T0 + LOCK_TTL + timedelta(seconds=2)
    second = new_run("sync_2", later)

    assert repo.start_run(second, later) == (second, True)
    checkpoint = repo.checkpoint(FIRM)
    assert checkpoint.lock_run_id == "sync_2"
    assert checkpoint.lock_expires_at == later + LOCK_TTL
    assert repo.get_run(FIRM, "sync_2") == second


def test_given_a_lock_whose_run_is_missing_when_a_run_starts_then_it_takes_over(
    store: Store,
) -> None:
    repo = store.sync()
    repo.start_run(new_run("sync_1"), T0)
    store.client.delete_item(
        TableName=store.table,
        Key={"pk": {"S": f"FIRM#{FIRM}"}, "sk": {"S": "SYNC#RUN#sync_1"}},
    )
    second = new_run("sync_2")

    assert repo.start_run(second, T0 + timedelta(minutes=1)) == (second, True)
    assert repo.checkpoint(FIRM).lock_run_id == "sync_2"


def test_given_the_lock_when_saving_progress_then_checkpoint_and_counts_are_stored_together(
    store: Store,
) -> None:
    repo = store.sync()
    run = new_run("sync_1")
    repo.start_run(run, T0)
    now = T0 + timedelta(minutes=5)
    checkpoint = SyncCheckpoint(
        firm_id=FIRM, next_page_url="https://app.clio.com/api/v4/bills?page_token=x", high_water=T0
    )

    repo.save_progress(checkpoint, replace(run, bills_seen=200, bills_changed=150), now)

    stored = repo.checkpoint(FIRM)
    assert stored.next_page_url == checkpoint.next_page_url
    assert stored.high_water == T0
    assert stored.lock_run_id == "sync_1"
    assert stored.lock_expires_at == now + LOCK_TTL
    assert repo.get_run(FIRM, "sync_1").bills_changed == 150  # type: ignore[union-attr]


def test_given_a_lost_lock_when_saving_progress_then_conflict_and_nothing_is_overwritten(
    store: Store,
) -> None:
    repo = store.sync()
    first = new_run("sync_1")
    repo.start_run(first, T0)
    later = T0 + LOCK_TTL + timedelta(minutes=1)
    repo.start_run(new_run("sync_2", later), later)

    with pytest.raises(Conflict):
        repo.save_progress(
            SyncCheckpoint(firm_id=FIRM, next_page_url="stale"), replace(first, bills_seen=9), later
        )

    assert repo.checkpoint(FIRM).next_page_url is None
    assert repo.checkpoint(FIRM).lock_run_id == "sync_2"
    assert repo.get_run(FIRM, "sync_1").bills_seen == 0  # type: ignore[union-attr]


def test_given_a_running_sync_when_finished_then_the_lock_is_released_and_the_run_recorded(
    store: Store,
) -> None:
    repo = store.sync()
    run = new_run("sync_1")
    repo.start_run(run, T0)
    done = T0 + timedelta(minutes=3)
    final = SyncCheckpoint(
        firm_id=FIRM, full_import_done=True, high_water=done, last_synced_at=done
    )

    repo.finish_run(final, replace(run, bills_seen=5).finished(SyncStatus.SUCCEEDED, done))

    checkpoint = repo.checkpoint(FIRM)
    assert checkpoint.full_import_done is True
    assert checkpoint.lock_run_id is None and checkpoint.lock_expires_at is None
    assert "lock_expires_epoch" not in store.raw(f"FIRM#{FIRM}", "HEADER")
    assert store.raw(f"FIRM#{FIRM}", "HEADER")["last_run_id"] == {"S": "sync_1"}
    assert checkpoint.run is not None and checkpoint.run.bills_seen == 5
    stored_run = repo.get_run(FIRM, "sync_1")
    assert stored_run is not None
    assert (stored_run.status, stored_run.finished_at, stored_run.bills_seen) == (
        SyncStatus.SUCCEEDED,
        done,
        5,
    )
    raw_run = store.raw(f"FIRM#{FIRM}", "SYNC#RUN#sync_1")
    assert int(raw_run["expires_at_epoch"]["N"]) == int((T0 + timedelta(days=30)).timestamp())
    assert repo.start_run(new_run("sync_2"), done)[1] is True


def test_given_a_full_import_done_before_word_items_then_the_next_sync_is_a_full_one(
    store: Store,
) -> None:
    repo = store.sync()
    run = new_run("sync_1")
    repo.start_run(run, T0)
    done = T0 + timedelta(minutes=3)
    final = SyncCheckpoint(firm_id=FIRM, full_import_done=True, last_synced_at=done)
    repo.finish_run(final, run.finished(SyncStatus.SUCCEEDED, done))
    assert store.raw(f"FIRM#{FIRM}", "HEADER")["bills_format"] == {"N": "1"}
    assert repo.checkpoint(FIRM).full_import_done is True

    # As a version before word items left the header: its bills have no word items.
    store.client.update_item(
        TableName=store.table,
        Key={"pk": {"S": f"FIRM#{FIRM}"}, "sk": {"S": "HEADER"}},
        UpdateExpression="REMOVE bills_format",
    )

    assert repo.checkpoint(FIRM).full_import_done is False


def as_an_older_version_left_it(store: Store, **attributes: Any) -> None:
    """The firm header as a version before word items wrote it: no format marks, and these
    checkpoint attributes."""
    names = {f"#a{i}": name for i, name in enumerate(attributes)}
    values = {f":v{i}": value for i, value in enumerate(attributes.values())}
    sets = ", ".join(f"#a{i} = :v{i}" for i in range(len(attributes)))
    store.client.update_item(
        TableName=store.table,
        Key={"pk": {"S": f"FIRM#{FIRM}"}, "sk": {"S": "HEADER"}},
        UpdateExpression=f"SET {sets} REMOVE bills_format, position_format",
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
    )


def test_given_an_incremental_run_started_before_word_items_when_finished_then_a_full_sync_is_due(
    store: Store,
) -> None:
    repo = store.sync()
    run = replace(new_run("sync_1"), mode=SyncMode.INCREMENTAL)
    repo.start_run(run, T0)
    # An older version did the full import and started this incremental run, then the
    # deploy: the new version carries the run on and finishes it.
    as_an_older_version_left_it(store, full_import_done={"BOOL": True})
    read = repo.checkpoint(FIRM)
    assert read.full_import_done is False
    done = T0 + timedelta(minutes=3)
    # The sync service marks the import done when any run succeeds.
    final = replace(read, full_import_done=True, last_synced_at=done)
    repo.finish_run(final, run.finished(SyncStatus.SUCCEEDED, done))

    # The increment read only what changed in Clio: the bills stored before have no word
    # items yet, so the firm's next sync is still a full one.
    assert repo.checkpoint(FIRM).full_import_done is False


def test_given_a_full_import_under_way_before_word_items_then_it_starts_over_from_its_first_page(
    store: Store,
) -> None:
    repo = store.sync()
    run = new_run("sync_1")
    repo.start_run(run, T0)
    page_2 = "https://app.clio.com/api/v4/bills.json?page_token=2"
    # An older version stored the first page (bills without word items), then the deploy.
    as_an_older_version_left_it(
        store,
        full_import_done={"BOOL": False},
        next_page_url={"S": page_2},
        pass_name={"S": "all"},
    )

    read = repo.checkpoint(FIRM)
    assert (read.next_page_url, read.pass_name) == (None, "all")

    # Pages the new version stored are resumed from as before.
    page_3 = "https://app.clio.com/api/v4/bills.json?page_token=3"
    repo.save_progress(replace(read, next_page_url=page_3), run, T0 + timedelta(minutes=1))
    assert repo.checkpoint(FIRM).next_page_url == page_3
    done = T0 + timedelta(minutes=3)
    final = replace(repo.checkpoint(FIRM), full_import_done=True, next_page_url=None)
    repo.finish_run(final, run.finished(SyncStatus.SUCCEEDED, done))
    assert repo.checkpoint(FIRM).full_import_done is True


def test_given_a_lost_lock_when_finishing_then_conflict_but_the_run_outcome_is_recorded(
    store: Store,
) -> None:
    repo = store.sync()
    first = new_run("sync_1")
    repo.start_run(first, T0)
    later = T0 + LOCK_TTL + timedelta(minutes=1)
    repo.start_run(new_run("sync_2", later), later)

    with pytest.raises(Conflict):
        repo.finish_run(
            SyncCheckpoint(firm_id=FIRM, full_import_done=True),
            first.finished(SyncStatus.FAILED, later, error="timed out"),
        )

    assert repo.checkpoint(FIRM).lock_run_id == "sync_2"
    assert repo.checkpoint(FIRM).full_import_done is False
    assert repo.get_run(FIRM, "sync_1").status == SyncStatus.FAILED  # type: ignore[union-attr]


def test_given_no_sync_yet_when_reading_the_checkpoint_then_defaults(store: Store) -> None:
    assert store.sync().checkpoint(FIRM) == SyncCheckpoint(firm_id=FIRM)
    assert store.sync().get_run(FIRM, "nope") is None


# -- settings and connection -------------------------------------------------------------------


def test_given_no_settings_when_read_then_defaults_and_a_put_round_trips(store: Store) -> None:
    repo = store.settings()
    assert repo.get(FIRM) == FirmSettings()
    chosen = FirmSettings(
        aggregate_payment_links=True,
        firm_name="Smith & Jones LLP",
        reply_to="billing@smith.example.com",
        default_states=[BillState.PAID, BillState.AWAITING_PAYMENT],
    )

    repo.put(FIRM, chosen)

    assert repo.get(FIRM) == chosen
    assert repo.get("firm-b") == FirmSettings()


def test_given_a_surcharge_percent_with_a_fraction_when_put_then_it_round_trips(
    store: Store,
) -> None:
    """DynamoDB takes no floats: PUT /settings with a 2.5% surcharge was a 500 before."""
    from billbridge.domain.surcharge import SurchargeSettings

    repo = store.settings()
    chosen = FirmSettings(surcharge=SurchargeSettings(enabled=True, percent=2.5))
    repo.put(FIRM, chosen)
    back = repo.get(FIRM)
    assert back == chosen and back.surcharge.percent == Decimal("2.5")
    assert back.surcharge.basis_points == 250
    assert back.model_dump(mode="json")["surcharge"]["percent"] == 2.5


def test_given_settings_stored_with_a_field_no_longer_known_when_read_then_the_rest_is_kept(
    store: Store,
) -> None:
    store.client.put_item(
        TableName=store.table,
        Item={
            "pk": {"S": f"FIRM#{FIRM}"},
            "sk": {"S": "SETTINGS"},
            "type": {"S": "settings"},
            "settings": {
                "M": {
                    "firm_name": {"S": "Smith & Jones LLP"},
                    "payout_accounts": {"M": {"trust": {"NULL": True}}},
                }
            },
        },
    )
    assert store.settings().get(FIRM).firm_name == "Smith & Jones LLP"


def test_given_settings_and_a_sync_when_both_write_the_firm_header_then_neither_erases_the_other(
    store: Store,
) -> None:
    chosen = FirmSettings(firm_name="Smith & Jones LLP")
    store.settings().put(FIRM, chosen)
    sync = store.sync()
    run = new_run("sync_1")
    sync.start_run(run, T0)
    sync.finish_run(
        SyncCheckpoint(firm_id=FIRM, full_import_done=True, last_synced_at=T0),
        run.finished(SyncStatus.SUCCEEDED, T0),
    )
    store.settings().put(FIRM, chosen.model_copy(update={"aggregate_payment_links": True}))

    headers = DynamoFirmHeaders(store.client, store.table)
    header = headers.read(FIRM)

    assert headers.read_requests == 1
    assert header.settings.firm_name == "Smith & Jones LLP"
    assert header.settings.aggregate_payment_links is True
    assert header.checkpoint.full_import_done and header.checkpoint.last_run_id == "sync_1"
    assert header.checkpoint.run is not None
    assert header.checkpoint.run.status is SyncStatus.SUCCEEDED


class _FirstBatchHalfDone:
    """A DynamoDB client whose first BatchGetItem answers only its first key and hands the rest
    back as UnprocessedKeys, as DynamoDB may under load."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.batches: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def batch_get_item(self, **kwargs: Any) -> dict[str, Any]:
        ((table, spec),) = kwargs["RequestItems"].items()
        self.batches.append(len(spec["Keys"]))
        if len(self.batches) > 1:
            return dict(self._client.batch_get_item(**kwargs))
        first, rest = spec["Keys"][:1], spec["Keys"][1:]
        answered = self._client.batch_get_item(RequestItems={table: {**spec, "Keys": first}})
        return {**answered, "UnprocessedKeys": {table: {**spec, "Keys": rest}}}


def test_given_a_member_when_read_with_the_header_then_one_consistent_request_gives_both(
    store: Store,
) -> None:
    store.settings().put(FIRM, FirmSettings(firm_name="Smith & Jones LLP"))
    DynamoMembers(store.client, store.table).add(
        Member(
            user_id="u-1",
            firm_id=FIRM,
            email="clerk@smith.example",
            role=Role.STAFF,
            status=MemberStatus.ACTIVE,
            created_at=T0,
        )
    )
    headers = DynamoFirmHeaders(store.client, store.table, sleep=no_sleep)

    header, member = headers.read_with_member(FIRM, "u-1")
    assert headers.read_requests == 1
    assert header.settings.firm_name == "Smith & Jones LLP"
    assert member is not None and member.role is Role.STAFF
    assert member.email == "clerk@smith.example"
    # Not a member of this firm (or of none): no record, the header all the same.
    header, member = headers.read_with_member(FIRM, "u-2")
    assert member is None and header.settings.firm_name == "Smith & Jones LLP"
    _, member = headers.read_with_member("firm-other", "u-1")
    assert member is None

    # DynamoDB leaving a key unprocessed: asked again until both are read.
    halved = _FirstBatchHalfDone(store.client)
    header, member = DynamoFirmHeaders(halved, store.table, sleep=no_sleep).read_with_member(
        FIRM, "u-1"
    )
    assert halved.batches == [2, 1]
    assert member is not None and member.user_id == "u-1"
    assert header.settings.firm_name == "Smith & Jones LLP"


def test_given_settings_saved_before_the_firm_header_when_read_then_they_move_in_once(
    store: Store,
) -> None:
    legacy = FirmSettings(firm_name="Old & Trusted LLP", aggregate_payment_links=True)
    store.client.put_item(
        TableName=store.table,
        Item={
            "pk": {"S": f"FIRM#{FIRM}"},
            "sk": {"S": "SETTINGS"},
            "type": {"S": "settings"},
            # As the settings repository stores them: numbers as Decimals (DynamoDB has no
            # floats; the surcharge percent is one).
            "settings": to_attr(
                json.loads(json.dumps(legacy.model_dump(mode="json")), parse_float=Decimal)
            ),
        },
    )
    headers = DynamoFirmHeaders(store.client, store.table)

    assert headers.read(FIRM).settings == legacy
    first_reads = headers.read_requests
    assert headers.read(FIRM).settings == legacy

    assert first_reads == 2 and headers.read_requests == 3
    # A firm that never saved settings pays the extra read once too.
    headers.read("firm-new")
    before = headers.read_requests
    assert headers.read("firm-new").settings == FirmSettings()
    assert headers.read_requests == before + 1


def test_given_a_connection_when_saved_then_tokens_round_trip_but_are_not_stored_in_clear(
    store: Store,
) -> None:
    repo = store.connections()
    connection = make_connection(FIRM)

    repo.save(connection)

    assert repo.get(FIRM) == connection
    raw = store.raw(f"FIRM#{FIRM}", "CLIO#CONNECTION")
    dumped = repr(raw)
    for secret in ("access-secret-123", "refresh-access-secret-123", "whsec-456"):
        assert secret not in dumped
        assert secret.encode() not in raw["secrets_ciphertext"]["B"]
    assert repo.get("firm-b") is None


def test_given_a_ciphertext_copied_to_another_firm_when_read_then_it_does_not_decrypt(
    store: Store,
) -> None:
    repo = store.connections()
    repo.save(make_connection("firm-a", "token-a"))
    repo.save(make_connection("firm-b", "token-b"))
    stolen = store.raw("FIRM#firm-a", "CLIO#CONNECTION")["secrets_ciphertext"]
    store.client.update_item(
        TableName=store.table,
        Key={"pk": {"S": "FIRM#firm-b"}, "sk": {"S": "CLIO#CONNECTION"}},
        UpdateExpression="SET secrets_ciphertext = :c",
        ExpressionAttributeValues={":c": stolen},
    )

    with pytest.raises(CipherError):
        repo.get("firm-b")
    assert repo.get("firm-a").access_token == "token-a"  # type: ignore[union-attr]


def test_given_connected_firms_when_listed_then_each_appears_once(store: Store) -> None:
    repo = store.connections()
    assert repo.connected_firm_ids() == []
    for firm_id in ("firm-c", "firm-a", "firm-b"):
        repo.save(make_connection(firm_id))
    repo.save(replace(make_connection("firm-a"), needs_reconnect=True))

    assert sorted(repo.connected_firm_ids()) == ["firm-a", "firm-b", "firm-c"]
    assert repo.get("firm-a").needs_reconnect is True  # type: ignore[union-attr]


# -- the single-use states of Clio connects (C1) -------------------------------------------------


def _connect_states(store: Store) -> Any:
    from billbridge.adapters.dynamo_firms import DynamoConnectStateRepository

    return DynamoConnectStateRepository(store.client, store.table, sleep=no_sleep)


def test_given_a_recorded_connect_state_then_it_is_consumed_once_and_expires_with_a_ttl(
    store: Store,
) -> None:
    from billbridge.domain.oauth_state import ConnectingUser, start_connect

    states = _connect_states(store)
    intent = start_connect(FIRM, Region.US, "user-1", b"k" * 32, T0).intent
    user = ConnectingUser("user-1", "clerk@example.com")
    states.record(intent, user)

    assert states.consume(intent, T0 + timedelta(minutes=1)) == user
    assert states.consume(intent, T0 + timedelta(minutes=2)) is None
    item = store.raw(f"FIRM#{FIRM}", f"CLIO#CONNECT#{intent.state_id}")
    assert int(item["expires_at_epoch"]["N"]) == int(intent.expires_at.timestamp())
    never = start_connect(FIRM, Region.US, "user-1", b"k" * 32, T0).intent
    assert states.consume(never, T0) is None  # never recorded: no state of ours
    late = start_connect(FIRM, Region.US, "user-1", b"k" * 32, T0).intent
    states.record(late, user)
    # Past its expiry (DynamoDB's TTL deletes lazily, so the write checks the time itself).
    assert states.consume(late, late.expires_at + timedelta(seconds=1)) is None


def test_given_callbacks_racing_with_one_state_then_exactly_one_consumes_it(store: Store) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from billbridge.domain.oauth_state import ConnectingUser, start_connect

    states = _connect_states(store)
    intent = start_connect(FIRM, Region.US, "user-1", b"k" * 32, T0).intent
    states.record(intent, ConnectingUser("user-1"))

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: states.consume(intent, T0), range(8)))

    assert sum(r is not None for r in results) == 1
