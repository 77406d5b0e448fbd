"""The firm header item of the app table (implements services.ports.FirmHeaders): one item per
firm holding what a request reads before its own work: the firm's settings and its sync state
(checkpoint, lock, and a copy of the run holding the lock or the last one that did). One
consistent GetItem answers all of it, so a default invoices page costs that read and one
Query. See docs/data-model.md, "Firm header".

The settings repository (dynamo_firms) and the sync repository (dynamo_sync) each write their
own attributes of this item with UpdateItem, never a Put, so neither overwrites the other's.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from billbridge.adapters.dynamo_accounts import member_from_item, member_sk
from billbridge.adapters.dynamo_common import (
    DynamoRepository,
    Item,
    Update,
    error_code,
    firm_pk,
    from_item,
    iso_or_none,
    iso_utc,
    parse_iso,
    plain_json,
    require_iso,
)
from billbridge.domain.accounts import Member
from billbridge.domain.settings import FirmSettings
from billbridge.domain.sync import SyncCheckpoint, SyncMode, SyncRun, SyncStatus, SyncTrigger
from billbridge.services.ports import FirmHeader

HEADER_SK = "HEADER"
HEADER_TYPE = "firm_header"
# Where a firm's settings lived before the header held them: read once, then copied over.
LEGACY_SETTINGS_SK = "SETTINGS"
MIGRATED = "settings_migrated"


def header_key(firm_id: str) -> Item:
    return {"pk": {"S": firm_pk(firm_id)}, "sk": {"S": HEADER_SK}}


def run_fields(run: SyncRun) -> dict[str, Any]:
    """A run as plain values (None for absent), for its own item and for the header's copy."""
    return {
        "firm_id": run.firm_id,
        "run_id": run.id,
        "status": run.status.value,
        "mode": run.mode.value,
        "trigger": run.trigger.value,
        "started_at": iso_utc(run.started_at),
        "finished_at": iso_or_none(run.finished_at),
        "bills_seen": run.bills_seen,
        "bills_changed": run.bills_changed,
        "error": run.error,
    }


def run_from_data(data: dict[str, Any]) -> SyncRun:
    return SyncRun(
        firm_id=str(data["firm_id"]),
        id=str(data["run_id"]),
        status=SyncStatus(data["status"]),
        mode=SyncMode(data["mode"]),
        trigger=SyncTrigger(data["trigger"]),
        started_at=require_iso(data["started_at"]),
        finished_at=parse_iso(data.get("finished_at")),
        bills_seen=int(data.get("bills_seen") or 0),
        bills_changed=int(data.get("bills_changed") or 0),
        error=data.get("error"),
    )


def run_copy(run: SyncRun) -> dict[str, Any]:
    """The header's copy of a run (a map without the absent values)."""
    return {k: v for k, v in run_fields(run).items() if v is not None}


# What a firm's full import wrote its bill items with: 1 = with their word items (word-start
# search). A full import done with an older format counts as not done, so the firm's next sync
# is a full one, which writes every bill stored before again (docs/data-model.md). Only a full
# run's finish stamps it (`bills_format`): an incremental run reads only what changed.
BILLS_FORMAT = 1
# The same mark for the run's position (`next_page_url`, `pass_name`), stamped by every
# checkpoint this version writes (`position_format`): a position an older version left (a full
# import under way at the deploy) has older bills behind it, so the run starts over.
BILLS_FORMAT_ATTRIBUTE = "bills_format"
POSITION_FORMAT_ATTRIBUTE = "position_format"


def checkpoint_from_data(firm_id: str, data: dict[str, Any]) -> SyncCheckpoint:
    run = data.get("run")
    current = int(data.get(BILLS_FORMAT_ATTRIBUTE) or 0) >= BILLS_FORMAT
    resumable = int(data.get(POSITION_FORMAT_ATTRIBUTE) or 0) >= BILLS_FORMAT
    return SyncCheckpoint(
        firm_id=firm_id,
        full_import_done=bool(data.get("full_import_done", False)) and current,
        next_page_url=data.get("next_page_url") if resumable else None,
        pass_name=str(data.get("pass_name") or "all") if resumable else "all",
        high_water=parse_iso(data.get("high_water")),
        last_synced_at=parse_iso(data.get("last_synced_at")),
        lock_run_id=data.get("lock_run_id"),
        lock_expires_at=parse_iso(data.get("lock_expires_at")),
        last_run_id=data.get("last_run_id"),
        extra={str(k): str(v) for k, v in (data.get("extra") or {}).items()},
        run=run_from_data(run) if isinstance(run, dict) else None,
    )


