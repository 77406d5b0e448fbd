"""Fixes to the emulator, not to our code, for moto 5 (in-process `mock_aws` and the server the
local stack runs). Semantics are DynamoDB's; moto's own are kept where they already are.

- **Linearizable DynamoDB.** moto's DynamoDB is plain dicts shared by every request thread: a
  Query walking a table while a write adds an item breaks with "dictionary changed size during
  iteration", an answer built while an UpdateItem mutates the item is torn, and a
  transaction's conditions race the writes they guard. Every DynamoDB action is run under one
  lock, `LOCK`, and so are the backend's methods for callers that reach them without a request
  (Step Functions' DynamoDB integration). DynamoDB makes each call atomic; here they are also
  serial, which is stronger and still correct. The action's result leaves the lock as plain
  dicts and lists of its own (moto's `DynamoResult` copies every item it answers), so the
  response is serialised outside it: moto's model-driven serializer took as long as the calls
  themselves, and every other DynamoDB call of every function waited for it.
- **Items serialised directly.** That serializer walks botocore's AttributeValue shape for
  every attribute of every item, trying each of its ten members through moto's attribute
  pickers: most of the emulator's time under load. An AttributeValue is already its wire form
  once moto's `DynamoResult` has made it plain (`{"S": ...}`, `{"M": {...}}`), so it is written
  as it is, binary values base64-encoded as the serializer does; anything else is moto's.
- **A Query reads its partition.** moto 5.2's Query sorts every item of the table (`all_items`)
  and then keeps those of the asked partition: each `GET /invoices` compared thousands of items
  under the lock, more as the table grew. A base-table Query here reads only the partition's
  items (moto then sorts and filters them as before); an index Query still walks the table, as
  moto keeps no index, but no longer sorts all of it first (moto sorts what matches).
- **Transactions without a table copy.** moto backs up the whole table before a
  TransactWriteItems (for its rollback), seconds on a table of 20,000 bills, and under the lock
  every other call waits for it. Here only the items the transaction names are saved and, when
  it is cancelled, put back: the same all-or-nothing outcome.
- **No phantom partitions.** A read or delete of a key whose partition does not exist used to
  add an empty one to the table, for good.
- **Bounded memory.** moto keeps every model instance it ever made (`instances_tracked`, read by
  `/moto-api/data.json`), so each Query's copies of its items, each table backup and each
  request's objects stayed alive forever: megabytes per `GET /invoices`. The tracking keeps
  weak references instead; live objects (held by their backends) are still listed, in order.

`LOCK` is re-entrant and module-level: code that wraps the backend's write methods (persistence
to disk) wraps them after `install()` and runs inside the lock whenever a request does.
"""

from __future__ import annotations

import base64
import copy
import inspect
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import moto.core.common_models as common_models
import moto.core.serialize as moto_serialize
import moto.dynamodb.models as dynamodb_models
import moto.dynamodb.models.table as dynamodb_tables
from moto.dynamodb.responses import DynamoHandler

_write_lock = threading.RLock()
# The public name. The wrappers look `_write_lock` up at each call, so a test may swap it.
LOCK = _write_lock

# The backend's methods that touch items; every one runs under LOCK.
SERIALISED = (
    "put_item",
    "update_item",
    "delete_item",
    "batch_write_item",
    "transact_write_items",
    "get_item",
    "batch_get_item",
    "transact_get_items",
    "query",
    "scan",
    "execute_statement",
    "execute_transaction",
    "batch_execute_statement",
)


def serialised(method: Callable[..., Any]) -> Callable[..., Any]:
    """`method` run under the lock (re-entrant: a locked method may call another)."""

    def locked(*args: Any, **kwargs: Any) -> Any:
        with _write_lock:
            return method(*args, **kwargs)

    locked.__wrapped__ = method  # type: ignore[attr-defined]
    locked.__name__ = getattr(method, "__name__", "locked")
    return locked


class WeakInstances:
    """Stands in for a moto model's `instances_tracked` list: iterates the instances still
    alive, in creation order, without keeping any alive."""

    def __init__(self, existing: list[Any] | None = None) -> None:
        self._lock = threading.Lock()
        self._refs: list[Callable[[], Any]] = []
        self._prune_at = 1024
        for instance in existing or ():
            self.append(instance)

    def append(self, instance: Any) -> None:
        try:
            ref: Callable[[], Any] = weakref.ref(instance)
        except TypeError:  # no weak references to it (slots): keep it, as moto did
            ref = _Strong(instance)
        with self._lock:
            self._refs.append(ref)
            if len(self._refs) >= self._prune_at:
                self._refs = [r for r in self._refs if r() is not None]
                self._prune_at = max(1024, 2 * len(self._refs))

    def __iter__(self) -> Iterator[Any]:
        with self._lock:
            refs = list(self._refs)
        for ref in refs:
            instance = ref()
            if instance is not None:
                yield instance

    def __len__(self) -> int:
        return sum(1 for _ in self)


