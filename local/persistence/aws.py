"""The AWS emulator's data on disk: moto's backends are wrapped so that each write call saves
what it changed before moto answers, and restored from disk at start.

- DynamoDB, item by item: after a PutItem, UpdateItem, DeleteItem, BatchWriteItem or
  TransactWriteItems is applied (or rolled back), the current image of every item the call
  named is written (or deleted), in one commit, under one lock held across apply and write,
  so the disk holds items in the order moto applied them. Tables come from template.yaml at
  each start (provisioning); only their items are restored.
- KMS keys (id, ARN, key material, state, aliases, tags), Secrets Manager secrets (name, ARN,
  every version) and SES identities: small, so the whole service is compared after each of its
  write calls and what differs is written.
- SES sent mail (the outbox): each message appended, in send order.

- The Cognito user pools, whole, after each cognito-idp write call (and after SignUp and
  ConfirmSignUp's own steps, local/cognito.py): ids, app clients and their secrets, groups,
  users (passwords, attributes, status, groups, a pending confirmation code), tokens issued,
  and the pool's signing key, so a token issued before a restart still verifies.

Not kept: IAM, Lambda and Step Functions definitions (made again from the template, same names
and ARNs), Cognito's sign-in sessions of a challenge in progress, Step Functions executions,
DynamoDB's PartiQL writes (the product makes none) and anything else moto holds. S3 objects
are not kept either: the only bucket is a cache that refills itself.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import pickle
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from cryptography.hazmat.primitives import serialization
from joserfc import jwk
from moto.cognitoidp.models import CognitoIdpBackend, CognitoIdpUserPool, cognitoidp_backends
from moto.cognitoidp.responses import CognitoIdpResponse
from moto.dynamodb.exceptions import ConditionalCheckFailed, TransactionCanceledException
from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends
from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler
from moto.kms.models import KmsBackend, kms_backends
from moto.secretsmanager.models import (
    FakeSecret,
    SecretsManagerBackend,
    secretsmanager_backends,
)
from moto.ses import models as ses_models
from moto.ses.models import SESBackend, ses_backends

from local import cognito, moto_speedups
from local.persistence.journal import Journal
from local.persistence.store import StateStore

DYNAMODB = "dynamodb"
KMS = "kms"
SECRETS = "secretsmanager"
SES_IDENTITIES = "ses.identities"
SES_SENT = "ses.sent"
SES_COUNT = "ses.count"
COGNITO = "cognito-idp"

# The write calls of each service: after one, what it may have changed is saved. Reads
# (get_, describe_, list_, encrypt, decrypt, ...) change nothing and are left alone.
KMS_WRITES = (
    "create_key",
    "replicate_key",
    "update_key_description",
    "delete_key",
    "create_alias",
    "update_alias",
    "delete_alias",
    "enable_key_rotation",
    "disable_key_rotation",
    "put_key_policy",
    "disable_key",
    "enable_key",
    "cancel_key_deletion",
    "schedule_key_deletion",
    "rotate_key_on_demand",
    "tag_resource",
    "untag_resource",
)
SECRETS_WRITES = (
    "create_secret",
    "create_managed_secret",
    "update_secret",
    "put_secret_value",
    "delete_secret",
    "restore_secret",
    "rotate_secret",
    "cancel_rotate_secret",
    "update_secret_version_stage",
    "put_resource_policy",
    "delete_resource_policy",
    "tag_resource",
    "untag_resource",
)
SES_WRITES = (
    "verify_email_identity",
    "verify_email_address",
    "verify_domain",
    "create_email_identity_v2",
    "delete_identity",
    "send_email",
    "send_templated_email",
    "send_bulk_templated_email",
    "send_raw_email",
)
# Every cognito-idp call but the few reads: a sign-in records the tokens it issued (a refresh
# token must refresh after a restart), so nearly every call may change a pool.
COGNITO_READS = {"admin_get_user", "admin_list_groups_for_user", "reset"}
COGNITO_WRITES = tuple(
    name
    for name, value in vars(CognitoIdpBackend).items()
    if callable(value)
    and not name.startswith(("_", "describe_", "list_", "get_", "default_vpc", "url"))
    and name not in COGNITO_READS
)
# Response steps that change a user after the backend's call returned (local/cognito.py sets
# the emailed confirmation code, and email_verified, there).
COGNITO_RESPONSE_WRITES = ("sign_up", "confirm_sign_up")
DYNAMODB_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")
UNCHANGED = (ConditionalCheckFailed, TransactionCanceledException)
SENT_TYPES = {
    name: getattr(ses_models, name)
    for name in ("Message", "TemplateMessage", "BulkTemplateMessage", "RawMessage")
}


def _scope(service: str, backend: Any, *rest: str) -> str:
    return "/".join((service, backend.account_id, backend.region_name, *rest))


def _split(scope: str) -> tuple[str, str, str]:
    """account, region and the rest (a table name) of a scope made by `_scope`."""
    _, account, region, *rest = scope.split("/", 3)
    return account, region, rest[0] if rest else ""


# -- plain values to JSON and back ------------------------------------------------------------


def _encode(value: Any, where: str) -> Any:
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode()}
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, dict):
        return {str(k): _encode(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v, where) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"cannot save {where}: {type(value).__name__}")


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$bytes"}:
            return base64.b64decode(value["$bytes"])
        if set(value) == {"$datetime"}:
            return datetime.fromisoformat(value["$datetime"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


# -- DynamoDB ---------------------------------------------------------------------------------


def _canonical(value: Any) -> list[str] | None:
    """A key attribute value as one spelling (DynamoDB takes 1 and 1.0 as the same number)."""
    if not isinstance(value, dict) or len(value) != 1:
        return None
    ((kind, raw),) = value.items()
    if not isinstance(raw, str):
        return None
    if kind == "N":
        try:
            raw = str(Decimal(raw).normalize())
        except InvalidOperation:
            return None
    return [kind, raw]


def _wire(value: DynamoType) -> dict[str, Any]:
    """A stored attribute value in DynamoDB's JSON, as a request would carry it (binary as
    base64 text at every depth; moto's own to_json gives nested binary as bytes)."""
    kind, raw = value.type, value.value
    if kind == "M":
        return {"M": {name: _wire(inner) for name, inner in raw.items()}}
    if kind == "L":
        return {"L": [_wire(inner) for inner in raw]}
    if kind == "B":
        return {"B": _base64(raw)}
    if kind == "BS":
        return {"BS": [_base64(inner) for inner in raw]}
    return {kind: raw}


