"""Plumbing shared by the DynamoDB repositories: it owns key shapes, the attribute-value codec,
the timestamp format stored in the table, update-expression building, request counting and
the retry policy. The item design itself is documented in docs/data-model.md.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

# boto3's low-level DynamoDB client; typed loosely because its stubs are an optional install.
DynamoClient = Any
Item = dict[str, Any]

TRANSACTION_LIMIT = 100  # actions per TransactWriteItems
# DynamoDB refuses a TransactWriteItems whose items pass 4 MB in all (moto does not check it);
# a pack of actions is kept under this many bytes of their JSON (more than the items' size).
TRANSACTION_BYTES = 4 * 1024 * 1024 - 64 * 1024
BATCH_WRITE_LIMIT = 25
BATCH_GET_LIMIT = 100  # keys per BatchGetItem

# Errors worth another attempt: capacity and contention, never a bad request.
RETRYABLE_ERRORS = frozenset(
    {
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "InternalServerError",
        "TransactionConflictException",
        "TransactionInProgressException",
    }
)
# Per-action cancellation reasons that say "try again", not "this item is wrong". "None" marks
# the actions that were fine but cancelled along with a failing one.
RETRYABLE_REASONS = frozenset(
    {"None", "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}
)
CONDITION_FAILED = "ConditionalCheckFailed"

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


class StoreUnavailable(RuntimeError):
    """DynamoDB kept refusing work (throttled or unprocessed) after every retry."""


def firm_pk(firm_id: str) -> str:
    return f"FIRM#{firm_id}"


def to_item(values: Mapping[str, Any]) -> Item:
    """Attribute values for a plain dict; None values are left out (absent, not NULL)."""
    return {k: to_attr(v) for k, v in values.items() if v is not None}


def to_attr(value: Any) -> dict[str, Any]:
    return dict(_SERIALIZER.serialize(value))


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _DESERIALIZER.deserialize(v) for k, v in item.items()}


def plain_json(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal; JSON-shaped models want int or float."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: plain_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_json(v) for v in value]
    return value


def iso_utc(moment: datetime) -> str:
    """Fixed-width ISO-8601 in UTC with microseconds, so that string order is time order (the
    condition expressions compare these strings). A naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def iso_or_none(moment: datetime | None) -> str | None:
    return None if moment is None else iso_utc(moment)


def parse_iso(text: Any) -> datetime | None:
    if text is None or text == "":
        return None
    return datetime.fromisoformat(str(text))


def require_iso(text: Any) -> datetime:
    moment = parse_iso(text)
    if moment is None:
        raise ValueError("a required timestamp is missing from a stored item")
    return moment


def epoch_seconds(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


class Update:
    """One UpdateItem (or transactional Update) built with placeholders for every name and
    value, so reserved words (`state`, `status`, `error`) never need special care."""

    def __init__(self, table: str, key: Item) -> None:
        self.table = table
        self.key = key
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}
        self._set: list[str] = []
        self._remove: list[str] = []
        self.condition: str | None = None

    def name(self, attribute: str) -> str:
        for placeholder, existing in self.names.items():
            if existing == attribute:
                return placeholder
        placeholder = f"#n{len(self.names)}"
        self.names[placeholder] = attribute
        return placeholder

    def value(self, value: Any) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = to_attr(value)
        return placeholder

    def set(self, attribute: str, value: Any) -> Update:
        """SET the attribute, or REMOVE it when the value is None (absent means "none")."""
        if value is None:
            return self.remove(attribute)
        self._set.append(f"{self.name(attribute)} = {self.value(value)}")
        return self

    def set_if_absent(self, attribute: str, value: Any) -> Update:
        """SET the attribute only where the item has none yet (`if_not_exists`)."""
        name = self.name(attribute)
        self._set.append(f"{name} = if_not_exists({name}, {self.value(value)})")
        return self

    def remove(self, attribute: str) -> Update:
        self._remove.append(self.name(attribute))
        return self

    def when(self, condition: str) -> Update:
        self.condition = condition
        return self

    def request(self) -> dict[str, Any]:
        """The arguments of UpdateItem; also valid as a TransactWriteItems `Update`."""
        clauses = []
        if self._set:
            clauses.append("SET " + ", ".join(self._set))
        if self._remove:
            clauses.append("REMOVE " + ", ".join(self._remove))
        request: dict[str, Any] = {
            "TableName": self.table,
            "Key": self.key,
            "UpdateExpression": " ".join(clauses),
            "ExpressionAttributeNames": self.names,
        }
        if self.values:
            request["ExpressionAttributeValues"] = self.values
        if self.condition:
            request["ConditionExpression"] = self.condition
        return request


