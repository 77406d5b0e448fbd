"""One load run on a stack that is up: set the world up, run the clients, let the stack
settle, and check what the run left (`run_load`)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime

from bench.load.clients import Clients
from bench.load.money import MoneyReport, check_money
from bench.load.record import summarise
from bench.load.stack import StackUrls, tree_rss_mb
from bench.load.world import World

MEMORY_GROWTH_LIMIT_MB = 50.0


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
) -> LoadResult:
    """Set up `firms` firms on a running stack, run `clients` clients for `duration` seconds,
    let the stack settle, and check what the run left."""
    started_at = datetime.now(UTC)
    world = World(urls)
    world.setup(firms, payable, churn)
    memory: dict[str, float] = {}
    peak = [0.0]
    stop_sampling = threading.Event()

    def sample_memory() -> None:
        while not stop_sampling.wait(1.0):
            peak[0] = max(peak[0], tree_rss_mb(urls.pid)) if urls.pid else 0.0

    def warmed() -> None:
        if urls.pid:
            memory["before"] = tree_rss_mb(urls.pid)

    sampler = threading.Thread(target=sample_memory, daemon=True)
    sampler.start()
    runner = Clients(world, seed)
    took = runner.run(clients, duration, warmed)
    # However few requests a loaded machine let the clients make, one delivered Stripe event is
    # resent, so every run checks that a duplicate delivery changes nothing.
    runner.resend_one()
    world.quiesce()
    if urls.pid:
        memory["after"] = tree_rss_mb(urls.pid)
    stop_sampling.set()
    world.webhook_samples()
    money = check_money(world)
    clio_bills, clio_behind = world.clio_changes_reflected()
    recorder = world.recorder
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
        memory_before_mb=memory.get("before"),
        memory_after_mb=memory.get("after"),
        memory_peak_mb=peak[0] or None,
        started_at=started_at,
    )
