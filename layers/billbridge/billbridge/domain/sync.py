"""Sync runs: one import of a firm's bills from Clio, full or incremental, and its lock.

A sync is debounced per firm: at most one run holds the firm's lock at a time, and a lock whose
holder died expires, so a crashed run never blocks the next.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

LOCK_TTL = timedelta(minutes=16)  # longer than the sync Lambda's 15-minute ceiling
# Clio's `updated_since` is "after" a timestamp and a row updated mid-sync can be missed by an
# id-ordered walk; re-reading a short overlap catches it (rows that did not change cost nothing,
# the etag comparison skips their writes).
INCREMENTAL_OVERLAP = timedelta(minutes=2)
# Opening the invoices list syncs (C2), but paging through it must not spend the firm's Clio
# rate budget (50 requests a minute) on a sync per page: a view within this long of the last
# finished sync reuses it. The Sync button always starts one.
VIEW_DEBOUNCE = timedelta(seconds=30)


class SyncStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class SyncMode(StrEnum):
    FULL = "full"
    INCREMENTAL = "incremental"


class SyncTrigger(StrEnum):
    VIEW = "view"  # C2: listing invoices
    MANUAL = "manual"  # C3: the Sync button
    SCHEDULE = "schedule"  # C4: the one-minute tick
    CONNECT = "connect"  # C1: right after connecting


def new_run_id(now: datetime) -> str:
    """Time-ordered and unguessable: sorts by start time, cannot be enumerated."""
    return f"sync_{now.strftime('%Y%m%dT%H%M%S')}_{secrets.token_hex(6)}"


@dataclass(frozen=True)
class SyncRun:
    firm_id: str
    id: str
    status: SyncStatus
    mode: SyncMode
    trigger: SyncTrigger
    started_at: datetime
    finished_at: datetime | None = None
    bills_seen: int = 0
    bills_changed: int = 0
    error: str | None = None

    def finished(self, status: SyncStatus, now: datetime, error: str | None = None) -> SyncRun:
        return replace(self, status=status, finished_at=now, error=error)


@dataclass(frozen=True)
class SyncCheckpoint:
    """Where a firm's sync stands between runs and between invocations of one run."""

    firm_id: str
    full_import_done: bool = False
    # The `meta.paging.next` URL of the next page not yet stored; set while a run is paging.
    next_page_url: str | None = None
    # Which pass the run is in: "all" (unfiltered) or "deleted" (explicit pass, see services/sync).
    pass_name: str = "all"
    # Clio `updated_at` high-water mark of what we have stored: the next increment's start.
    high_water: datetime | None = None
    last_synced_at: datetime | None = None
    lock_run_id: str | None = None
    lock_expires_at: datetime | None = None
    last_run_id: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    # A copy of the run that holds the lock, or else of the last one that did, kept beside the
    # lock so that a list view learns the run from the same read (docs/data-model.md).
    run: SyncRun | None = None

    def run_named(self, run_id: str) -> SyncRun | None:
        return self.run if self.run is not None and self.run.id == run_id else None

    def live_lock(self, now: datetime) -> str | None:
        """The run holding the firm's lock, unless its holder died (the lock expired)."""
        if self.lock_run_id and self.lock_expires_at and self.lock_expires_at > now:
            return self.lock_run_id
        return None

    def fresh_for_view(self, now: datetime) -> bool:
        return self.last_synced_at is not None and now - self.last_synced_at < VIEW_DEBOUNCE

    def next_updated_since(self) -> datetime | None:
        if self.high_water is None:
            return None
        return self.high_water - INCREMENTAL_OVERLAP


def utcnow() -> datetime:
    return datetime.now(UTC)
