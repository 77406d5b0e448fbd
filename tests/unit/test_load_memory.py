"""make load's memory accounting (bench/load/memory.py): when the warm-up ends, and what each
part's growth is called in the table.

make load once failed its 50 MB limit by 318 MB that were no leak: its warm-up was a fixed
15 s, and the schedule's first tick came after it, starting the reminders', the payment plans'
and one more sync worker (~80-120 MB each), functions the clients never call."""

from __future__ import annotations

from bench.load.memory import STABLE_SECONDS, FunctionMemory, Snapshot, rows, settle

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
