"""Fixes to the emulator, not to our code, for moto 5's DynamoDB:
- `transact_write_items` deep-copies the whole table once per action (for rollback), so a
  two-action transaction on a table of 20,000 bills costs seconds. Here the copy is made once
  per table per call, which is all the rollback needs.
- that copy iterates the table while other threads write to it (the send workflow's Map runs
  tasks in parallel), which breaks with "dictionary changed size during iteration". Writes and
  reads are serialised here: DynamoDB makes writes atomic per item and transactions atomic,
  and a read never sees a transaction's writes before it succeeded.
Semantics are unchanged."""

from __future__ import annotations

import copy
import threading
from typing import Any

import moto.dynamodb.models as dynamodb_models

_memo = threading.local()


class _CopyOncePerCall:
    """Stands in for the `copy` module inside moto's DynamoDB models."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        cache: dict[int, Any] | None = getattr(_memo, "cache", None)
        if cache is None or memo is not None:
            return copy.deepcopy(value, memo)
        key = id(value)
        if key not in cache:
            cache[key] = copy.deepcopy(value)
        return cache[key]


_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    backend = dynamodb_models.DynamoDBBackend
    original = backend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        _memo.cache = {}
        try:
            return original(self, transact_items)
        finally:
            _memo.cache = None

    dynamodb_models.copy = _CopyOncePerCall()  # type: ignore[assignment]
    backend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    for name in SERIALISED:
        setattr(backend, name, _serialised(getattr(backend, name)))
    _installed = True


# Reads too: a Query walks the table's items while a write may be adding one, and moto applies
# a transaction's actions one by one and rolls back at the end, so an unserialised read could
# see writes of a transaction that then fails (issue 9, finding 10: Paid (GL) read as 2,000
# while a stale refund transaction was being rolled back). DynamoDB's reads are read-committed.
SERIALISED = (
    "put_item",
    "update_item",
    "delete_item",
    "batch_write_item",
    "transact_write_items",
    "get_item",
    "batch_get_item",
    "query",
    "scan",
)
_write_lock = threading.RLock()


def _serialised(method: Any) -> Any:
    def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _write_lock:
            return method(self, *args, **kwargs)

    return locked
