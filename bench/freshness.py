"""Freshness: a bill changed in the Clio sandbox until the product shows it, through Clio's
webhooks and through the one-minute schedule alone.

The local stack's shape: asynchronous Lambda invocations on worker threads, the sandbox's
webhooks signed and posted to the API (after the sandbox's own 50 ms delivery delay), Clio's
50-a-minute rate limit, the PDF prefetch on.
"""

from __future__ import annotations

import json
import random
import threading
import time
from datetime import UTC, datetime
from typing import Any

import boto3
import requests

from bench.common import Row, aws, count, percentile, seed_spread, start_api, wait_for

FIRM = "fresh"
PAGE = 20


def _enabled_webhook(clio: Any) -> bool:
    return any(h.status == "enabled" for h in clio.state.webhooks_of(FIRM))


def freshness(bills: int = 1_000, changes: int = 50, schedule_seconds: float = 60.0) -> list[Row]:
    from billbridge.adapters.dynamo import DynamoBillRepository
    from local.clio_sandbox import ClioSandbox
    from local.stack import connect_firm, scheduled_event

    offset = {"seconds": 0.0}
    clio = ClioSandbox(host="127.0.0.1", port=0, clock=lambda: time.time() + offset["seconds"])
    clio.start()
    rows: list[Row] = []
    with aws():
        provisioned, api = start_api(clio.url, "thread", clio_webhooks=True)
        seed_spread(clio.state, FIRM, bills, offset)
        connect_firm(api.url, FIRM, FIRM)
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer dev-{FIRM}"
        # The first sync imports everything, then subscribes to Clio's bill webhooks.
        wait_for("the first sync and the webhook handshake", lambda: _enabled_webhook(clio))
        provisioned.lambdas.wait_idle(timeout=600)
        # A short page: moto spends milliseconds serialising each item it returns.
        page = session.get(f"{api.url}/invoices", params={"page_size": PAGE}, timeout=60).json()
        targets = [
            int(i["id"])
            for i in page["items"]
            if i["state"] == "awaiting_payment" and i["outstanding_clio_cents"] > changes + 1
        ]
        assert targets, "no unpaid bill on the first page to change"

        # -- through webhooks: each change on its own, watched through GET /invoices --------
        through_webhooks: list[float] = []
        # The views' own syncs (one a view starts when the last is 30 s old) read Clio's bill
        # list; counted, so the row says whether any change could have come by one of them.
        clio.state.reset_stats()
        for n in range(changes):
            bill_id = targets[n % len(targets)]
            balance = clio.state.bill_of(FIRM, bill_id).balance_cents - 1
            began = time.monotonic()
            clio.state.update_bill(bill_id, balance_cents=balance)

            def shown(bill_id: int = bill_id, balance: int = balance) -> bool:
                answer = session.get(f"{api.url}/invoices", params={"page_size": PAGE}, timeout=60)
                return any(
                    int(i["id"]) == bill_id and i["outstanding_clio_cents"] == balance
                    for i in answer.json()["items"]
                )

            wait_for(f"bill {bill_id} to show its change", shown, interval=0.02)
            through_webhooks.append(time.monotonic() - began)
        p50, p95 = percentile(through_webhooks, 0.5), percentile(through_webhooks, 0.95)
        listed = clio.state.stats(FIRM)["by_path"].get("/api/v4/bills.json", 0)
        rows.append(
            (
                f"Freshness through webhooks, p50 / p95 ({changes} changes, {count(bills)} bills)",
                f"{p50:.2f} s / {p95:.2f} s; Clio bill-list requests meanwhile: {listed}",
                ("met" if p50 <= 2 and p95 <= 5 else "MISSED")
                + " (target <= 2 s / <= 5 s); the list requests are the views' own syncs",
            )
        )

        # -- through the schedule alone: no webhook, no view ----------------------------------
        provisioned.lambdas.wait_idle(timeout=600)
        store = DynamoBillRepository(boto3.client("dynamodb"), provisioned.table_name)
        worker = provisioned.lambdas.name_of("SyncWorkerFunction")
        stop = threading.Event()

        def tick() -> None:
            while not stop.wait(schedule_seconds):
                boto3.client("lambda").invoke(
                    FunctionName=worker,
                    InvocationType="Event",
                    Payload=json.dumps(scheduled_event(datetime.now(UTC))).encode(),
                )

        ticker = threading.Thread(target=tick, name="bench-schedule", daemon=True)
        pending: dict[int, tuple[int, float]] = {}
        seen: list[float] = []
        lock = threading.Lock()

        def watch() -> None:
            # The store is what GET /invoices answers from; reading it here, not through the
            # API, keeps views from starting syncs of their own.
            while not stop.is_set():
                with lock:
                    wanted = dict(pending)
                if wanted:
                    found = store.get_many(FIRM, list(wanted))
                    now = time.monotonic()
                    with lock:
                        for bill_id, (balance, began) in wanted.items():
                            stored = found.get(bill_id)
                            if stored and stored.bill.outstanding_clio_cents == balance:
                                seen.append(now - began)
                                pending.pop(bill_id, None)
                time.sleep(0.25)

        watcher = threading.Thread(target=watch, name="bench-watch", daemon=True)
        ticker.start()
        watcher.start()
        rng = random.Random(50)
        spread = 3 * schedule_seconds  # the changes land at random points of three minutes
        # At most one change per bill waits at a time, so each is timed on its own.
        free = [
            b.id
            for b in clio.state.iter_account_bills(FIRM)
            if b.state == "awaiting_payment" and b.balance_cents > changes + 1
        ]
        for _ in range(changes):
            time.sleep(rng.uniform(0, 2 * spread / changes))
            wait_for("a bill free to change", lambda: any(b not in pending for b in free))
            with lock:
                bill_id = next(b for b in free if b not in pending)
                balance = clio.state.bill_of(FIRM, bill_id).balance_cents - 1
                clio.state.update_bill(bill_id, balance_cents=balance, notify=False)
                pending[bill_id] = (balance, time.monotonic())
        wait_for("every scheduled change to show", lambda: not pending, interval=0.5)
        stop.set()
        ticker.join(timeout=5)
        watcher.join(timeout=5)
        provisioned.lambdas.wait_idle(timeout=600)
        rows.append(
            (
                f"Freshness through the schedule alone, p50 / p95 ({changes} changes)",
                f"{percentile(seen, 0.5):.1f} s / {percentile(seen, 0.95):.1f} s",
                ("met" if percentile(seen, 0.95) <= 70 else "MISSED")
                + f" (target p95 <= 70 s; a sync every {schedule_seconds:.0f} s)",
            )
        )
        api.stop()
        provisioned.lambdas.shutdown()
    clio.stop()
    return rows