class _Strong:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __call__(self) -> Any:
        return self.value


def _tracking_new(cls: type, *args: Any, **kwargs: Any) -> Any:
    instance = super(common_models.BaseModel, cls).__new__(cls)
    tracked = cls.__dict__.get("instances_tracked")
    if not isinstance(tracked, WeakInstances):
        # Made by moto's metaclass, or reset to [] by `reset_model_data()`: convert it once.
        tracked = WeakInstances(tracked if isinstance(tracked, list) else None)
        cls.instances_tracked = tracked
    tracked.append(instance)
    return instance


_in_transaction = threading.local()


class _NoTableBackup:
    """Stands in for the `copy` module inside moto's DynamoDB backend: within a transaction the
    whole-table backup becomes the table itself (its rollback then changes nothing, and ours
    puts the named items back); every other copy is a real one."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        if getattr(_in_transaction, "active", False) and isinstance(value, dynamodb_tables.Table):
            return value
        return copy.deepcopy(value, memo)


def _key_of(backend: Any, op_type: str, op: dict[str, Any]) -> dict[str, Any] | None:
    table = backend.tables.get(op.get("TableName"))
    if table is None:
        return None
    if op_type != "Put":
        key = op.get("Key")
        return key if isinstance(key, dict) else None
    attrs = op.get("Item") or {}
    key = {}
    for name in (table.hash_key_attr, table.range_key_attr):
        if name is not None:
            if name not in attrs:
                return None
            key[name] = attrs[name]
    return key


def _transactional(original: Callable[..., Any]) -> Callable[..., Any]:
    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
        for item in transact_items:
            if len(item) != 1:
                continue  # moto refuses it before writing anything
            op_type, op = next(iter(item.items()))
            key = _key_of(self, op_type, op) if isinstance(op, dict) else None
            if key is None:
                continue
            try:
                current = self.get_item(op["TableName"], key)
            except Exception:  # a bad key: moto refuses the transaction with its own error
                continue
            before = current.to_json()["Attributes"] if current is not None else None
            saved.append((op["TableName"], key, copy.deepcopy(before)))
        _in_transaction.active = True
        try:
            return original(self, transact_items)
        except BaseException:
            for table_name, key, before in reversed(saved):
                if before is None:
                    if self.get_item(table_name, key) is not None:
                        self.delete_item(table_name, key)
                else:
                    self.put_item(table_name, before)
            raise
        finally:
            _in_transaction.active = False

    return transact_write_items


def _no_phantom_partitions(table_class: Any) -> None:
    """moto's items are a defaultdict: reading or deleting a key whose partition does not exist
    added an empty partition, kept forever (a table grew with every unknown pay token asked
    for, and every Query and Scan walked them)."""
    original_get, original_delete = table_class.get_item, table_class.delete_item

    def get_item(
        self: Any, hash_key: Any, range_key: Any = None, projection_expression: Any = None
    ) -> Any:
        if range_key is not None and hash_key not in self.items:
            return None
        return original_get(self, hash_key, range_key, projection_expression)

    def delete_item(self: Any, hash_key: Any, range_key: Any) -> Any:
        if range_key is not None and hash_key not in self.items:
            return None
        item = original_delete(self, hash_key, range_key)
        if range_key is not None and not self.items.get(hash_key, True):
            del self.items[hash_key]  # its last item is gone
        return item

    table_class.get_item = get_item
    table_class.delete_item = delete_item


_NOT_ACTIONS = frozenset({"call_action", "get_endpoint_name"})


def _handler_actions() -> list[str]:
    """DynamoHandler's action methods (ListTables ... Query ...: what `call_action` calls by the
    request's X-Amz-Target), each run under the lock; `call_action` serialises its result after
    the lock is released."""
    return sorted(
        name
        for name, value in vars(DynamoHandler).items()
        if inspect.isfunction(value) and not name.startswith("_") and name not in _NOT_ACTIONS
    )


class _QueryScope(threading.local):
    table: Any = None
    hash_key: Any = None


_query_scope = _QueryScope()
_EVERY_ITEM = object()  # an index Query: every item of the table, in no particular order


def _partition_queries(table_class: Any) -> None:
    """Inside `Table.query`, `all_items()` answers only what the Query can match: the asked
    partition's items for a base-table Query, every item unsorted for an index Query (moto sorts
    the matches itself either way). Elsewhere (Scan, exports) it is moto's, sorted."""
    original_query, original_all_items = table_class.query, table_class.all_items
    signature = inspect.signature(original_query)

    def all_items(self: Any) -> list[Any]:
        if _query_scope.table is not self:
            return original_all_items(self)
        hash_key = _query_scope.hash_key
        if hash_key is _EVERY_ITEM:
            if not self.range_key_attr:
                return list(self.items.values())
            return [item for partition in self.items.values() for item in partition.values()]
        partition = self.items.get(hash_key)  # .get: no phantom partition
        if partition is None:
            return []
        return list(partition.values()) if self.range_key_attr else [partition]

    def query(self: Any, *args: Any, **kwargs: Any) -> Any:
        arguments = signature.bind(self, *args, **kwargs).arguments
        hash_key = _EVERY_ITEM if arguments.get("index_name") else arguments.get("hash_key")
        if hash_key is None or _query_scope.table is not None:
            return original_query(self, *args, **kwargs)
        _query_scope.table, _query_scope.hash_key = self, hash_key
        try:
            return original_query(self, *args, **kwargs)
        finally:
            _query_scope.table = _query_scope.hash_key = None

    query.__wrapped__ = original_query  # type: ignore[attr-defined]
    table_class.all_items = all_items
    table_class.query = query


