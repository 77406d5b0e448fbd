"""One load run on a stack that is up: set the world up, run the clients, let the stack
settle, and check what the run left (`run_load`)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests

from bench.load.clients import Clients
from bench.load.memory import (
    Snapshot,
    WarmUp,
    clio_burst_size,
    settle,
    snapshot,
    starting_workers,
)
from bench.load.money import MoneyReport, check_money
from bench.load.record import TIMEOUT, summarise
from bench.load.stack import StackUrls, tree_rss_mb
from bench.load.world import World

MEMORY_GROWTH_LIMIT_MB = 50.0
WARM_UP_MIN_SECONDS = 15.0
WARM_UP_MAX_SECONDS = 60.0


@dataclass
class LoadResult:
    clients: int
    firms: int
    duration_s: float
    rows: list[tuple[str, int, int, int, float, float, float]]  # route, n, 4xx, errors, p50..
    crossed: list[str]
    server_errors: list[str]
    unanswered: list[str]
    refusals: dict[str, list[str]]
    money: MoneyReport
    clio_bills: int  # bills changed in Clio during the run
    clio_behind: list[str]  # of those, the ones whose last change did not show (informational)
    memory_before_mb: float | None
    memory_after_mb: float | None
    memory_peak_mb: float | None
    started_at: datetime
    clio_delivered: int = 0  # Clio webhook deliveries the sandbox ended as delivered
    clio_retried: int = 0  # of them, delivered at a second or later attempt
    clio_lost: list[str] = field(default_factory=list)  # deliveries it gave up on
    # The tree part by part, after the warm-up and after the run (make load only).
    before: Snapshot | None = None
    after: Snapshot | None = None
    warm_up: WarmUp | None = None

    @property
    def memory_growth_mb(self) -> float | None:
        if self.memory_before_mb is None or self.memory_after_mb is None:
            return None
        return self.memory_after_mb - self.memory_before_mb

    def failures(self, check_memory: bool) -> list[str]:
        found = []
        if self.server_errors:
            found.append(f"{len(self.server_errors)} answers were 5xx")
        if self.unanswered:
            found.append(f"{len(self.unanswered)} requests got no answer")
        if self.crossed:
            found.append(f"{len(self.crossed)} answers were meant for another request")
        if self.clio_lost:
            found.append(f"{len(self.clio_lost)} Clio webhook deliveries were given up")
        if self.money.problems:
            found.append(f"{len(self.money.problems)} money invariants do not hold")
        growth = self.memory_growth_mb
        if check_memory and growth is not None and growth >= MEMORY_GROWTH_LIMIT_MB:
            found.append(
                f"memory grew {growth:.1f} MB after warm-up (limit {MEMORY_GROWTH_LIMIT_MB:.0f})"
            )
        return found


def run_load(
    urls: StackUrls,
    *,
    clients: int,
    duration: float,
    firms: int,
    payable: int = 6,
    churn: int = 3,
    seed: int = 1,
    memory: bool = True,
) -> LoadResult:
    """Set up `firms` firms on a running stack, run `clients` clients for `duration` seconds,
    let the stack settle, and check what the run left. With `memory` (make load, on a stack of
    its own) the first part of the run is a warm-up that brings every pool to what the run
    needs (a schedule tick, a burst of Clio changes) and lasts until no pool grows; the
    stack's memory is measured, part by part, after it and after the run."""
    started_at = datetime.now(UTC)
    world = World(urls)
    world.setup(firms, payable, churn)
    measured: dict[str, Snapshot] = {}
    warm = WarmUp()
    peak = [0.0]
    stop_sampling = threading.Event()
    measure = memory and urls.pid is not None and urls.admin_token is not None
    runner = Clients(world, seed)

    def local_stats() -> dict[str, Any]:
        answer = requests.get(
            f"{urls.api}/_local/stats",
            headers={"Authorization": f"Bearer {urls.admin_token}"},
            timeout=TIMEOUT,
        )
        answer.raise_for_status()
        result: dict[str, Any] = answer.json()
        return result

    def take() -> Snapshot:
        assert urls.pid is not None and urls.admin_token is not None
        return snapshot(urls.api, urls.admin_token, urls.pid, urls.state_dir)

    def sample_memory() -> None:
        while not stop_sampling.wait(1.0):
            peak[0] = max(peak[0], tree_rss_mb(urls.pid)) if urls.pid else 0.0

    def warm_up(started: float) -> None:
        # The schedules once (the sync fan-out, the reminders, the payment plans: functions
        # the clients never call, which the stack's own ticker calls every minute). Then,
        # once no worker is in its init, one Clio change per pre-started worker of the Clio
        # webhook function, at once: its pool starts full (provisioned), but a worker that
        # has not served yet would grow at its first delivery, after memory is measured.
        ticked = requests.post(
            f"{urls.api}/_local/tick",
            headers={"Authorization": f"Bearer {urls.admin_token}"},
            timeout=TIMEOUT,
        )
        warm.steps.append(f"a schedule tick ({ticked.status_code})")
        stats = local_stats()
        calm_by = time.monotonic() + WARM_UP_MIN_SECONDS
        while starting_workers(stats) and time.monotonic() < calm_by:
            time.sleep(0.5)
            stats = local_stats()
        still_starting = starting_workers(stats)
        count = runner.clio_burst(clio_burst_size(stats))
        warm.steps.append(
            f"{count} Clio bill changes at once (one per pre-started worker), "
            f"{time.monotonic() - started:.0f} s in"
            + (f" with {still_starting} workers still in their init" if still_starting else "")
        )
        deadline = started + min(WARM_UP_MAX_SECONDS, duration / 2)
        before, warm.settled = settle(
            take,
            started=started,
            min_seconds=min(WARM_UP_MIN_SECONDS, duration / 4),
            max_seconds=min(WARM_UP_MAX_SECONDS, duration / 2),
            stop=lambda: time.monotonic() > deadline,
        )
        warm.seconds = before.at - started
        measured["before"] = before

    sampler = threading.Thread(target=sample_memory, daemon=True)
    sampler.start()
    took = runner.run(clients, duration, warm_up if measure else None)
    # However few requests a loaded machine let the clients make, one delivered Stripe event is
    # resent, so every run checks that a duplicate delivery changes nothing.
    runner.resend_one()
    world.quiesce()
    if measure:
        measured["after"] = take()
    stop_sampling.set()
    world.webhook_samples()
    money = check_money(world)
    clio_bills, clio_behind = world.clio_changes_reflected()
    recorder = world.recorder
    before, after = measured.get("before"), measured.get("after")
    return LoadResult(
        clients=clients,
        firms=firms,
        duration_s=took,
        rows=summarise(recorder.samples),
        crossed=recorder.crossed,
        server_errors=recorder.server_errors,
        unanswered=recorder.unanswered,
        refusals=dict(recorder.refusals),
        money=money,
        clio_bills=clio_bills,
        clio_behind=clio_behind,
        memory_before_mb=before.total_mb if before else None,
        memory_after_mb=after.total_mb if after else None,
        memory_peak_mb=(peak[0] or None) if measure else None,
        started_at=started_at,
        before=before,
        after=after,
        warm_up=warm if measure else None,
        clio_delivered=world.clio_outcomes["delivered"],
        clio_retried=world.clio_outcomes["after a retry"],
        clio_lost=world.clio_lost,
    )
