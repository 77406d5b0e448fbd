"""The AWS emulator itself under parallel load, over HTTP against a moto server run the way the
local stack runs it (`ThreadedMotoServer` with `local.moto_speedups` installed): DynamoDB calls
are linearizable, transactions all-or-nothing, and nothing fails inside the emulator.

Clients never retry here (botocore's retries would hide an emulator error behind a later
success). Each test makes its own table."""

from __future__ import annotations

import gc
import random
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import moto.core.serialize as moto_serialize
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.core.utils import get_service_model
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler, DynamoResult
from moto.server import ThreadedMotoServer

from local import moto_speedups

THREADS = 16
ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"
NO_RETRIES = Config(retries={"mode": "standard", "max_attempts": 1}, max_pool_connections=64)
EXPECTED_REFUSALS = {"ConditionalCheckFailedException", "TransactionCanceledException"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def emulator() -> Iterator[str]:
    moto_speedups.install()
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def dynamodb(emulator: str) -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=emulator,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=NO_RETRIES,
    )


@pytest.fixture
def table(dynamodb: Any) -> str:
    name = f"emulator-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "gsi1pk", "AttributeType": "S"},
            {"AttributeName": "gsi1sk", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "gsi1",
                "KeySchema": [
                    {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                    {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    return name


def _in_parallel(work: Callable[[int], Any], count: int) -> tuple[list[Any], list[BaseException]]:
    """Run work(0..count-1) on THREADS threads released together; results and errors."""
    results: list[Any] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(THREADS)
    jobs = iter(range(count))

    def run() -> None:
        start.wait()
        while True:
            with lock:
                job = next(jobs, None)
            if job is None:
                return
            try:
                result = work(job)
            except BaseException as exc:
                with lock:
                    errors.append(exc)
            else:
                with lock:
                    results.append(result)

    threads = [threading.Thread(target=run) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results, errors


def _code(exc: BaseException) -> str:
    return exc.response["Error"]["Code"] if isinstance(exc, ClientError) else type(exc).__name__


def _unexpected(errors: list[BaseException]) -> list[str]:
    return [f"{_code(e)}: {e}" for e in errors if _code(e) not in EXPECTED_REFUSALS]


def test_given_one_counter_when_many_clients_increment_it_under_a_cap_then_exactly_the_cap_wins(
    dynamodb: Any, table: str
) -> None:
    key = {"pk": {"S": "counter"}, "sk": {"S": "c"}}
    dynamodb.put_item(TableName=table, Item={**key, "n": {"N": "0"}})

    def increment(_: int) -> bool:
        try:
            dynamodb.update_item(
                TableName=table,
                Key=key,
                UpdateExpression="SET n = n + :one",
                ConditionExpression="n < :cap",
                ExpressionAttributeValues={":one": {"N": "1"}, ":cap": {"N": "25"}},
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    results, errors = _in_parallel(increment, 80)

    assert _unexpected(errors) == []
    assert results.count(True) == 25
    assert results.count(False) == 55
    final = dynamodb.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]
    assert final["n"] == {"N": "25"}


def test_given_one_unclaimed_item_when_many_clients_claim_it_then_one_wins_and_keeps_it(
    dynamodb: Any, table: str
) -> None:
    key = {"pk": {"S": "envelope"}, "sk": {"S": "e1"}}
    dynamodb.put_item(TableName=table, Item={**key, "status": {"S": "draft"}})

    def claim(n: int) -> str | None:
        try:
            dynamodb.update_item(
                TableName=table,
                Key=key,
                UpdateExpression="SET #s = :sending, claimed_by = :me",
                ConditionExpression="#s = :draft",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":sending": {"S": "sending"},
                    ":draft": {"S": "draft"},
                    ":me": {"S": f"claimant-{n}"},
                },
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return None
            raise
        return f"claimant-{n}"

    results, errors = _in_parallel(claim, 48)

    assert _unexpected(errors) == []
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    item = dynamodb.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]
    assert item["claimed_by"] == {"S": winners[0]}


def test_given_overlapping_transfers_when_run_in_parallel_then_each_is_all_or_nothing(
    dynamodb: Any, table: str
) -> None:
    accounts = [f"acct-{n}" for n in range(4)]
    for account in accounts:
        dynamodb.put_item(
            TableName=table,
            Item={"pk": {"S": account}, "sk": {"S": "balance"}, "cents": {"N": "100"}},
        )
    rng = random.Random(7)
    transfers = []
    for n in range(120):
        source, target = rng.sample(accounts, 2)
        transfers.append((f"transfer-{n}", source, target, rng.choice((10, 30, 50))))

    def transfer(n: int) -> str:
        transfer_id, source, target, cents = transfers[n]
        amount = {":c": {"N": str(cents)}}
        dynamodb.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": table,
                        "Key": {"pk": {"S": source}, "sk": {"S": "balance"}},
                        "UpdateExpression": "SET cents = cents - :c",
                        "ConditionExpression": "cents >= :c",
                        "ExpressionAttributeValues": amount,
                    }
                },
                {
                    "Update": {
                        "TableName": table,
                        "Key": {"pk": {"S": target}, "sk": {"S": "balance"}},
                        "UpdateExpression": "SET cents = cents + :c",
                        "ExpressionAttributeValues": amount,
                    }
                },
                {
                    "Put": {
                        "TableName": table,
                        "Item": {
                            "pk": {"S": "ledger"},
                            "sk": {"S": transfer_id},
                            "gsi1pk": {"S": "ledger"},
                            "gsi1sk": {"S": transfer_id},
                        },
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )
        return transfer_id

    done, errors = _in_parallel(transfer, len(transfers))

    assert _unexpected(errors) == []
    assert len(done) + len(errors) == len(transfers)
    assert done, "some transfers must fit the balances"
    recorded = dynamodb.query(
        TableName=table,
        KeyConditionExpression="pk = :l",
        ExpressionAttributeValues={":l": {"S": "ledger"}},
        ConsistentRead=True,
    )["Items"]
    # Every committed transfer left its record, and no cancelled one did.
    assert sorted(item["sk"]["S"] for item in recorded) == sorted(done)
    expected = dict.fromkeys(accounts, 100)
    for transfer_id, source, target, cents in transfers:
        if transfer_id in done:
            expected[source] -= cents
            expected[target] += cents
    balances = {
        account: int(
            dynamodb.get_item(
                TableName=table,
                Key={"pk": {"S": account}, "sk": {"S": "balance"}},
                ConsistentRead=True,
            )["Item"]["cents"]["N"]
        )
        for account in accounts
    }
    assert balances == expected
    assert min(balances.values()) >= 0
    assert sum(balances.values()) == 400


def test_given_a_mix_of_reads_writes_and_transactions_when_run_in_parallel_then_none_fails(
    dynamodb: Any, table: str
) -> None:
    # Many partitions: moto's transactions used to copy the whole table, and a read of an
    # unknown key (moto's items are a defaultdict) added a partition while it was copied.
    bills = [
        {
            "PutRequest": {
                "Item": {
                    "pk": {"S": f"firm-{n}"},
                    "sk": {"S": "bill"},
                    "gsi1pk": {"S": "by-state"},
                    "gsi1sk": {"S": f"open-{n:04}"},
                    "cents": {"N": str(n)},
                }
            }
        }
        for n in range(600)
    ]
    for start in range(0, len(bills), 25):
        dynamodb.batch_write_item(RequestItems={table: bills[start : start + 25]})

    def work(n: int) -> str:
        kind = n % 8
        bill = {"pk": {"S": f"firm-{n % 600}"}, "sk": {"S": "bill"}}
        if kind in (0, 2, 4, 6):
            dynamodb.get_item(TableName=table, Key={"pk": {"S": f"none-{n}"}, "sk": {"S": "x"}})
        elif kind == 1:
            dynamodb.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": table,
                            "Key": bill,
                            "UpdateExpression": "SET cents = cents + :one",
                            "ExpressionAttributeValues": {":one": {"N": "1"}},
                        }
                    },
                    {
                        "Put": {
                            "TableName": table,
                            "Item": {"pk": {"S": f"txn-{n}"}, "sk": {"S": "t"}},
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ]
            )
        elif kind == 3:
            dynamodb.put_item(TableName=table, Item={"pk": {"S": f"new-{n}"}, "sk": {"S": "n"}})
        elif kind == 5:
            dynamodb.query(
                TableName=table,
                IndexName="gsi1",
                KeyConditionExpression="gsi1pk = :p AND begins_with(gsi1sk, :s)",
                ExpressionAttributeValues={":p": {"S": "by-state"}, ":s": {"S": "open-00"}},
            )
        else:
            dynamodb.batch_get_item(RequestItems={table: {"Keys": [bill]}})
        return "ok"

    results, errors = _in_parallel(work, 320)

    assert [f"{_code(e)}: {e}" for e in errors] == []
    assert len(results) == 320


def test_given_transfers_between_two_accounts_when_read_transactionally_then_no_read_is_torn(
    dynamodb: Any, table: str
) -> None:
    keys = [{"pk": {"S": account}, "sk": {"S": "balance"}} for account in ("a", "b")]
    for key in keys:
        dynamodb.put_item(TableName=table, Item={**key, "cents": {"N": "1000"}})

    def move(n: int) -> None:
        source, target = (keys[0], keys[1]) if n % 2 else (keys[1], keys[0])
        amount = {":c": {"N": "1"}}
        dynamodb.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": table,
                        "Key": source,
                        "UpdateExpression": "SET cents = cents - :c",
                        "ExpressionAttributeValues": amount,
                    }
                },
                {
                    "Update": {
                        "TableName": table,
                        "Key": target,
                        "UpdateExpression": "SET cents = cents + :c",
                        "ExpressionAttributeValues": amount,
                    }
                },
            ]
        )

    def read(_: int) -> int:
        answer = dynamodb.transact_get_items(
            TransactItems=[{"Get": {"TableName": table, "Key": key}} for key in keys]
        )
        return sum(int(r["Item"]["cents"]["N"]) for r in answer["Responses"])

    def work(n: int) -> int | None:
        if n % 2:
            return read(n)
        move(n // 2)
        return None

    results, errors = _in_parallel(work, 400)

    assert [f"{_code(e)}: {e}" for e in errors] == []
    totals = {total for total in results if total is not None}
    assert totals == {2000}


# --- what the emulator keeps per request (the local stack's memory) -----------------------------


def _live(model: type) -> int:
    """How many instances of a moto model its instance tracking holds."""
    gc.collect()
    return sum(1 for _ in model.instances_tracked)  # type: ignore[attr-defined]


def _seed(dynamodb: Any, table: str, count: int) -> None:
    for n in range(count):
        dynamodb.put_item(
            TableName=table,
            Item={"pk": {"S": "firm"}, "sk": {"S": f"bill-{n:03}"}, "cents": {"N": str(n)}},
        )


def test_given_a_table_when_queried_many_times_then_moto_keeps_no_copy_of_the_answers(
    dynamodb: Any, table: str
) -> None:
    _seed(dynamodb, table, 50)
    query = {
        "TableName": table,
        "KeyConditionExpression": "pk = :p",
        "ExpressionAttributeValues": {":p": {"S": "firm"}},
    }
    assert len(dynamodb.query(**query)["Items"]) == 50
    before = _live(Item)

    for _ in range(40):
        dynamodb.query(**query)

    assert _live(Item) == before


def test_given_a_table_when_transactions_run_then_moto_keeps_no_copy_of_the_table(
    dynamodb: Any, table: str
) -> None:
    _seed(dynamodb, table, 20)
    tables_before = _live(Table)
    items_before = _live(Item)

    for n in range(30):
        dynamodb.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": table,
                        "Key": {"pk": {"S": "firm"}, "sk": {"S": "bill-001"}},
                        "UpdateExpression": "SET cents = cents + :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                }
            ]
        )
    with pytest.raises(ClientError) as cancelled:
        dynamodb.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": table,
                        "Item": {"pk": {"S": "firm"}, "sk": {"S": "bill-002"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            ]
        )

    assert _code(cancelled.value) == "TransactionCanceledException"
    assert _live(Table) == tables_before
    assert _live(Item) == items_before


