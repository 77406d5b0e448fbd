"""The PDF prefetch against Clio's real rate limit: how much of each window the sync leaves, how
much of that the prefetch takes (never more than it less the reserve), that it stops at a 429,
and that a clerk's sync in the same window still gets all it asks for.

The sandbox enforces Clio's 50 requests per 60-second window per token; its clock is moved a
window ahead before each scheduled sync, so each starts a fresh window without waiting.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import requests

from bench.common import Row, aws, count, start_api

FIRM = "prefetch"
LIMIT = 50
# Window 1: other work on the firm's token (a send fetching PDFs, say) spends this much of the
# window before the scheduled sync. Window 2: Clio answers the prefetch's first PDF with a 429.
OTHER_WINDOW, OTHER_REQUESTS = 1, 40
FAULT_WINDOW = 2


@dataclass(frozen=True)
class ClerkSync:
    """A clerk's `POST /sync` right after a window's prefetch, in the same window."""

    requests: int  # its Clio requests other than PDFs
    prefetched: int  # its own prefetch's PDF requests
    limited: int  # Clio's 429s in it
    status: str  # the run's status once done
    remaining: int  # what Clio's window had left after it


@dataclass(frozen=True)
class Window:
    sync: int  # the scheduled sync's Clio requests
    other: int  # requests other work on the token made before the sync
    prefetched: int  # the prefetch's PDF requests, an answered-429 one included
    limited: int  # Clio's own 429s (its rate limit), any request of the window
    injected_429: bool  # the prefetch's first PDF request was answered 429 (injected)
    clerk: ClerkSync | None

    @property
    def left(self) -> int:
        """What the window had left when the sync was done."""
        return LIMIT - self.other - self.sync

    @property
    def cached(self) -> int:
        """PDFs fetched and cached in the window (a 429 fetched nothing)."""
        clerk = self.clerk.prefetched if self.clerk else 0
        return self.prefetched - (1 if self.injected_429 else 0) + clerk


def _label(window: Window) -> str:
    used = f"{window.prefetched}/{window.left}"
    if window.other:
        return f"{used} (other work used {window.other} first)"
    if window.injected_429:
        return f"{used} (its first PDF answered 429: stopped)"
    return used


def prefetch_rows(windows: list[Window], sendable: int, reserve: int) -> list[Row]:
    """The part's rows from what each window saw; raises when they would measure nothing (no
    PDF fetched, no 429 met, no clerk's sync run), so the run fails instead of writing them."""
    if not sendable:
        raise RuntimeError("the prefetch bench seeded no sendable bill: nothing to prefetch")
    cached = sum(w.cached for w in windows)
    if not cached:
        # A row that says "held in every window" of no windows proves nothing.
        raise RuntimeError(f"the prefetch fetched no PDF of {sendable} sendable bills")
    faulted = [i for i, w in enumerate(windows) if w.injected_429]
    if not faulted or faulted[0] + 1 >= len(windows):
        raise RuntimeError("the prefetch never met its 429, or no window came after it")
    clerks = [w.clerk for w in windows if w.clerk is not None]
    if not clerks:
        raise RuntimeError("no clerk's sync ran after a prefetch")
    over = [i for i, w in enumerate(windows) if w.prefetched > max(0, w.left - reserve)]
    after_429, following = windows[faulted[0]].prefetched - 1, windows[faulted[0] + 1]
    clerk_requests = sorted(c.requests for c in clerks)
    remaining = sorted(c.remaining for c in clerks)
    failed = sum(1 for c in clerks if c.status != "succeeded")
    clerk_limited = sum(c.limited for c in clerks)
    return [
        (
            f"Prefetch: PDF requests used/left of each {LIMIT}-request window after its "
            "scheduled sync",
            ", ".join(_label(w) for w in windows),
            f"never above left less the reserve of {reserve}: "
            + (
                "held in every window"
                if not over
                else f"FAILED: exceeded in window {', '.join(str(i) for i in over)}"
            ),
        ),
        (
            f"Prefetch of {count(sendable)} sendable bills: windows, PDFs cached, Clio's 429s",
            f"{len(windows)} / {cached} / {sum(w.limited for w in windows)}",
            f"every sendable bill ({sendable})"
            + ("" if cached >= sendable else f": FAILED, {sendable - cached} left")
            + "; target 0 answers of Clio's rate limit",
        ),
        (
            f"Prefetch answered 429 (window {faulted[0]}, injected): PDF requests after it in "
            "that run; the next window's",
            f"{after_429}; {following.prefetched}/{following.left}",
            "target 0 (stop at the first 429), then the next run goes on: "
            + ("held" if after_429 == 0 and following.cached else "FAILED"),
        ),
        (
            f"A clerk's sync right after the prefetch, same window ({len(clerks)} windows): "
            "Clio requests / 429s / not succeeded; left in the window after it",
            f"{_span(clerk_requests)} / {clerk_limited} / {failed}; {_span(remaining)}",
            "target: every request answered at once (0 429s, 0 failed), the reserve is for it: "
            + ("held" if not clerk_limited and not failed else "FAILED")
            + f"; its own prefetch took {sum(c.prefetched for c in clerks)}",
        ),
    ]