def _base64(raw: bytes | str) -> str:
    return base64.b64encode(raw).decode() if isinstance(raw, bytes) else raw


def item_image(item: Any) -> dict[str, Any]:
    """An item's attributes in DynamoDB's JSON: what is saved, and what PutItem takes back."""
    return {name: _wire(value) for name, value in item.attrs.items()}


def _restore_item(table: Table, attrs: dict[str, Any]) -> bool:
    """Put a saved item back as moto's own put stores it, without the put's checks: moto
    accepted the item when it was written, and the checks (an item-size sum per attribute)
    make a restore of 20,000 items take seconds. False when its key no longer fits."""
    names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
    kinds = [table.hash_key_type] + ([table.range_key_type] if table.range_key_attr else [])
    if any(n not in attrs or list(attrs[n]) != [k] for n, k in zip(names, kinds, strict=True)):
        return False
    hash_value = DynamoType(attrs[table.hash_key_attr])
    item = Item(hash_value, None, {})
    item.attrs = LimitedSizeDict({n: DynamoType(v) for n, v in attrs.items()})  # no size sums
    if table.range_key_attr:
        item.range_key = DynamoType(attrs[table.range_key_attr])
        table.items[hash_value][item.range_key] = item
    else:
        table.items[hash_value] = item
    return True


def _find_table(backend: DynamoDBBackend, name: str) -> Table | None:
    table = backend.tables.get(name)
    if table is not None:
        return table
    return next((t for t in list(backend.tables.values()) if t.table_arn == name), None)


