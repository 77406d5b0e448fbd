"""The emulator's own correctness under threads (local/moto_speedups.py): what the local stack
and the tests rely on when a sync, webhooks and sends touch one table at once."""

from __future__ import annotations

import threading
from typing import Any

from local.aws_template import create_dynamodb_tables

ATTRIBUTES = 30


def test_given_items_being_created_by_updates_when_read_meanwhile_then_no_read_sees_half_an_item(
    aws: Any,
) -> None:
    table = create_dynamodb_tables(aws, name_for=lambda logical: f"torn-{logical}")["AppTable"]
    keys = [{"pk": {"S": "FIRM#t"}, "sk": {"S": f"BILL#{i:06d}"}} for i in range(200)]
    done = threading.Event()
    torn: list[dict[str, Any]] = []

    def write() -> None:
        for key in keys:
            aws.update_item(
                TableName=table,
                Key=key,
                UpdateExpression="SET " + ", ".join(f"#a{k} = :v" for k in range(ATTRIBUTES)),
                ExpressionAttributeNames={f"#a{k}": f"a{k}" for k in range(ATTRIBUTES)},
                ExpressionAttributeValues={":v": {"S": "x"}},
            )
        done.set()

    def read() -> None:
        while not done.is_set():
            answer = aws.batch_get_item(
                RequestItems={table: {"Keys": keys[::2], "ProjectionExpression": "pk, a29"}}
            )
            torn.extend(i for i in answer["Responses"][table] if "a29" not in i)

    threads = [threading.Thread(target=write), threading.Thread(target=read)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert torn == []