def action_bytes(action: Mapping[str, Any]) -> int:
    """A transaction action's size as JSON: at least what DynamoDB counts of its item."""
    return len(json.dumps(action, separators=(",", ":")).encode()) + 1


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def cancellation_codes(exc: ClientError) -> list[str]:
    """Per-action reason codes of a cancelled transaction, in the order of its actions."""
    reasons = exc.response.get("CancellationReasons") or []
    return [str(r.get("Code") or "None") for r in reasons]


def backoff_delay(attempt: int, base: float = 0.05, cap: float = 2.0) -> float:
    # Full jitter: spreads the retries of concurrent writers (a sync and a webhook) apart.
    return random.uniform(0, min(cap, base * 2**attempt))  # noqa: S311 - not cryptographic


class DynamoRepository:
    """Base of every repository: one table, one client, and counted requests."""

    def __init__(
        self,
        client: DynamoClient,
        table_name: str,
        *,
        max_attempts: int = 5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._table = table_name
        self._max_attempts = max_attempts
        self._sleep = sleep
        # Number of API calls made, for benchmarks and tests (every attempt counts).
        self.write_requests = 0
        self.read_requests = 0

    def _write(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        self.write_requests += 1
        result: dict[str, Any] = getattr(self._client, operation)(**kwargs)
        return result

    def _read(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        self.read_requests += 1
        result: dict[str, Any] = getattr(self._client, operation)(**kwargs)
        return result

    def _retrying(self, call: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Run `call`, retrying capacity and contention errors with backoff; the last error
        bubbles. A cancelled transaction is retried only when every reason is retryable."""
        for attempt in range(self._max_attempts):
            try:
                return call()
            except ClientError as exc:
                code = error_code(exc)
                if code == "TransactionCanceledException":
                    retry = set(cancellation_codes(exc)) <= RETRYABLE_REASONS
                else:
                    retry = code in RETRYABLE_ERRORS
                if not retry or attempt + 1 >= self._max_attempts:
                    raise
                self._sleep(backoff_delay(attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def _transact(self, actions: Sequence[Mapping[str, Any]]) -> None:
        self._retrying(partial(self._write, "transact_write_items", TransactItems=list(actions)))

    def _update(self, update: Update) -> dict[str, Any]:
        return self._retrying(partial(self._write, "update_item", **update.request()))

    def _get_item(self, pk: str, sk: str) -> Item | None:
        response = self._retrying(
            partial(
                self._read,
                "get_item",
                TableName=self._table,
                Key={"pk": {"S": pk}, "sk": {"S": sk}},
                ConsistentRead=True,
            )
        )
        item: Item | None = response.get("Item")
        return item

    def _batch_get(
        self,
        keys: list[Item],
        projection: str | None = None,
        names: dict[str, str] | None = None,
        *,
        consistent: bool = False,
    ) -> list[Item]:
        """BatchGetItem of up to 100 keys, retrying UnprocessedKeys."""
        items: list[Item] = []
        spec: dict[str, Any] = {"Keys": keys}
        if consistent:
            spec["ConsistentRead"] = True
        if projection:
            spec["ProjectionExpression"] = projection
            spec["ExpressionAttributeNames"] = names or {}
        request: dict[str, Any] = {self._table: spec}
        for attempt in range(self._max_attempts * 2):
            response = self._retrying(partial(self._read, "batch_get_item", RequestItems=request))
            items.extend(response.get("Responses", {}).get(self._table, []))
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return items
            self._sleep(backoff_delay(attempt))
        raise StoreUnavailable("BatchGetItem left keys unprocessed after every retry")

    def _query_prefix(self, pk: str, sk_prefix: str, **kwargs: Any) -> list[Item]:
        """Every item of one partition whose sort key starts with `sk_prefix`, read consistently."""
        return self._query_all(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": to_attr(pk), ":prefix": to_attr(sk_prefix)},
            ConsistentRead=True,
            **kwargs,
        )

    def _query_all(self, **kwargs: Any) -> list[Item]:
        """Every item of a Query, following LastEvaluatedKey."""
        items: list[Item] = []
        start: Item | None = None
        while True:
            args = dict(kwargs, TableName=self._table)
            if start:
                args["ExclusiveStartKey"] = start
            response = self._retrying(partial(self._read, "query", **args))
            items.extend(response.get("Items", []))
            start = response.get("LastEvaluatedKey")
            if not start:
                return items