def _span(values: list[int]) -> str:
    return str(values[0]) if values[0] == values[-1] else f"{values[0]} to {values[-1]}"


def _previews(stats: dict[str, Any]) -> int:
    return sum(n for path, n in stats["by_path"].items() if path.endswith("/preview.json"))


def prefetch_budget(bills: int = 300, max_windows: int = 20) -> list[Row]:
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
    windows: list[Window] = []
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
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer dev-{FIRM}"
        connect_firm(api.url, FIRM, FIRM)
        worker = provisioned.lambdas.name_of("SyncWorkerFunction")
        for index in range(max_windows):
            offset["seconds"] += 61  # a new rate window
            clio.state.reset_stats()
            token = clio.state.access_token_of(FIRM)
            other = 0
            if index == OTHER_WINDOW:
                for _ in range(OTHER_REQUESTS):
                    answer = session.get(
                        f"{clio.url}/api/v4/users/who_am_i.json",
                        headers={"Authorization": f"Bearer {token}"},
                        timeout=60,
                    )
                    answer.raise_for_status()
                    other += 1
            injected = index == FAULT_WINDOW
            if injected:
                clio.state.add_fault(FIRM, 429, 1, 60, path="/preview")
            if index:  # the first sync is the one connecting started
                boto3.client("lambda").invoke(
                    FunctionName=worker,
                    InvocationType="Event",
                    Payload=json.dumps(scheduled_event(datetime.now(UTC))).encode(),
                )
            provisioned.lambdas.drain()
            stats = clio.state.stats(FIRM)
            previews = _previews(stats)
            if injected and clio.state.faults:
                raise RuntimeError("the prefetch asked for no PDF in the window of its 429")
            clerk = None
            if not injected:
                clio.state.reset_stats()
                started = session.post(f"{api.url}/sync", timeout=60)
                started.raise_for_status()
                provisioned.lambdas.drain()
                run = session.get(f"{api.url}/sync/{started.json()['id']}", timeout=60)
                run.raise_for_status()
                after = clio.state.stats(FIRM)
                clerk = ClerkSync(
                    requests=int(after["api_requests"]) - _previews(after),
                    prefetched=_previews(after),
                    limited=int(after["rate_limited"]),
                    status=str(run.json()["status"]),
                    remaining=clio.state.peek_rate(token or "").remaining,
                )
            windows.append(
                Window(
                    sync=int(stats["api_requests"]) - previews - other,
                    other=other,
                    prefetched=previews,
                    limited=int(stats["rate_limited"]) + (clerk.limited if clerk else 0),
                    injected_429=injected,
                    clerk=clerk,
                )
            )
            if index > FAULT_WINDOW and sum(w.cached for w in windows) >= sendable:
                break
        api.stop()
        provisioned.lambdas.shutdown()
    clio.stop()
    return prefetch_rows(windows, sendable, reserve)