_SCALARS = {"S": str, "N": str, "BOOL": bool, "NULL": bool}
_SCALAR_SETS = {"SS", "NS"}


def attribute_value(value: Any) -> Any:
    """An AttributeValue as moto's JSON serializer writes it, or None when it is not the plain
    shape `DynamoResult` makes (then moto's serializer takes it)."""
    if not isinstance(value, dict) or len(value) != 1:
        return None
    ((kind, inner),) = value.items()
    if kind in _SCALARS:
        return value if isinstance(inner, _SCALARS[kind]) else None
    if kind in _SCALAR_SETS:
        if isinstance(inner, list) and all(isinstance(v, str) for v in inner):
            return value
        return None
    if kind == "B":
        return {"B": base64.b64encode(inner).decode("utf-8")} if isinstance(inner, bytes) else None
    if kind == "BS":
        if isinstance(inner, list) and all(isinstance(v, bytes) for v in inner):
            return {"BS": [base64.b64encode(v).decode("utf-8") for v in inner]}
        return None
    if kind == "M" and isinstance(inner, dict):
        members = {}
        for name, member in inner.items():
            written = attribute_value(member)
            if written is None or not isinstance(name, str):
                return None
            members[name] = written
        return {"M": members}
    if kind == "L" and isinstance(inner, list):
        elements = [attribute_value(element) for element in inner]
        return None if any(e is None for e in elements) else {"L": elements}
    return None


def _direct_attribute_values(serializer_class: Any) -> None:
    original = serializer_class._serialize_type_structure

    def _serialize_type_structure(
        self: Any, serialized: Any, value: Any, shape: Any, key: str
    ) -> None:
        if key and shape.name == "AttributeValue":
            written = attribute_value(value)
            if written is not None:
                serialized[key] = written
                return
        original(self, serialized, value, shape, key)

    _serialize_type_structure.__wrapped__ = original  # type: ignore[attr-defined]
    serializer_class._serialize_type_structure = _serialize_type_structure


_installed = False


def install() -> None:
    """Idempotent; patches moto's classes for this process (in-process mock or server)."""
    global _installed
    with LOCK:
        if _installed:
            return
        common_models.BaseModel.__new__ = staticmethod(_tracking_new)  # type: ignore[assignment,method-assign]
        _no_phantom_partitions(dynamodb_tables.Table)
        backend = dynamodb_models.DynamoDBBackend
        dynamodb_models.copy = _NoTableBackup()  # type: ignore[assignment]
        backend.transact_write_items = _transactional(  # type: ignore[method-assign]
            backend.transact_write_items
        )
        for name in SERIALISED:
            if hasattr(backend, name):
                setattr(backend, name, serialised(getattr(backend, name)))
        _partition_queries(dynamodb_tables.Table)
        _direct_attribute_values(moto_serialize.BaseJSONSerializer)
        for name in _handler_actions():
            setattr(DynamoHandler, name, serialised(getattr(DynamoHandler, name)))
        _installed = True
