"""The stack's memory during a load run, part by part: the stack's own process (the AWS
emulator, both sandboxes, the gateway) and each function's workers, with what each holds.

Growth has three causes, and only one of them is a leak:
- a pool filling: a function's pool starts workers as its concurrency is reached (each Python
  worker holds ~50 MB after its init and ~100 MB once it has served its routes), bounded by the
  function's concurrency;
- data: the emulator and the sandboxes hold what the run wrote (DynamoDB items, Stripe's events,
  Clio's deliveries, the outbox), as DynamoDB and the services would; measured beside it as the
  stack's kept state (every row it writes to its state folder);
- a leak: memory a process keeps per request it served, not explained by data.
The warm-up (`warm_up`) therefore runs until every pool has stopped growing, and the table
shows each part before and after with its workers and invocations, so a reader can tell the
three apart: a function whose workers are the same before and after and grew while serving
thousands of invocations would be leaking; the stack's process grows with its data."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import requests

MB = 1024 * 1024
# The warm-up ends once no pool has changed (same workers, each having served) and the
# workers' memory has moved less than this for STABLE_SECONDS.
STABLE_SECONDS = 10.0
STABLE_MB = 3.0
SAMPLE_SECONDS = 1.0


def _rss(pid: int) -> int:
    try:
        return int(psutil.Process(pid).memory_info().rss)
    except psutil.Error:
        return 0


@dataclass(frozen=True)
class FunctionMemory:
    workers: tuple[int, ...]  # pids
    used: int  # of them, those that have served at least one invocation
    rss_mb: float
    invocations: int  # the function's invocations so far
    cold_starts: int
    recycled: int
    # pid -> (invocations it has served, its RSS in MB)
    per_worker: dict[int, tuple[int, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Snapshot:
    at: float  # time.monotonic()
    stack_mb: float  # the stack's own process: emulator, sandboxes, gateway
    functions: dict[str, FunctionMemory]
    other_mb: float  # processes of the tree the stack does not list (none expected)
    kept_rows: int | None  # the stack's kept state: rows and bytes (data, not memory)
    kept_mb: float | None

    @property
    def workers_mb(self) -> float:
        return sum(f.rss_mb for f in self.functions.values())

    @property
    def total_mb(self) -> float:
        return self.stack_mb + self.workers_mb + self.other_mb

    def shape(self) -> dict[str, tuple[tuple[int, ...], int]]:
        """Which workers each function has, and how many of them have served."""
        return {name: (f.workers, f.used) for name, f in self.functions.items()}

    @property
    def all_served(self) -> bool:
        """Every worker has served: none holds only its init's memory, to grow at its first
        invocations."""
        return all(f.used == len(f.workers) for f in self.functions.values())


def kept_state(state_dir: str | None) -> tuple[int, float] | tuple[None, None]:
    """Rows and megabytes of the stack's kept state (state.sqlite3, read without blocking
    its writer: WAL mode)."""
    if not state_dir:
        return None, None
    path = Path(state_dir) / "state.sqlite3"
    if not path.exists():
        return None, None
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as db:
            rows, size = db.execute(
                "SELECT count(*), coalesce(sum(length(value)), 0) FROM rows"
            ).fetchone()
    except sqlite3.Error:
        return None, None
    return int(rows), int(size) / MB


def snapshot(api: str, admin_token: str, pid: int, state_dir: str | None) -> Snapshot:
    stats = requests.get(
        f"{api}/_local/stats", headers={"Authorization": f"Bearer {admin_token}"}, timeout=60
    ).json()
    functions: dict[str, FunctionMemory] = {}
    listed = {pid}
    for name, pool in stats["functions"].items():
        per_worker = {
            int(w["pid"]): (int(w["invocations"]), _rss(int(w["pid"])) / MB)
            for w in pool["workers"]
        }
        pids = tuple(sorted(per_worker))
        listed.update(pids)
        functions[name] = FunctionMemory(
            workers=pids,
            used=sum(1 for served, _ in per_worker.values() if served > 0),
            rss_mb=sum(mb for _, mb in per_worker.values()),
            invocations=int(pool["invocations"]),
            cold_starts=int(pool["cold_starts"]),
            recycled=int(pool["recycled"]),
            per_worker=per_worker,
        )
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        children = []
    other = sum(_rss(c.pid) for c in children if c.pid not in listed) / MB
    rows, kept = kept_state(state_dir)
    return Snapshot(time.monotonic(), _rss(pid) / MB, functions, other, rows, kept)


CLIO_WEBHOOK = "ClioWebhookFunction"


def starting_workers(stats: dict[str, Any]) -> int:
    """Workers of any function still in their init (`GET /_local/stats`)."""
    return sum(
        1 for pool in stats["functions"].values() for w in pool["workers"] if w.get("starting")
    )


def clio_burst_size(stats: dict[str, Any]) -> int:
    """As many simultaneous Clio deliveries as the webhook function has pre-started workers
    (its provisioned concurrency; its concurrency if none): each worker serves one, so every
    one has served before memory is measured, and none waits or is throttled."""
    pool = stats["functions"].get(CLIO_WEBHOOK)
    if pool is None:
        return 0
    return int(pool.get("provisioned") or pool["concurrency"])


@dataclass
class WarmUp:
    """What the warm-up did and where it ended."""

    seconds: float = 0.0
    settled: bool = False
    steps: list[str] = field(default_factory=list)


def settle(
    take: Callable[[], Snapshot],
    *,
    started: float,
    min_seconds: float,
    max_seconds: float,
    stop: Callable[[], bool],
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[Snapshot, bool]:
    """Snapshots every second until the pools have been unchanged (same workers, every one
    of them having served) and the workers' memory steady for STABLE_SECONDS, at least
    `min_seconds` after `started`; at most until `max_seconds` (then not settled)."""
    history: list[Snapshot] = []
    while True:
        current = take()
        history.append(current)
        elapsed = current.at - started
        window = [s for s in history if current.at - s.at <= STABLE_SECONDS]
        steady = (
            history[0].at <= current.at - STABLE_SECONDS
            and current.all_served
            and all(s.shape() == current.shape() for s in window)
            and max(s.workers_mb for s in window) - min(s.workers_mb for s in window) < STABLE_MB
        )
        if elapsed >= min_seconds and steady:
            return current, True
        if elapsed >= max_seconds or stop():
            return current, False
        sleep(SAMPLE_SECONDS)


def rows(before: Snapshot, after: Snapshot) -> list[tuple[str, float, float, str]]:
    """(part, MB before, MB after, what its growth is) per part of the stack's tree."""
    found: list[tuple[str, float, float, str]] = []
    if before.kept_rows is not None and after.kept_rows is not None:
        data = (
            f"data: the state it holds grew by {after.kept_rows - before.kept_rows:,} rows "
            f"({(after.kept_mb or 0) - (before.kept_mb or 0):+.1f} MB as JSON), to "
            f"{after.kept_rows:,} rows"
        )
    else:
        data = "data: what the emulator and the sandboxes hold"
    found.append(
        (
            "the stack's process (AWS emulator, sandboxes, gateway)",
            before.stack_mb,
            after.stack_mb,
            data,
        )
    )
    for name in sorted(set(before.functions) | set(after.functions)):
        was = before.functions.get(name)
        now = after.functions.get(name)
        was_workers = was.per_worker if was else {}
        now_workers = now.per_worker if now else {}
        if not was_workers and not now_workers:
            continue
        served = (now.invocations if now else 0) - (was.invocations if was else 0)
        parts = [f"{len(was_workers)} → {len(now_workers)} workers, {served:,} invocations"]
        # Workers there both times, warm at the first: the same processes serving on.
        warm = [p for p in now_workers if p in was_workers and was_workers[p][0] > 0]
        if warm:
            growth = sum(now_workers[p][1] - was_workers[p][1] for p in warm)
            parts.append(
                f"{len(warm)} warm throughout: {growth / len(warm):+.1f} MB each "
                "(a leak would show here)"
            )
        cold = [p for p in now_workers if p in was_workers and was_workers[p][0] == 0]
        first = [p for p in cold if now_workers[p][0] > 0]
        if first:
            growth = sum(now_workers[p][1] - was_workers[p][1] for p in first)
            parts.append(
                f"{len(first)} idle at the warm-up's end served their first invocations: "
                f"{growth:+.1f} MB (a worker's own warm-up, once)"
            )
        new = len(set(now_workers) - set(was_workers))
        gone = len(set(was_workers) - set(now_workers))
        if new or gone:
            recycled = (now.recycled if now else 0) - (was.recycled if was else 0)
            parts.append(
                f"{new} started, {gone} ended"
                + (f" ({recycled} recycled)" if recycled else "")
                + ": the pool, bounded by its concurrency"
            )
        found.append(
            (name, was.rss_mb if was else 0.0, now.rss_mb if now else 0.0, "; ".join(parts))
        )
    if before.other_mb or after.other_mb:
        found.append(("other processes", before.other_mb, after.other_mb, "not a worker"))
    return found