def test_given_reads_and_deletes_of_unknown_keys_then_the_table_does_not_grow(
    dynamodb: Any, table: str
) -> None:
    _seed(dynamodb, table, 5)
    stored = dynamodb_backends[ACCOUNT][REGION].tables[table]
    partitions = len(stored.items)

    for n in range(100):
        key = {"pk": {"S": f"unknown-{n}"}, "sk": {"S": "x"}}
        assert "Item" not in dynamodb.get_item(TableName=table, Key=key)
        dynamodb.delete_item(TableName=table, Key=key)

    assert len(stored.items) == partitions


# --- what a DynamoDB call costs the emulator (every other call waits under the lock) ------------


class _Comparisons:
    """Counts DynamoType's comparisons (what sorting and matching items costs) in this process,
    where the emulator's server thread runs."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.lt = 0
        self.eq = 0
        lt, eq = DynamoType.__lt__, DynamoType.__eq__

        def counted_lt(this: Any, other: Any) -> Any:
            self.lt += 1
            return lt(this, other)

        def counted_eq(this: Any, other: Any) -> Any:
            self.eq += 1
            return eq(this, other)

        monkeypatch.setattr(DynamoType, "__lt__", counted_lt)
        monkeypatch.setattr(DynamoType, "__eq__", counted_eq)
        monkeypatch.setattr(DynamoType, "__hash__", DynamoType.__hash__)

    def reset(self) -> None:
        self.lt = self.eq = 0


def _many_partitions(dynamodb: Any, table: str, firms: int) -> None:
    for firm in range(firms):
        for bill in range(3):
            dynamodb.put_item(
                TableName=table,
                Item={
                    "pk": {"S": f"firm-{firm:03}"},
                    "sk": {"S": f"bill-{bill}"},
                    "gsi1pk": {"S": f"state-{firm % 50}"},
                    "gsi1sk": {"S": f"firm-{firm:03}-{bill}"},
                    "cents": {"N": str(100 * firm + bill)},
                },
            )


def test_given_a_table_of_many_partitions_when_one_is_queried_then_only_its_items_are_compared(
    dynamodb: Any, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _many_partitions(dynamodb, table, 150)
    query = {
        "TableName": table,
        "KeyConditionExpression": "pk = :p",
        "ExpressionAttributeValues": {":p": {"S": "firm-007"}},
    }
    counted = _Comparisons(monkeypatch)

    answer = dynamodb.query(**query)

    assert [i["sk"]["S"] for i in answer["Items"]] == ["bill-0", "bill-1", "bill-2"]
    # moto sorted all 450 items of the table to find the partition's 3 (thousands of compares).
    assert counted.lt + counted.eq < 30
    # The same answers as before: order, paging, conditions, filters.
    backwards = dynamodb.query(**query, ScanIndexForward=False)
    assert [i["sk"]["S"] for i in backwards["Items"]] == ["bill-2", "bill-1", "bill-0"]
    first = dynamodb.query(**query, Limit=2)
    assert [i["sk"]["S"] for i in first["Items"]] == ["bill-0", "bill-1"]
    rest = dynamodb.query(**query, Limit=2, ExclusiveStartKey=first["LastEvaluatedKey"])
    assert [i["sk"]["S"] for i in rest["Items"]] == ["bill-2"]
    assert "LastEvaluatedKey" not in rest
    ranged = dynamodb.query(
        TableName=table,
        KeyConditionExpression="pk = :p AND sk > :s",
        FilterExpression="cents <> :c",
        ExpressionAttributeValues={
            ":p": {"S": "firm-007"},
            ":s": {"S": "bill-0"},
            ":c": {"N": "702"},
        },
    )
    assert [i["sk"]["S"] for i in ranged["Items"]] == ["bill-1"]
    assert ranged["ScannedCount"] == 2
    nothing = dynamodb.query(
        TableName=table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "firm-none"}},
    )
    assert nothing["Items"] == []
    assert len(dynamodb_backends[ACCOUNT][REGION].tables[table].items) == 150
    scanned = dynamodb.scan(TableName=table, Limit=4)  # a Scan is moto's, in key order
    assert [i["pk"]["S"] + i["sk"]["S"] for i in scanned["Items"]] == [
        "firm-000bill-0",
        "firm-000bill-1",
        "firm-000bill-2",
        "firm-001bill-0",
    ]


def test_given_a_table_of_many_items_when_an_index_is_queried_then_the_table_is_not_sorted(
    dynamodb: Any, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _many_partitions(dynamodb, table, 150)
    counted = _Comparisons(monkeypatch)

    answer = dynamodb.query(
        TableName=table,
        IndexName="gsi1",
        KeyConditionExpression="gsi1pk = :s",
        ExpressionAttributeValues={":s": {"S": "state-7"}},
    )

    assert [i["gsi1sk"]["S"] for i in answer["Items"]] == [
        f"firm-{firm:03}-{bill}" for firm in (7, 57, 107) for bill in range(3)
    ]
    # moto sorted all 450 items first (thousands of compares); the 9 matches still are.
    assert counted.lt < 100
    backwards = dynamodb.query(
        TableName=table,
        IndexName="gsi1",
        KeyConditionExpression="gsi1pk = :s AND begins_with(gsi1sk, :f)",
        ExpressionAttributeValues={":s": {"S": "state-7"}, ":f": {"S": "firm-057"}},
        ScanIndexForward=False,
        Limit=2,
    )
    assert [i["gsi1sk"]["S"] for i in backwards["Items"]] == ["firm-057-2", "firm-057-1"]


def test_given_a_query_then_its_answer_is_serialised_outside_the_lock(
    dynamodb: Any, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed(dynamodb, table, 5)
    held: dict[str, bool] = {}
    serialized, query = DynamoHandler.serialized, Table.query

    def watched_serialized(self: Any, result: Any) -> Any:
        held["serialising"] = moto_speedups.LOCK._is_owned()  # type: ignore[attr-defined]
        return serialized(self, result)

    def watched_query(self: Any, *args: Any, **kwargs: Any) -> Any:
        held["querying"] = moto_speedups.LOCK._is_owned()  # type: ignore[attr-defined]
        return query(self, *args, **kwargs)

    monkeypatch.setattr(DynamoHandler, "serialized", watched_serialized)
    monkeypatch.setattr(Table, "query", watched_query)

    answer = dynamodb.query(
        TableName=table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "firm"}},
    )

    assert len(answer["Items"]) == 5
    # Run under the lock, answered after it: the other calls do not wait for the serializer.
    assert held == {"querying": True, "serialising": False}


RICH_ITEM = {
    "pk": {"S": "firm"},
    "sk": {"S": "rich"},
    "cents": {"N": "1250"},
    "rate": {"N": "1.50"},
    "raw": {"B": b"\x00\x01hello"},
    "raws": {"BS": [b"hi", b"\xffyo"]},
    "tags": {"SS": ["a", "b"]},
    "counts": {"NS": ["1", "2"]},
    "paid": {"BOOL": True},
    "void": {"BOOL": False},
    "nothing": {"NULL": True},
    "empty": {"S": ""},
    "nested": {
        "M": {
            "list": {"L": [{"S": "q"}, {"N": "3"}, {"M": {}}, {"B": b"\x00"}, {"NULL": True}]},
            "deeper": {"M": {"name": {"S": "Zoë"}}},
        }
    },
    "none": {"L": []},
}


def _moto_body(operation: str, result: dict[str, Any], direct: bool) -> str:
    serializer_class = moto_serialize.get_serializer_class("dynamodb", "json")
    structure = moto_serialize.BaseJSONSerializer._serialize_type_structure
    if not direct:  # moto's own: every AttributeValue through its shape
        moto_serialize.BaseJSONSerializer._serialize_type_structure = structure.__wrapped__
    try:
        serializer = serializer_class(
            operation_model=get_service_model("dynamodb").operation_model(operation),
            pretty_print=False,
            value_picker=moto_serialize.XFormedAttributePicker(),
        )
        return str(serializer.serialize(DynamoResult(result).result)["body"])
    finally:
        moto_serialize.BaseJSONSerializer._serialize_type_structure = structure


def test_given_items_of_every_type_then_their_answer_is_written_as_moto_writes_it(
    emulator: str,
) -> None:
    item = {name: DynamoType(value) for name, value in RICH_ITEM.items()}
    key = {"pk": DynamoType({"S": "firm"}), "sk": DynamoType({"S": "rich"})}
    answers = {
        "Query": {"Count": 2, "ScannedCount": 2, "Items": [item, item], "LastEvaluatedKey": key},
        "GetItem": {"Item": item},
        "BatchGetItem": {"Responses": {"bills": [item]}, "UnprocessedKeys": {}},
    }
    for operation, result in answers.items():
        assert _moto_body(operation, result, direct=True) == _moto_body(
            operation, result, direct=False
        ), operation


def test_given_a_query_of_many_items_then_their_attributes_are_not_picked_one_by_one(
    dynamodb: Any, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(50):
        dynamodb.put_item(TableName=table, Item={**RICH_ITEM, "sk": {"S": f"rich-{n:02}"}})
    picked = [0]
    pick = moto_serialize.XFormedAttributePicker.__call__

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        picked[0] += 1
        return pick(self, *args, **kwargs)

    monkeypatch.setattr(moto_serialize.XFormedAttributePicker, "__call__", counted)

    answer = dynamodb.query(
        TableName=table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "firm"}},
    )

    assert len(answer["Items"]) == 50
    assert answer["Items"][7] == {**RICH_ITEM, "sk": {"S": "rich-07"}}
    # moto's serializer picked each of the ten AttributeValue members of every attribute of
    # every item (~10,000 picks for this answer); now only the answer's own members are.
    assert picked[0] < 50
