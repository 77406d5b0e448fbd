"""The sync items of the app table (implements services.ports.SyncRepository): it owns each
firm's sync checkpoint and lock (attributes of the firm header, see dynamo_header) and the sync
run records, and keeps the lock, the checkpoint and the run consistent by writing them in
single transactions. See docs/data-model.md, "Firm header" and "Sync run".
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from billbridge.adapters.dynamo_common import (
    CONDITION_FAILED,
    Item,
    Update,
    cancellation_codes,
    epoch_seconds,
    error_code,
    firm_pk,
    from_item,
    iso_or_none,
    iso_utc,
    to_item,
)
from billbridge.adapters.dynamo_header import (
    BILLS_FORMAT,
    BILLS_FORMAT_ATTRIBUTE,
    POSITION_FORMAT_ATTRIBUTE,
    FirmHeaderItem,
    checkpoint_from_data,
    header_update,
    run_copy,
    run_fields,
    run_from_data,
)
from billbridge.domain.errors import Conflict
from billbridge.domain.sync import LOCK_TTL, SyncCheckpoint, SyncMode, SyncRun

log = logging.getLogger(__name__)

# Run records are history, not state: DynamoDB's TTL sweeps them after a month.
RUN_RETENTION = timedelta(days=30)


def run_sk(run_id: str) -> str:
    return f"SYNC#RUN#{run_id}"


def _key(firm_id: str, sk: str) -> Item:
    return {"pk": {"S": firm_pk(firm_id)}, "sk": {"S": sk}}


def run_item(run: SyncRun) -> Item:
    return to_item(
        {
            "pk": firm_pk(run.firm_id),
            "sk": run_sk(run.id),
            "type": "sync_run",
            **run_fields(run),
            "expires_at_epoch": epoch_seconds(run.started_at + RUN_RETENTION),
        }
    )


def run_from_item(item: Item) -> SyncRun:
    return run_from_data(from_item(item))


def _checkpoint_fields(update: Update, checkpoint: SyncCheckpoint, run: SyncRun) -> Update:
    # The lock fields of `checkpoint` are ignored on purpose: only start/finish move the lock.
    if checkpoint.full_import_done and run.mode is SyncMode.FULL:
        # The full import that is done wrote this format. An incremental run leaves the mark
        # as it is: one started before word items (the deploy in between) read only what
        # changed, so its end does not make the older bills' import done.
        update.set(BILLS_FORMAT_ATTRIBUTE, BILLS_FORMAT)
    # This version's position: the pages behind it were written with word items.
    update.set(POSITION_FORMAT_ATTRIBUTE, BILLS_FORMAT)
    return (
        update.set("full_import_done", checkpoint.full_import_done)
        .set("next_page_url", checkpoint.next_page_url)
        .set("pass_name", checkpoint.pass_name)
        .set("high_water", iso_or_none(checkpoint.high_water))
        .set("last_synced_at", iso_or_none(checkpoint.last_synced_at))
        .set("extra", dict(checkpoint.extra))
    )


def _held_by(update: Update, run_id: str) -> str:
    return f"{update.name('lock_run_id')} = {update.value(run_id)}"


def _same_firm(checkpoint: SyncCheckpoint, run: SyncRun) -> None:
    if checkpoint.firm_id != run.firm_id:
        raise ValueError("checkpoint and run belong to different firms")


class DynamoSyncRepository(FirmHeaderItem):
    """SyncRepository over one DynamoDB table (see docs/data-model.md): the checkpoint and the
    lock are attributes of the firm header, each run also an item of its own."""

    def checkpoint(self, firm_id: str) -> SyncCheckpoint:
        return checkpoint_from_data(firm_id, self._header(firm_id))

    def get_run(self, firm_id: str, run_id: str) -> SyncRun | None:
        item = self._get_item(firm_pk(firm_id), run_sk(run_id))
        return run_from_item(item) if item else None

    def start_run(self, run: SyncRun, now: datetime) -> tuple[SyncRun, bool]:
        orphan: str | None = None
        for _ in range(2):
            try:
                self._transact(self._start_actions(run, now, orphan))
                return run, True
            except ClientError as exc:
                codes = cancellation_codes(exc)
                if not codes or codes[0] != CONDITION_FAILED:
                    if len(codes) > 1 and codes[1] == CONDITION_FAILED:
                        raise Conflict(
                            f"sync run {run.id} already exists", code="sync_run_exists"
                        ) from None
                    raise
            holder_id = self.checkpoint(run.firm_id).lock_run_id
            if holder_id:
                holder = self.get_run(run.firm_id, holder_id)
                if holder is not None:
                    return holder, False
            # The lock names a run that was never recorded (or was released meanwhile): the
            # lock guards nothing, so take it over, but only from that very holder.
            log.warning(
                "sync lock held by an unknown run; taking it over",
                extra={"firm_id": run.firm_id, "holder_run_id": holder_id},
            )
            orphan = holder_id
        raise Conflict("the firm's sync lock could not be taken", code="sync_locked")

    def _start_actions(
        self, run: SyncRun, now: datetime, orphan: str | None
    ) -> list[dict[str, Any]]:
        expires = now + LOCK_TTL
        lock = header_update(self._table, run.firm_id)
        lock.set("lock_run_id", run.id).set("run", run_copy(run))
        lock.set("lock_expires_at", iso_utc(expires))
        lock.set("lock_expires_epoch", epoch_seconds(expires))
        holder, expiry = lock.name("lock_run_id"), lock.name("lock_expires_epoch")
        condition = f"attribute_not_exists({holder}) OR {expiry} < {lock.value(epoch_seconds(now))}"
        if orphan:
            condition += f" OR {holder} = {lock.value(orphan)}"
        lock.when(condition)
        put_run = {
            "TableName": self._table,
            "Item": run_item(run),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
        return [{"Update": lock.request()}, {"Put": put_run}]

    def save_progress(self, checkpoint: SyncCheckpoint, run: SyncRun, now: datetime) -> None:
        _same_firm(checkpoint, run)
        expires = now + LOCK_TTL
        state = _checkpoint_fields(header_update(self._table, run.firm_id), checkpoint, run)
        state.set("run", run_copy(run))
        state.set("lock_expires_at", iso_utc(expires))
        state.set("lock_expires_epoch", epoch_seconds(expires))
        state.when(_held_by(state, run.id))
        progress = Update(self._table, _key(run.firm_id, run_sk(run.id)))
        progress.set("status", run.status.value)
        progress.set("bills_seen", run.bills_seen).set("bills_changed", run.bills_changed)
        progress.when(f"attribute_exists({progress.name('pk')})")
        # Two plain updates, not a transaction: the checkpoint (under the lock) is what a resume
        # trusts; the run's counts are progress for people to read and may trail by one page.
        try:
            self._update(state)
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise Conflict(
                    f"sync run {run.id} no longer holds the lock", code="sync_lock_lost"
                ) from None
            raise
        try:
            self._update(progress)
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise Conflict(
                    f"sync run {run.id} is not recorded", code="sync_run_missing"
                ) from None
            raise

    def finish_run(self, checkpoint: SyncCheckpoint, run: SyncRun) -> None:
        """Store the final checkpoint and run and release the lock, in one transaction. When the
        run has lost the lock, the checkpoint is not stored (it would overwrite the new
        holder's), the run's outcome is still recorded, and Conflict is raised."""
        _same_firm(checkpoint, run)
        state = _checkpoint_fields(header_update(self._table, run.firm_id), checkpoint, run)
        state.set("last_run_id", run.id).set("run", run_copy(run))
        state.remove("lock_run_id").remove("lock_expires_at").remove("lock_expires_epoch")
        state.when(_held_by(state, run.id))
        outcome = Update(self._table, _key(run.firm_id, run_sk(run.id)))
        outcome.set("status", run.status.value)
        outcome.set("finished_at", iso_or_none(run.finished_at))
        outcome.set("bills_seen", run.bills_seen).set("bills_changed", run.bills_changed)
        outcome.set("error", run.error)
        outcome.when(f"attribute_exists({outcome.name('pk')})")
        try:
            self._transact([{"Update": state.request()}, {"Update": outcome.request()}])
            return
        except ClientError as exc:
            codes = cancellation_codes(exc)
            if codes[:1] != [CONDITION_FAILED]:
                if CONDITION_FAILED in codes:
                    raise Conflict(
                        f"sync run {run.id} is not recorded", code="sync_run_missing"
                    ) from None
                raise
        # Lost lock: a run left at "running" forever would mislead whoever polls it.
        try:
            self._update(outcome)
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
        raise Conflict(f"sync run {run.id} no longer holds the lock", code="sync_lock_lost")
