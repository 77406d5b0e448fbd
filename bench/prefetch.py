"""The PDF prefetch against Clio's real rate limit: how much of each window the sync leaves,
and how much of that the prefetch takes (never more, never a 429).

The sandbox enforces Clio's 50 requests per 60-second window per token; its clock is moved a
window ahead between runs, so each scheduled sync starts a fresh window without waiting.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import boto3

from bench.common import Row, aws, count, start_api

FIRM = "prefetch"
LIMIT = 50


def prefetch_budget(bills: int = 300, max_windows: int = 15) -> list[Row]:
    from billbridge.services.bill_pdfs import PrefetchPolicy
    from local.clio_sandbox import ClioSandbox
    from local.clio_sandbox.seed import seed_many
    from local.stack import connect_firm, scheduled_event

    reserve = PrefetchPolicy().reserve(LIMIT)
    offset = {"seconds": 0.0}
    clio = ClioSandbox(
        host="127.0.0.1",
        port=0,
        rate_limit=LIMIT,
        clock=lambda: time.time() + offset["seconds"],
    )
    clio.start()
    windows: list[tuple[int, int, int]] = []  # (sync's requests, prefetch's, 429s)
    with aws():
        provisioned, api = start_api(clio.url, "queue")
        ids = seed_many(clio.state, FIRM, bills, 3)
        for bill_id in ids:
            clio.state.update_bill(
                bill_id, state="awaiting_payment", balance_cents=5_000, notify=False
            )
        # Sendable: unpaid with a balance, and a client with an email address.
        sendable = sum(
            1 for b in clio.state.iter_account_bills(FIRM) if clio.state.contacts[b.client_id].email
        )
        connect_firm(api.url, FIRM, FIRM)
        worker = provisioned.lambdas.name_of("SyncWorkerFunction")
        for window in range(max_windows):
            offset["seconds"] += 61  # a new rate window
            clio.state.reset_stats()
            if window:  # the first sync is the one connecting started
                boto3.client("lambda").invoke(
                    FunctionName=worker,
                    InvocationType="Event",
                    Payload=json.dumps(scheduled_event(datetime.now(UTC))).encode(),
                )
            provisioned.lambdas.drain()
            stats = clio.state.stats(FIRM)
            previews = sum(
                n for path, n in stats["by_path"].items() if path.endswith("/preview.json")
            )
            windows.append((stats["api_requests"] - previews, previews, stats["rate_limited"]))
            if previews == 0:
                break
        api.stop()
        provisioned.lambdas.shutdown()
    clio.stop()
    fetched = sum(w[1] for w in windows)
    if sendable and not fetched:
        # A row that says "held in every window" of no windows proves nothing.
        raise RuntimeError(f"the prefetch fetched no PDF of {sendable} sendable bills")
    over = [w for w in windows if w[1] > LIMIT - w[0] - reserve]
    return [
        (
            f"Prefetch: Clio requests used of what the sync left, per {LIMIT}-request window",
            ", ".join(f"{p}/{LIMIT - s}" for s, p, _ in windows if p),
            f"never above what is left less the reserve of {reserve}: "
            + ("held in every window" if not over else f"exceeded in {len(over)}"),
        ),
        (
            f"Prefetch of {count(bills)} sendable bills: windows, PDFs, 429s",
            f"{sum(1 for w in windows if w[1])} / {fetched} / {sum(w[2] for w in windows)}",
            f"{sendable} sendable (a client with an email); target 0 rate-limited answers",
        ),
    ]
