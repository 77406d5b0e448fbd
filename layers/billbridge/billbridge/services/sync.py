"""Syncing a firm's bills from Clio (C2-C5): starting a run under the firm's lock, and running it.

A run walks Clio's bills by id with cursor paging, in two passes: every bill Clio lists without
a state filter, then an explicit `state=deleted` pass (whether an unfiltered list includes
deleted bills is undocumented, and a deleted bill must never silently stay "unpaid" here). The
first run of a firm imports everything; later runs ask only for bills updated since the last
high-water mark. After each page the checkpoint (the next page's URL) is stored with the run's
counts, so a run cut off by the Lambda clock, or failed by Clio, resumes where it stopped. Once
a run has succeeded, the PDFs of sendable bills not cached yet are prefetched with the Clio
budget the run left unused (services/bill_pdfs.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from aws_lambda_powertools import Logger

from billbridge.domain.bills import bill_from_clio
from billbridge.domain.connection import ClioConnection
from billbridge.domain.errors import ClioAuthorizationLost, ClioUnreachable, NotConnected
from billbridge.domain.sync import (
    SyncCheckpoint,
    SyncMode,
    SyncRun,
    SyncStatus,
    SyncTrigger,
    new_run_id,
    utcnow,
)
from billbridge.services.bill_pdfs import BillPdfs, PrefetchOutcome
from billbridge.services.ports import (
    BillRepository,
    ClioGateway,
    ConnectionRepository,
    SyncLauncher,
    SyncRepository,
)

logger = Logger(child=True)

PASSES: tuple[tuple[str, str | None], ...] = (("all", None), ("deleted", "deleted"))
RUN_HIGH_WATER = "run_high_water"
# How many times in a row a run may hand itself over because Clio's rate limit outlasted its
# time, with no page stored in between, before it gives up (the next tick resumes it).
RATE_LIMIT_HANDOVERS = "rate_limit_handovers"
MAX_RATE_LIMIT_HANDOVERS = 3


@dataclass(frozen=True)
class RunOutcome:
    run: SyncRun
    continued: bool  # True when the run handed itself to a new invocation
    # What the bill PDF prefetch did once the run succeeded (None: no prefetch).
    prefetch: PrefetchOutcome | None = None


class SyncService:
    def __init__(
        self,
        *,
        bills: BillRepository,
        syncs: SyncRepository,
        connections: ConnectionRepository,
        clio_for: Callable[[ClioConnection], ClioGateway],
        clio_web_host_for: Callable[[ClioConnection], str],
        launcher: SyncLauncher,
        webhooks: Callable[[ClioConnection, ClioGateway], ClioConnection] | None = None,
        pdfs: BillPdfs | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._bills = bills
        self._syncs = syncs
        self._connections = connections
        self._clio_for = clio_for
        self._web_host_for = clio_web_host_for
        self._launcher = launcher
        self._webhooks = webhooks
        self._pdfs = pdfs
        self._clock = clock

    # -- starting ---------------------------------------------------------------------------

    def request_sync(self, firm_id: str, trigger: SyncTrigger) -> SyncRun:
        """Start a run unless one is live for the firm; either way answer the live run."""
        run, _ = self._request(firm_id, trigger)
        return run

    def sync_on_view(
        self, firm_id: str, checkpoint: SyncCheckpoint | None = None
    ) -> tuple[SyncRun | None, datetime | None]:
        """C2: the run a list view reports (started if due) and when the firm last synced.
        A firm without a usable Clio connection still gets its list, with no run. `checkpoint`
        is the one the view read already (the firm header), saving a read."""
        try:
            run, checkpoint = self._request(firm_id, SyncTrigger.VIEW, checkpoint)
        except NotConnected:
            known = checkpoint or self._syncs.checkpoint(firm_id)
            return None, known.last_synced_at
        return run, checkpoint.last_synced_at

    def _request(
        self, firm_id: str, trigger: SyncTrigger, checkpoint: SyncCheckpoint | None = None
    ) -> tuple[SyncRun, SyncCheckpoint]:
        now = self._clock()
        checkpoint = checkpoint or self._syncs.checkpoint(firm_id)
        # Answer a live or (for a view) fresh run from one read: the connection check and the
        # lock's conditional write are only for when a run may really start.
        existing = checkpoint.live_lock(now)
        if existing is None and trigger is SyncTrigger.VIEW and checkpoint.fresh_for_view(now):
            existing = checkpoint.last_run_id
        if existing is not None:
            # The header keeps a copy of that run; its own item is read only when it does not.
            current = checkpoint.run_named(existing) or self._syncs.get_run(firm_id, existing)
            if current is not None:
                return current, checkpoint
        connection = self._connections.get(firm_id)
        if connection is None:
            raise NotConnected("Connect Clio first: this firm has no Clio connection.")
        if connection.needs_reconnect:
            raise NotConnected("Clio refused this firm's authorization. Reconnect Clio.")
        mode = SyncMode.INCREMENTAL if checkpoint.full_import_done else SyncMode.FULL
        run = SyncRun(
            firm_id=firm_id,
            id=new_run_id(now),
            status=SyncStatus.RUNNING,
            mode=mode,
            trigger=trigger,
            started_at=now,
        )
        run, started = self._syncs.start_run(run, now)
        if started:
            logger.info("sync started", extra={"firm_id": firm_id, "run_id": run.id})
            self._launcher.launch(firm_id, run.id)
        return run, checkpoint

    # -- running ----------------------------------------------------------------------------

    def run(
        self, firm_id: str, run_id: str, seconds_left: Callable[[], float]
    ) -> RunOutcome | None:
        """Carry run `run_id` forward until done or until `seconds_left()` says stop."""
        run = self._syncs.get_run(firm_id, run_id)
        checkpoint = self._syncs.checkpoint(firm_id)
        if run is None or run.status != SyncStatus.RUNNING or checkpoint.lock_run_id != run_id:
            # A duplicate or late invocation: the run is finished or no longer holds the lock.
            return None
        connection = self._connections.get(firm_id)
        if connection is None:
            return RunOutcome(
                self._finish(checkpoint, run, SyncStatus.FAILED, "no Clio connection"), False
            )
        clio = self._clio_for(connection)
        # A 429 whose Retry-After fits the time left is waited out in the client; one that
        # does not fit comes back here at once, to hand the run over.
        clio.limit_waits(seconds_left)
        try:
            clio.ensure_fresh()
            return self._walk(clio, connection, checkpoint, run, seconds_left)
        except ClioAuthorizationLost as exc:
            self._connections.save(
                replace(self._connections.get(firm_id) or connection, needs_reconnect=True)
            )
            logger.warning("Clio authorization lost", extra={"firm_id": firm_id})
            return RunOutcome(
                self._finish(
                    self._syncs.checkpoint(firm_id),
                    self._latest(run),
                    SyncStatus.FAILED,
                    exc.message,
                ),
                False,
            )
        except ClioUnreachable as exc:
            if exc.retry_after is not None:
                handed = self._hand_over_rate_limited(run, exc)
                if handed is not None:
                    return handed
            # The checkpoint keeps the next page's URL: the next run resumes from it.
            logger.warning("Clio unavailable", extra={"firm_id": firm_id, "reason": exc.message})
            return RunOutcome(
                self._finish(
                    self._syncs.checkpoint(firm_id),
                    self._latest(run),
                    SyncStatus.FAILED,
                    exc.message,
                ),
                False,
            )

    def _hand_over_rate_limited(self, run: SyncRun, exc: ClioUnreachable) -> RunOutcome | None:
        """Clio's Retry-After outlasts this invocation's time: the checkpoint holds the next
        page, so a new invocation (with its full time) waits it out and goes on. None when
        the run has handed over this way too often without storing a page."""
        checkpoint = self._syncs.checkpoint(run.firm_id)
        handovers = int(checkpoint.extra.get(RATE_LIMIT_HANDOVERS, "0")) + 1
        if handovers > MAX_RATE_LIMIT_HANDOVERS:
            return None
        latest = self._latest(run)
        extra = {**checkpoint.extra, RATE_LIMIT_HANDOVERS: str(handovers)}
        self._syncs.save_progress(replace(checkpoint, extra=extra), latest, self._clock())
        self._launcher.launch(run.firm_id, run.id)
        logger.info(
            "Clio rate limit outlasts this invocation; the sync continues in a new one",
            extra={"run_id": run.id, "retry_after": exc.retry_after, "handovers": handovers},
        )
        return RunOutcome(latest, True)

    def _latest(self, run: SyncRun) -> SyncRun:
        return self._syncs.get_run(run.firm_id, run.id) or run

    def _walk(
        self,
        clio: ClioGateway,
        connection: ClioConnection,
        checkpoint: SyncCheckpoint,
        run: SyncRun,
        seconds_left: Callable[[], float],
    ) -> RunOutcome:
        web_host = self._web_host_for(connection)
        updated_since = None if run.mode == SyncMode.FULL else checkpoint.next_updated_since()
        pass_names = [name for name, _ in PASSES]
        first_pass = (
            pass_names.index(checkpoint.pass_name) if checkpoint.pass_name in pass_names else 0
        )
        for pass_name, state in PASSES[first_pass:]:
            start_url = checkpoint.next_page_url if checkpoint.pass_name == pass_name else None
            for page in clio.iter_bill_pages(
                updated_since=updated_since, state=state, start_url=start_url
            ):
                run, checkpoint = self._store_page(
                    page.bills, page.next_url, web_host, run, checkpoint, pass_name
                )
                if page.next_url and seconds_left() <= 0:
                    self._launcher.launch(run.firm_id, run.id)
                    logger.info("sync continues in a new invocation", extra={"run_id": run.id})
                    return RunOutcome(run, True)
            checkpoint = replace(checkpoint, next_page_url=None, pass_name=pass_name)
        if self._webhooks is not None:
            self._keep_webhook(connection, clio)
        final = self._finish(checkpoint, run, SyncStatus.SUCCEEDED, None)
        # After the run is finished and its lock released: the prefetch only ever uses what the
        # sync left of Clio's window, and never holds up the next sync.
        prefetch = self._pdfs.prefetch(run.firm_id, clio, seconds_left) if self._pdfs else None
        return RunOutcome(final, False, prefetch)

    def _store_page(
        self,
        records: list[dict],  # type: ignore[type-arg]
        next_url: str | None,
        web_host: str,
        run: SyncRun,
        checkpoint: SyncCheckpoint,
        pass_name: str,
    ) -> tuple[SyncRun, SyncCheckpoint]:
        bills = []
        for record in records:
            try:
                bills.append(bill_from_clio(record, web_host))
            except (KeyError, ValueError, TypeError):
                # Not silently dropped: the engineer on call sees which bill and why.
                logger.exception("Clio bill could not be read", extra={"bill_id": record.get("id")})
        now = self._clock()
        stored = self._bills.etags(run.firm_id, [b.id for b in bills])
        changed = [b for b in bills if stored.get(b.id) != b.etag]
        written = (
            self._bills.save_clio_bills(run.firm_id, changed, now, existing_ids=stored.keys())
            if changed
            else 0
        )
        high = checkpoint.extra.get(RUN_HIGH_WATER)
        for bill in bills:
            stamp = bill.clio_updated_at.isoformat()
            if high is None or datetime.fromisoformat(stamp) > datetime.fromisoformat(high):
                high = stamp
        extra = dict(checkpoint.extra)
        extra.pop(RATE_LIMIT_HANDOVERS, None)  # a page stored: progress
        if high is not None:
            extra[RUN_HIGH_WATER] = high
        run = replace(
            run, bills_seen=run.bills_seen + len(records), bills_changed=run.bills_changed + written
        )
        checkpoint = replace(checkpoint, next_page_url=next_url, pass_name=pass_name, extra=extra)
        self._syncs.save_progress(checkpoint, run, now)
        return run, checkpoint

    def _finish(
        self, checkpoint: SyncCheckpoint, run: SyncRun, status: SyncStatus, error: str | None
    ) -> SyncRun:
        now = self._clock()
        # The handover count is one run's: the next run starts with none.
        checkpoint = replace(
            checkpoint,
            extra={k: v for k, v in checkpoint.extra.items() if k != RATE_LIMIT_HANDOVERS},
        )
        if status == SyncStatus.SUCCEEDED:
            high = checkpoint.high_water
            run_high = checkpoint.extra.get(RUN_HIGH_WATER)
            if run_high is not None:
                candidate = datetime.fromisoformat(run_high)
                high = candidate if high is None or candidate > high else high
            extra = {k: v for k, v in checkpoint.extra.items() if k != RUN_HIGH_WATER}
            checkpoint = replace(
                checkpoint,
                full_import_done=True,
                next_page_url=None,
                pass_name="all",
                high_water=high,
                last_synced_at=now,
                extra=extra,
            )
        final = run.finished(status, now, error)
        self._syncs.finish_run(checkpoint, final)
        logger.info(
            "sync finished",
            extra={
                "firm_id": run.firm_id,
                "run_id": run.id,
                "status": status.value,
                "bills_seen": final.bills_seen,
                "bills_changed": final.bills_changed,
            },
        )
        return final

    def _keep_webhook(self, connection: ClioConnection, clio: ClioGateway) -> None:
        assert self._webhooks is not None
        try:
            self._webhooks(connection, clio)
        except ClioUnreachable:
            # The one-minute schedule still keeps data fresh; the next run tries again.
            logger.warning("Clio webhook upkeep failed", extra={"firm_id": connection.firm_id})
