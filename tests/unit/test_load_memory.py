"""make load's memory accounting (bench/load/memory.py): when the warm-up ends, and what each
part's growth is called in the table.

make load once failed its 50 MB limit by 318 MB that were no leak: its warm-up was a fixed
15 s, and the schedule's first tick came after it, starting the reminders', the payment plans'
and one more sync worker (~80-120 MB each), functions the clients never call."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

from bench.load.clients import Clients
from bench.load.memory import (
    STABLE_SECONDS,
    FunctionMemory,
    Snapshot,
    clio_burst_size,
    rows,
    settle,
    starting_workers,
)
from bench.load.world import FirmWorld

Workers = dict[int, tuple[int, float]]  # pid -> (invocations served, MB)


def snap(
    at: float,
    functions: dict[str, Workers],
    stack_mb: float = 300.0,
    kept_rows: int | None = 100,
) -> Snapshot:
    return Snapshot(
        at=at,
        stack_mb=stack_mb,
        functions={
            name: FunctionMemory(
                workers=tuple(sorted(workers)),
                used=sum(1 for served, _ in workers.values() if served),
                rss_mb=sum(mb for _, mb in workers.values()),
                invocations=sum(served for served, _ in workers.values()),
                cold_starts=len(workers),
                recycled=0,
                per_worker=workers,
            )
            for name, workers in functions.items()
        },
        other_mb=0.0,
        kept_rows=kept_rows,
        kept_mb=None if kept_rows is None else kept_rows / 1000,
    )


def warm_up(timeline: list[Snapshot], max_seconds: float = 60.0) -> tuple[Snapshot, bool]:
    taken = iter(timeline)
    return settle(
        lambda: next(taken),
        started=0.0,
        min_seconds=15.0,
        max_seconds=max_seconds,
        stop=lambda: False,
        sleep=lambda _: None,
    )


def test_given_pools_still_filling_at_15_s_then_the_warm_up_waits_until_they_hold_still():
    def at(t: int) -> Snapshot:
        # The API's workers warm up (their first calls of each route) for 20 s; the tick the
        # warm-up sent starts the reminders' worker at 14 s.
        functions = {"ApiFunction": {pid: (t, 100.0 + min(t, 20)) for pid in (11, 12, 13, 14)}}
        if t >= 14:
            functions["RemindersFunction"] = {21: (1, 84.0)}
        return snap(float(t), functions)

    before, settled = warm_up([at(t) for t in range(0, 60)])

    assert settled
    assert "RemindersFunction" in before.functions
    assert before.functions["ApiFunction"].rss_mb == 480.0
    # The first moment the workers had moved less than 3 MB over the 10 s before it.
    assert before.at == 20.0 + STABLE_SECONDS


def test_given_a_worker_that_has_not_served_yet_then_the_warm_up_waits_for_its_first_call():
    def at(t: int) -> Snapshot:
        # A tick's fan-out started a fourth sync worker that a warm one beat to the work: it
        # holds its init's 40 MB until a sync reaches it at 25 s (then ~120 MB).
        workers: Workers = {pid: (3, 121.0) for pid in (31, 32, 33)}
        workers[34] = (1, 121.0) if t >= 25 else (0, 40.0)
        return snap(float(t), {"SyncWorkerFunction": workers})

    before, settled = warm_up([at(t) for t in range(0, 60)])

    assert settled
    assert before.functions["SyncWorkerFunction"].used == 4
    assert before.at == 25.0 + STABLE_SECONDS


def test_given_workers_still_growing_at_the_limit_then_the_warm_up_says_it_did_not_settle():
    timeline = [snap(float(t), {"ApiFunction": {11: (t, 100.0 + 5 * t)}}) for t in range(0, 100)]

    before, settled = warm_up(timeline, max_seconds=30.0)

    assert not settled
    assert before.at == 30.0


def test_given_the_parts_then_the_table_tells_pools_first_calls_warm_workers_and_data_apart():
    before = snap(
        0.0,
        {
            "ApiFunction": {11: (50, 100.0), 12: (50, 100.0)},
            "SyncWorkerFunction": {31: (3, 110.0), 32: (0, 40.0)},
            "ClioWebhookFunction": {41: (5, 84.0)},
        },
        stack_mb=300.0,
        kept_rows=1_000,
    )
    after = snap(
        100.0,
        {
            "ApiFunction": {11: (1_050, 102.0), 12: (1_050, 102.0)},
            "SyncWorkerFunction": {31: (6, 110.0), 32: (2, 121.0)},
            "ClioWebhookFunction": {41: (9, 84.0), 42: (2, 84.0)},
        },
        stack_mb=316.0,
        kept_rows=5_000,
    )

    found = {part: (was, now, what) for part, was, now, what in rows(before, after)}

    stack = found["the stack's process (AWS emulator, sandboxes, gateway)"]
    assert stack[:2] == (300.0, 316.0)
    assert "data" in stack[2] and "4,000 rows" in stack[2]
    assert found["ApiFunction"][2] == (
        "2 → 2 workers, 2,000 invocations; 2 warm throughout: +2.0 MB each (a leak would show here)"
    )
    assert (
        "1 idle at the warm-up's end served their first invocations: +81.0 MB"
        in found["SyncWorkerFunction"][2]
    )
    assert (
        "1 started, 0 ended: the pool, bounded by its concurrency"
        in found["ClioWebhookFunction"][2]
    )


# --- the warm-up's Clio burst -------------------------------------------------------------------
# It used to change every churn bill at once (9) at the run's first instant, beside the tick
# and 50 clients' first calls while their functions' workers were still in their init: 5 of
# the 9 were throttled (4 workers) and 4 of those served got no answer within Clio's 5 s.


def _stats(provisioned: int, concurrency: int = 4, starting: int = 0) -> dict[str, Any]:
    def pool(workers: list[dict[str, Any]], **more: Any) -> dict[str, Any]:
        return {"concurrency": concurrency, "provisioned": 0, "workers": workers, **more}

    return {
        "functions": {
            "ApiFunction": pool(
                [{"pid": 10 + n, "invocations": 3} for n in range(2)]
                + [{"pid": 20 + n, "starting": True, "invocations": 0} for n in range(starting)]
            ),
            "ClioWebhookFunction": pool(
                [{"pid": 30 + n, "invocations": 0} for n in range(provisioned)],
                provisioned=provisioned,
            ),
        }
    }


def test_given_a_provisioned_clio_webhook_then_the_burst_is_one_delivery_per_worker():
    assert clio_burst_size(_stats(provisioned=4)) == 4
    assert clio_burst_size(_stats(provisioned=2)) == 2
    assert clio_burst_size(_stats(provisioned=0, concurrency=3)) == 3


def test_given_workers_in_their_init_then_they_are_counted_as_starting():
    assert starting_workers(_stats(provisioned=4, starting=3)) == 3
    assert starting_workers(_stats(provisioned=4)) == 0


class _Recorder:
    def __init__(self) -> None:
        self.changed: list[str] = []
        self.lock = threading.Lock()

    def call(self, route: str, session: Any, method: str, url: str, **_: Any) -> None:
        with self.lock:
            self.changed.append(url.rsplit("/", 1)[1])


def test_given_three_firms_of_three_churn_bills_then_a_burst_of_4_changes_4_bills_round_the_firms():
    world = SimpleNamespace(
        urls=SimpleNamespace(clio="http://clio"),
        recorder=_Recorder(),
        firms=[
            FirmWorld(id=f"f{n}", name="", domain="", churn=[f"b{n}{m}" for m in range(3)])
            for n in range(3)
        ],
    )

    sent = Clients(world, seed=1).clio_burst(4)  # type: ignore[arg-type]

    assert sent == 4
    assert sorted(world.recorder.changed) == ["b00", "b01", "b10", "b20"]
    assert [sorted(f.changed) for f in world.firms] == [["b00", "b01"], ["b10"], ["b20"]]