def settings_from_data(data: dict[str, Any]) -> FirmSettings:
    stored = data.get("settings")
    if not isinstance(stored, dict):
        return FirmSettings()
    plain = plain_json(stored)
    # Settings a newer or older version stored but this one does not know are left out, not a
    # reason to refuse the firm its settings.
    known = {k: v for k, v in plain.items() if k in FirmSettings.model_fields}
    return FirmSettings.model_validate(known)


def header_update(table: str, firm_id: str) -> Update:
    """An UpdateItem of the header that also (re)states what the item is."""
    return Update(table, header_key(firm_id)).set("type", HEADER_TYPE).set("firm_id", firm_id)


class FirmHeaderItem(DynamoRepository):
    """Reads the header; shared by every repository that owns some of its attributes."""

    def _header(self, firm_id: str) -> dict[str, Any]:
        """The header's attributes (empty when the firm has none yet), read consistently."""
        return self._header_of(firm_id, self._get_item(firm_pk(firm_id), HEADER_SK))

    def _header_of(self, firm_id: str, item: Item | None) -> dict[str, Any]:
        """The header's attributes from its item as read (None: the firm has none yet)."""
        data = from_item(item) if item else {}
        if "settings" in data or data.get(MIGRATED):
            return data
        return self._migrate_settings(firm_id, data)

    def _migrate_settings(self, firm_id: str, data: dict[str, Any]) -> dict[str, Any]:
        """Once per firm: settings stored before the header existed move into it (or the
        header notes there were none), so later reads are one GetItem again."""
        legacy = self._get_item(firm_pk(firm_id), LEGACY_SETTINGS_SK)
        legacy_settings = from_item(legacy).get("settings") if legacy else None
        update = header_update(self._table, firm_id).set(MIGRATED, True)
        if isinstance(legacy_settings, dict):
            update.set("settings", legacy_settings)
        update.when(f"attribute_not_exists({update.name('settings')})")
        try:
            self._update(update)
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            # Settings were saved meanwhile: they are newer than the legacy ones.
            item = self._get_item(firm_pk(firm_id), HEADER_SK)
            return from_item(item) if item else {}
        migrated = dict(data)
        migrated[MIGRATED] = True
        if isinstance(legacy_settings, dict):
            migrated["settings"] = legacy_settings
        return migrated


class DynamoFirmHeaders(FirmHeaderItem):
    """FirmHeaders: a firm's settings and sync state from one consistent GetItem."""

    def read(self, firm_id: str) -> FirmHeader:
        return self._firm_header(firm_id, self._header(firm_id))

    def read_with_member(self, firm_id: str, user_id: str) -> tuple[FirmHeader, Member | None]:
        """One consistent BatchGetItem of the header and the member record (UnprocessedKeys
        asked again until none is left): a signed-in default page's only read besides its
        Query. A firm whose settings predate the header migrates them first, once."""
        pk = firm_pk(firm_id)
        keys = [header_key(firm_id), {"pk": {"S": pk}, "sk": {"S": member_sk(user_id)}}]
        by_sk = {item["sk"]["S"]: item for item in self._batch_get(keys, consistent=True)}
        member_item = by_sk.get(member_sk(user_id))
        header = self._firm_header(firm_id, self._header_of(firm_id, by_sk.get(HEADER_SK)))
        return header, member_from_item(member_item) if member_item else None

    @staticmethod
    def _firm_header(firm_id: str, data: dict[str, Any]) -> FirmHeader:
        return FirmHeader(
            settings=settings_from_data(data), checkpoint=checkpoint_from_data(firm_id, data)
        )