class _DynamoWrites(threading.local):
    depth = 0
    touched: dict[tuple[str, str], dict[str, Any]]


class AwsPersistence:
    """Saves moto's writes to `store` and puts saved state back into moto."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        # The speedups' own lock, held from moto's apply to our commit: a DynamoDB call it
        # serialises cannot read an item whose write is not on disk yet.
        self._dynamo_lock = moto_speedups._write_lock
        self._dynamo = _DynamoWrites()
        self._service_lock = threading.RLock()
        self._journal = Journal(store)
        self._sent: dict[tuple[str, str], int] = {}  # (account, region) -> messages saved
        self._originals: list[tuple[type, str, Any]] = []

    # -- restoring ----------------------------------------------------------------------------

    def restore_services(self) -> None:
        """KMS keys, secrets, SES identities and sent mail: before provisioning, which then
        finds them and creates only what is missing."""
        for scope in self.store.scopes(f"{KMS}/"):
            account, region, _ = _split(scope)
            for key_id, value in self.store.load(scope):
                _restore_key(kms_backends[account][region], json.loads(value))
                self._journal.seen(scope, key_id, value)
        for scope in self.store.scopes(f"{SECRETS}/"):
            account, region, _ = _split(scope)
            for name, value in self.store.load(scope):
                _restore_secret(secretsmanager_backends[account][region], json.loads(value))
                self._journal.seen(scope, name, value)
        for scope in self.store.scopes(f"{SES_IDENTITIES}/"):
            account, region, _ = _split(scope)
            for identity, value in self.store.load(scope):
                _restore_identity(ses_backends[account][region], json.loads(value))
                self._journal.seen(scope, identity, value)
        for scope in self.store.scopes(f"{COGNITO}/"):
            account, region, _ = _split(scope)
            pools = cognitoidp_backends[account][region].user_pools
            for pool_id, value in self.store.load(scope):
                pools[pool_id] = _restore_pool(json.loads(value))
                self._journal.seen(scope, pool_id, value)
        for scope in self.store.scopes(f"{SES_SENT}/"):
            account, region, _ = _split(scope)
            backend = ses_backends[account][region]
            rows = self.store.load(scope)
            for _, value in rows:
                backend.sent_messages.append(_restore_message(json.loads(value)))
            count = self.store.get(f"{SES_COUNT}/{account}/{region}", "sent_message_count")
            backend.sent_message_count = int(count or 0)
            self._sent[(account, region)] = len(rows)

    def restore_tables(self) -> dict[str, int]:
        """Put every saved item back into its table (the tables must exist: provisioning made
        them from the template). Answers {table: items restored}."""
        restored: dict[str, int] = {}
        for scope in self.store.scopes(f"{DYNAMODB}/"):
            account, region, name = _split(scope)
            table = _find_table(dynamodb_backends[account][region], name)
            rows = self.store.load(scope)
            if table is None:
                raise RuntimeError(
                    f"the saved state holds {len(rows)} items of table {name}, which "
                    "template.yaml no longer declares; start clean with `make run FRESH=1`"
                )
            for key, value in rows:
                if not _restore_item(table, json.loads(value)):
                    raise RuntimeError(
                        f"a saved item of table {name} ({key}) does not fit the key schema "
                        "template.yaml declares now; start clean with `make run FRESH=1`"
                    )
            restored[name] = len(rows)
        return restored

    # -- saving -------------------------------------------------------------------------------

    def install(self) -> None:
        """Wrap moto's write calls, outside the speedups' own wrappers and under their lock."""
        moto_speedups.install()
        for name in DYNAMODB_WRITES:
            self._patch(DynamoDBBackend, name, self._dynamo_call(name))
        # BatchWriteItem is applied by the response handler, one put or delete at a time:
        # one scope around it makes it one commit.
        self._patch(DynamoHandler, "batch_write_item", self._dynamo_call(None))
        self._patch(DynamoDBBackend, "delete_table", self._dynamo_delete_table())
        for name in KMS_WRITES:
            self._patch(KmsBackend, name, self._service_call(self._save_kms))
        for name in SECRETS_WRITES:
            self._patch(SecretsManagerBackend, name, self._service_call(self._save_secrets))
        for name in SES_WRITES:
            self._patch(SESBackend, name, self._service_call(self._save_ses))
        # Cognito's own behaviour first (idempotent), so these wrappers are outermost and save
        # what its steps add after moto's.
        cognito.install()
        for name in COGNITO_WRITES:
            self._patch(CognitoIdpBackend, name, self._service_call(self._save_cognito))
        for name in COGNITO_RESPONSE_WRITES:
            self._patch(
                CognitoIdpResponse,
                name,
                self._service_call(lambda response: self._save_cognito(response.backend)),
            )

    def uninstall(self) -> None:
        for owner, name, original in reversed(self._originals):
            setattr(owner, name, original)
        self._originals.clear()

    def _patch(self, owner: type, name: str, wrap: Callable[[Any], Any]) -> None:
        original = getattr(owner, name, None)
        if original is None:  # not in this moto version
            return
        self._originals.append((owner, name, original))
        setattr(owner, name, wrap(original))

    def _dynamo_call(self, name: str | None) -> Callable[[Any], Any]:
        writes = self._dynamo

        def wrap(original: Any) -> Any:
            record = _key_recorder(name)

            def call(this: Any, *args: Any, **kwargs: Any) -> Any:
                with self._dynamo_lock:
                    outer = writes.depth == 0
                    if outer:
                        writes.touched = {}
                    writes.depth += 1
                    changed = True
                    try:
                        if record is not None:
                            record(writes.touched, this, *args, **kwargs)
                        return original(this, *args, **kwargs)
                    except UNCHANGED:
                        # Refused before anything changed (a condition) or rolled back whole
                        # (a cancelled transaction): nothing to write. Any other failure may
                        # have changed items part-way, so their images are written.
                        changed = False
                        raise
                    finally:
                        writes.depth -= 1
                        if outer:
                            touched, writes.touched = writes.touched, {}
                            if changed:
                                self._save_items(this, touched)

            return call

        return wrap

    def _save_items(self, caller: Any, touched: dict[tuple[str, str], dict[str, Any]]) -> None:
        if not touched:
            return
        backend = caller if isinstance(caller, DynamoDBBackend) else caller.dynamodb_backend
        puts: list[tuple[str, str, str]] = []
        deletes: list[tuple[str, str]] = []
        for (name, key_text), key in touched.items():
            table = _find_table(backend, name)
            if table is None:
                continue
            scope = _scope(DYNAMODB, backend, table.name)
            range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
            item = table.get_item(DynamoType(key[table.hash_key_attr]), range_value)
            if item is None:
                deletes.append((scope, key_text))
            else:
                puts.append((scope, key_text, json.dumps(item_image(item))))
        self.store.write(puts, deletes)

    def _dynamo_delete_table(self) -> Callable[[Any], Any]:
        def wrap(original: Any) -> Any:
            def call(this: DynamoDBBackend, name: str) -> Any:
                with self._dynamo_lock:
                    table = original(this, name)
                    self.store.write(drop_scopes=[_scope(DYNAMODB, this, table.name)])
                    return table

            return call

        return wrap

    def _service_call(
        self, save: Callable[[Any], list[tuple[str, str, str]]]
    ) -> Callable[[Any], Any]:
        def wrap(original: Any) -> Any:
            def call(this: Any, *args: Any, **kwargs: Any) -> Any:
                with self._service_lock:
                    try:
                        return original(this, *args, **kwargs)
                    finally:
                        self._journal.flush(save(this))

            return call

        return wrap

    def _touch_all(self, scope: str, images: dict[str, str]) -> None:
        for key in self._journal.written_keys(scope) | set(images):
            self._journal.touch(scope, key, functools.partial(images.get, key))

    def _save_kms(self, backend: KmsBackend) -> list[tuple[str, str, str]]:
        images = {
            key_id: json.dumps(_dump_key(backend, key), sort_keys=True)
            for key_id, key in backend.keys.items()
        }
        self._touch_all(_scope(KMS, backend), images)
        return []

    def _save_secrets(self, backend: SecretsManagerBackend) -> list[tuple[str, str, str]]:
        images = {
            name: json.dumps(_dump_secret(secret), sort_keys=True)
            for name, secret in backend.secrets.items()
            if isinstance(secret, FakeSecret)  # replicas live in their own region's backend
        }
        self._touch_all(_scope(SECRETS, backend), images)
        return []

    def _save_cognito(self, backend: CognitoIdpBackend) -> list[tuple[str, str, str]]:
        images = {
            pool_id: json.dumps({"$pickle": _dump_pool(pool)})
            for pool_id, pool in backend.user_pools.items()
        }
        self._touch_all(_scope(COGNITO, backend), images)
        return []

    def _save_ses(self, backend: SESBackend) -> list[tuple[str, str, str]]:
        images = {
            name: json.dumps(_encode(vars(identity), f"ses identity {name}"), sort_keys=True)
            for name, identity in backend.email_identities.items()
        }
        self._touch_all(_scope(SES_IDENTITIES, backend), images)
        where = (backend.account_id, backend.region_name)
        saved = self._sent.get(where, 0)
        messages = backend.sent_messages
        if len(messages) <= saved:
            return []
        # The outbox only grows: new messages are appended as rows of their own.
        scope = _scope(SES_SENT, backend)
        rows = [
            (scope, f"{index:012d}", json.dumps(_dump_message(messages[index])))
            for index in range(saved, len(messages))
        ]
        rows.append(
            (_scope(SES_COUNT, backend), "sent_message_count", str(backend.sent_message_count))
        )
        self._sent[where] = len(messages)
        return rows


# The argument of each DynamoDB write that names its item. transact_write_items applies its
# actions through put_item, update_item and delete_item, each recorded on its own, and its
# rollback puts the tables back before the images are read.
_KEY_ARGUMENT = {"put_item": "item_attrs", "update_item": "key", "delete_item": "key"}


def _key_recorder(name: str | None) -> Callable[..., None] | None:
    argument = _KEY_ARGUMENT.get(name or "")
    if argument is None:
        return None

    def record(touched: dict[Any, Any], this: Any, *args: Any, **kwargs: Any) -> None:
        # moto's signatures: (table_name, item_attrs | key, ...), positional or by name. (The
        # speedups' wrappers hide them from inspect.)
        table_name = args[0] if args else kwargs.get("table_name")
        attrs = args[1] if len(args) > 1 else kwargs.get(argument)
        table = _find_table(this, str(table_name))
        if table is None or not isinstance(attrs, dict):
            return  # the call will refuse it; nothing to save
        names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
        key = {n: attrs.get(n) for n in names}
        spelled = [_canonical(v) for v in key.values()]
        if all(s is not None for s in spelled):
            touched[(table.name, json.dumps(spelled))] = key

    return record


# -- KMS ------------------------------------------------------------------------------------


def _dump_key(backend: KmsBackend, key: Any) -> dict[str, Any]:
    fields = {
        name: value
        for name, value in vars(key).items()
        if name not in ("private_key", "aliases", "grants")
    }
    dumped = _encode(fields, f"kms key {key.id}")
    dumped["$aliases"] = sorted(key.aliases)
    dumped["$tags"] = backend.tagger.list_tags_for_resource(key.id).get("Tags", [])
    inner = getattr(key.private_key, "private_key", None)
    if inner is not None:
        pem = inner.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        dumped["$private_key_pem"] = pem.decode()
    return dict(dumped)


def _restore_key(backend: KmsBackend, saved: dict[str, Any]) -> None:
    aliases = saved.pop("$aliases", [])
    tags = saved.pop("$tags", [])
    pem = saved.pop("$private_key_pem", None)
    # A key of the same spec made by moto, then given the saved id, material and state: the
    # ciphertexts stored in DynamoDB name the key id and were sealed with that material.
    key = backend.create_key(
        None,
        saved.get("key_usage", "ENCRYPT_DECRYPT"),
        saved.get("key_spec", "SYMMETRIC_DEFAULT"),
        saved.get("description", ""),
        None,
        saved.get("multi_region", False),
        saved.get("origin", "AWS_KMS"),
    )
    del backend.keys[key.id]
    for name, value in _decode(saved).items():
        setattr(key, name, value)
    if pem is not None and hasattr(key.private_key, "private_key"):
        key.private_key.private_key = serialization.load_pem_private_key(
            pem.encode(), password=None
        )
    backend.keys[key.id] = key
    for alias in aliases:
        backend.create_alias(key.id, alias)
    if tags:
        backend.tagger.tag_resource(key.id, tags)


# -- Secrets Manager ----------------------------------------------------------------------------


def _dump_secret(secret: FakeSecret) -> dict[str, Any]:
    fields = {name: value for name, value in vars(secret).items() if name != "replicas"}
    return dict(_encode(fields, f"secret {secret.name}"))


def _restore_secret(backend: SecretsManagerBackend, saved: dict[str, Any]) -> None:
    secret = FakeSecret(
        account_id=backend.account_id,
        region_name=backend.region_name,
        secret_id=saved["name"],
        secret_version={},
        version_id="restoring",
    )
    for name, value in _decode(saved).items():
        setattr(secret, name, value)
    secret.replicas = []
    backend.secrets[secret.name] = secret


# -- Cognito --------------------------------------------------------------------------------------
#
# A pool is a graph of moto's objects (users and groups name each other), so it is kept as a
# pickle of the pool, the signing keys (joserfc keys hold cryptography's, which do not pickle)
# as their JWK. The file is the stack's own, written by the stack: nothing else unpickles it.


class _PoolPickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, jwk.RSAKey):
            return jwk.RSAKey.import_key, (obj.as_dict(private=True),)
        return NotImplemented


def _dump_pool(pool: CognitoIdpUserPool) -> str:
    buffer = io.BytesIO()
    _PoolPickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(pool)
    return base64.b64encode(buffer.getvalue()).decode()


def _restore_pool(saved: dict[str, Any]) -> CognitoIdpUserPool:
    try:
        pool = pickle.loads(base64.b64decode(saved["$pickle"]))
    except Exception as exc:  # written by another moto version, whose classes differ
        raise RuntimeError(
            f"a saved Cognito user pool cannot be read back ({exc!r}); "
            "start clean with `make run FRESH=1`"
        ) from exc
    if not isinstance(pool, CognitoIdpUserPool):
        raise RuntimeError(
            f"a saved Cognito user pool is a {type(pool).__name__}; "
            "start clean with `make run FRESH=1`"
        )
    return pool


# -- SES ----------------------------------------------------------------------------------------


def _restore_identity(backend: SESBackend, saved: dict[str, Any]) -> None:
    identity = backend.create_email_identity_v2(saved["email_identity"], None, None, None)
    for name, value in _decode(saved).items():
        setattr(identity, name, value)


def _dump_message(message: Any) -> dict[str, Any]:
    kind = type(message).__name__
    if kind not in SENT_TYPES:
        raise TypeError(f"cannot save an SES message of type {kind}")
    return {"type": kind, "fields": _encode(vars(message), f"SES {kind}")}


def _restore_message(saved: dict[str, Any]) -> Any:
    cls = SENT_TYPES[saved["type"]]
    message = cls.__new__(cls)  # moto's model tracker sees it, as /moto-api/data.json needs
    for name, value in _decode(saved["fields"]).items():
        setattr(message, name, value)
    return message


def dynamo_items(backend: DynamoDBBackend) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every item of every table as (table, attributes): what tests compare after a restore."""
    for name, table in list(backend.tables.items()):
        for item in list(table.all_items()):
            yield name, item_image(item)
