"""In-memory fakes of the service ports, for fast unit tests with the network blocked."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from billbridge.domain.bills import Bill, BillState, StoredBill
from billbridge.domain.connection import ClioConnection, Region
from billbridge.domain.envelopes import Batch, Envelope, check_editable
from billbridge.domain.errors import Conflict
from billbridge.domain.settings import FirmSettings
from billbridge.domain.sync import LOCK_TTL, SyncCheckpoint, SyncRun
from billbridge.services.ports import BillsPage


class FakeBills:
    def __init__(self) -> None:
        self.items: dict[tuple[str, int], StoredBill] = {}
        self.write_calls = 0

    def get(self, firm_id: str, bill_id: int) -> StoredBill | None:
        return self.items.get((firm_id, bill_id))

    def get_many(self, firm_id: str, bill_ids: Sequence[int]) -> dict[int, StoredBill]:
        return {i: self.items[(firm_id, i)] for i in bill_ids if (firm_id, i) in self.items}

    def etags(self, firm_id: str, bill_ids: Sequence[int]) -> dict[int, str]:
        return {
            i: self.items[(firm_id, i)].bill.etag for i in bill_ids if (firm_id, i) in self.items
        }

    def save_clio_bills(
        self, firm_id: str, bills: Sequence[Bill], synced_at: datetime, existing_ids: Any = None
    ) -> int:
        self.write_calls += 1
        written = 0
        for bill in bills:
            current = self.items.get((firm_id, bill.id))
            if current and current.bill.clio_updated_at > bill.clio_updated_at:
                continue
            base = current or StoredBill(bill=bill)
            self.items[(firm_id, bill.id)] = replace(base, bill=bill, synced_at=synced_at)
            written += 1
        return written

    def mark_deleted(self, firm_id: str, bill_id: int, at: datetime) -> bool:
        current = self.items.get((firm_id, bill_id))
        if current is None:
            return False
        self.items[(firm_id, bill_id)] = replace(
            current, bill=replace(current.bill, state=BillState.DELETED)
        )
        return True

    def page(
        self, firm_id: str, states: Sequence[BillState], page_size: int, before_bill_id: int | None
    ) -> BillsPage:
        rows = sorted(
            (
                s
                for (f, _), s in self.items.items()
                if f == firm_id
                and s.bill.state in states
                and (before_bill_id is None or s.bill.id < before_bill_id)
            ),
            key=lambda s: -s.bill.id,
        )
        page = rows[:page_size]
        return BillsPage(
            items=page, last_bill_id=page[-1].bill.id if len(rows) > page_size else None
        )


class FakeEnvelopes:
    def __init__(self) -> None:
        self.envelopes: dict[tuple[str, str], Envelope] = {}
        self.batches: dict[tuple[str, str], Batch] = {}

    def create_batch(self, batch: Batch, envelopes: Sequence[Envelope]) -> None:
        self.batches[(batch.firm_id, batch.id)] = batch
        for envelope in envelopes:
            self.envelopes[(envelope.firm_id, envelope.id)] = envelope

    def get(self, firm_id: str, envelope_id: str) -> Envelope | None:
        return self.envelopes.get((firm_id, envelope_id))

    def get_batch(self, firm_id: str, batch_id: str) -> tuple[Batch, list[Envelope]] | None:
        batch = self.batches.get((firm_id, batch_id))
        if batch is None:
            return None
        return batch, [self.envelopes[(firm_id, i)] for i in batch.envelope_ids]

    def edit_draft(self, firm_id: str, envelope_id: str, subject: str, body: str) -> Envelope:
        current = self.envelopes[(firm_id, envelope_id)]
        check_editable(current)
        edited = replace(current, subject=subject, body=body)
        self.envelopes[(firm_id, envelope_id)] = edited
        return edited


class FakeSyncs:
    def __init__(self) -> None:
        self.checkpoints: dict[str, SyncCheckpoint] = {}
        self.runs: dict[tuple[str, str], SyncRun] = {}

    def checkpoint(self, firm_id: str) -> SyncCheckpoint:
        return self.checkpoints.get(firm_id, SyncCheckpoint(firm_id=firm_id))

    def start_run(self, run: SyncRun, now: datetime) -> tuple[SyncRun, bool]:
        cp = self.checkpoint(run.firm_id)
        if cp.lock_run_id and cp.lock_expires_at and cp.lock_expires_at > now:
            return self.runs[(run.firm_id, cp.lock_run_id)], False
        self.checkpoints[run.firm_id] = replace(
            cp, lock_run_id=run.id, lock_expires_at=now + LOCK_TTL
        )
        self.runs[(run.firm_id, run.id)] = run
        return run, True

    def save_progress(self, checkpoint: SyncCheckpoint, run: SyncRun, now: datetime) -> None:
        if self.checkpoint(run.firm_id).lock_run_id != run.id:
            raise Conflict("lost the sync lock")
        self.checkpoints[run.firm_id] = replace(
            checkpoint, lock_run_id=run.id, lock_expires_at=now + LOCK_TTL
        )
        self.runs[(run.firm_id, run.id)] = run

    def finish_run(self, checkpoint: SyncCheckpoint, run: SyncRun) -> None:
        if self.checkpoint(run.firm_id).lock_run_id != run.id:
            raise Conflict("lost the sync lock")
        self.checkpoints[run.firm_id] = replace(
            checkpoint, lock_run_id=None, lock_expires_at=None, last_run_id=run.id
        )
        self.runs[(run.firm_id, run.id)] = run

    def get_run(self, firm_id: str, run_id: str) -> SyncRun | None:
        return self.runs.get((firm_id, run_id))


class FakeConnections:
    def __init__(self) -> None:
        self.items: dict[str, ClioConnection] = {}

    def get(self, firm_id: str) -> ClioConnection | None:
        return self.items.get(firm_id)

    def save(self, connection: ClioConnection) -> None:
        self.items[connection.firm_id] = connection

    def connected_firm_ids(self) -> list[str]:
        return sorted(self.items)


class FakeSettings:
    def __init__(self) -> None:
        self.items: dict[str, FirmSettings] = {}

    def get(self, firm_id: str) -> FirmSettings:
        return self.items.get(firm_id, FirmSettings())

    def put(self, firm_id: str, settings: FirmSettings) -> None:
        self.items[firm_id] = settings


class FakeLauncher:
    def __init__(self) -> None:
        self.launched: list[tuple[str, str]] = []

    def launch(self, firm_id: str, run_id: str) -> None:
        self.launched.append((firm_id, run_id))


@dataclass
class Page:
    bills: list[dict[str, Any]]
    next_url: str | None


T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def clio_bill(
    bill_id: int,
    *,
    state: str = "awaiting_payment",
    kind: str = "revenue_kind",
    total: str = "100.00",
    balance: str | None = None,
    updated: datetime | None = None,
    etag: str | None = None,
    client_email: str | None = "client@example.com",
) -> dict[str, Any]:
    """A Clio API v4 bill record as asked with BILL_FIELDS (money as Decimal, as parsed)."""
    from decimal import Decimal

    stamp = updated or T0 + timedelta(seconds=bill_id)
    return {
        "id": bill_id,
        "etag": etag or f'"{bill_id}-{stamp.timestamp()}"',
        "number": f"INV-{bill_id:05d}",
        "state": state,
        "kind": kind,
        "issued_at": "2026-10-01",
        "due_at": "2026-10-31",
        "updated_at": stamp.isoformat().replace("+00:00", "Z"),
        "total": Decimal(total),
        "balance": Decimal(balance if balance is not None else total),
        "currency": {"code": "USD"},
        "client": {"id": 7, "name": "Acme Ltd", "primary_email_address": client_email},
        "matters": [{"id": 55, "display_number": "00042-Acme", "description": "Lease dispute"}],
    }


@dataclass
class FakeClio:
    """Clio's bill listing: id-ordered pages, `updated_since`, `state`, and failure injection."""

    records: dict[int, dict[str, Any]] = field(default_factory=dict)
    page_size: int = 200
    requests_made: int = 0
    fail_after_pages: int | None = None
    fail_with: Exception | None = None
    list_includes_deleted: bool = False
    calls: list[dict[str, Any]] = field(default_factory=list)

    def ensure_fresh(self, min_valid_seconds: float = 86400) -> None:
        return None

    def who_am_i(self) -> dict[str, Any]:
        return {"id": 1, "name": "Sandbox User"}

    def authorize_url(self, state: str) -> str:
        return f"https://clio.test/oauth/authorize?state={state}"

    def exchange_code(self, code: str) -> Any:
        raise NotImplementedError

    def iter_bill_pages(
        self,
        *,
        updated_since: datetime | None = None,
        state: str | None = None,
        start_url: str | None = None,
    ) -> Iterator[Page]:
        self.calls.append({"updated_since": updated_since, "state": state, "start_url": start_url})
        rows = sorted(self.records.values(), key=lambda r: r["id"])
        if state is not None:
            rows = [r for r in rows if r["state"] == state]
        elif not self.list_includes_deleted:
            rows = [r for r in rows if r["state"] != "deleted"]
        if updated_since is not None:
            rows = [
                r
                for r in rows
                if datetime.fromisoformat(r["updated_at"].replace("Z", "+00:00")) > updated_since
            ]
        offset = int(start_url.rsplit("=", 1)[1]) if start_url else 0
        pages = 0
        while True:
            if (
                self.fail_after_pages is not None
                and pages >= self.fail_after_pages
                and self.fail_with
            ):
                raise self.fail_with
            chunk = rows[offset : offset + self.page_size]
            offset += self.page_size
            self.requests_made += 1
            pages += 1
            more = offset < len(rows)
            yield Page(
                bills=chunk, next_url=f"https://clio.test/bills?offset={offset}" if more else None
            )
            if not more:
                return

    def get_bill(self, bill_id: int) -> dict[str, Any] | None:
        return self.records.get(bill_id)

    def create_bill_webhook(
        self, url: str, *, events: Sequence[str] = (), expires_at: datetime
    ) -> dict[str, Any]:
        return {
            "id": 42,
            "shared_secret": "s3cret",
            "status": "pending",
            "expires_at": expires_at.isoformat(),
        }

    def activate_webhook(self, webhook_id: int, shared_secret: str) -> None:
        return None

    def renew_webhook(self, webhook_id: int, expires_at: datetime) -> dict[str, Any]:
        return {"id": webhook_id, "expires_at": expires_at.isoformat()}


def connection(firm_id: str = "firm-a", **overrides: Any) -> ClioConnection:
    values: dict[str, Any] = dict(
        firm_id=firm_id,
        region=Region.US,
        access_token="at",
        refresh_token="rt",
        access_expires_at=T0 + timedelta(days=30),
        connected_at=T0,
    )
    values.update(overrides)
    return ClioConnection(**values)
