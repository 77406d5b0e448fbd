"""Bill PDFs (S2, S3): a bill's PDF from the cache when it holds the bill's current version,
else from Clio (and then cached); and the prefetch, which fills the cache with the Clio budget
a sync leaves unused, so that a send needs no Clio request at all.

The version is Clio's etag as the store holds it: a bill changed in Clio (synced, or delivered
by a webhook) has a new etag, so its PDF is fetched again; an unchanged one never is.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from aws_lambda_powertools import Logger

from billbridge.domain.bills import StoredBill
from billbridge.domain.errors import ClioAuthorizationLost, ClioUnreachable
from billbridge.services.ports import BillRepository, ClioGateway, PdfStore

logger = Logger(child=True)


@dataclass(frozen=True)
class PrefetchPolicy:
    """How much of a firm's Clio window the prefetch may use."""

    # At most this many PDFs per sync run (a bound on the worker's time, whatever the budget).
    per_run: int = 100
    # Part of the window (Clio's X-RateLimit-Limit) never used by the prefetch: what a view's
    # sync, a manual sync or a send may need before the window resets.
    reserve_share: float = 0.2
    min_reserve: int = 5

    def reserve(self, limit: int) -> int:
        return max(self.min_reserve, math.ceil(limit * self.reserve_share))


@dataclass(frozen=True)
class PrefetchOutcome:
    # Requests the window still had when the prefetch began, less the reserve.
    budget: int
    fetched: int
    # Bills whose current version was already cached (a replayed webhook): no request made.
    already_cached: int
    # Why it stopped: "done", "budget", "time", "clio" (a 429, an outage, or authorization
    # lost) or "unknown_budget" (no rate headers seen yet).
    stopped: str


class BillPdfs:
    def __init__(
        self,
        *,
        bills: BillRepository,
        store: PdfStore,
        policy: PrefetchPolicy | None = None,
    ) -> None:
        self._bills = bills
        self._store = store
        self._policy = policy or PrefetchPolicy()

    def pdf(self, firm_id: str, stored: StoredBill, clio: Callable[[], ClioGateway]) -> bytes:
        """The PDF of the bill's stored version. `clio` is called only when it must be fetched
        (missing, stale, or expired from the cache)."""
        bill = stored.bill
        if stored.pdf_etag == bill.etag:
            cached = self._store.get(firm_id, bill.id, bill.etag)
            if cached is not None:
                return cached
        pdf = clio().bill_pdf(bill.id)
        self._keep(firm_id, bill.id, bill.etag, pdf)
        return pdf

    def prefetch(
        self, firm_id: str, clio: ClioGateway, seconds_left: Callable[[], float]
    ) -> PrefetchOutcome:
        """Fetch the PDFs of sendable bills not cached yet, newest first, with what the current
        rate window has left above the reserve: never waiting for a window, stopping at the
        first 429 or outage (the next run carries on)."""
        remaining, limit = clio.rate_remaining, clio.rate_limit
        if remaining is None or limit is None:
            return PrefetchOutcome(0, 0, 0, "unknown_budget")
        reserve = self._policy.reserve(limit)
        budget = max(0, remaining - reserve)
        fetched = already = 0
        stopped = "done"
        if budget == 0:
            return PrefetchOutcome(0, 0, 0, "budget")
        for wanted in self._bills.pdf_wanted(firm_id, self._policy.per_run):
            if wanted.cached_etag == wanted.etag:
                self._bills.mark_pdf_cached(firm_id, wanted.bill_id, wanted.etag)
                already += 1
                continue
            now_left = clio.rate_remaining
            if fetched >= budget or now_left is None or now_left <= reserve:
                # Spent, or someone else (a send, a view's sync) is using the window.
                stopped = "budget"
                break
            if seconds_left() <= 0:
                stopped = "time"
                break
            try:
                pdf = clio.bill_pdf(wanted.bill_id, wait_for_budget=False)
            except ClioAuthorizationLost:
                stopped = "clio"  # the next sync finds out and asks for a reconnect
                break
            except ClioUnreachable as exc:
                if exc.transient:
                    # A 429, a spent window or an outage: back off until the next run.
                    stopped = "clio"
                    break
                # Clio refuses this one bill (gone, say): the next sync updates or drops it.
                logger.warning(
                    "bill PDF not prefetched",
                    extra={"firm_id": firm_id, "bill_id": wanted.bill_id, "reason": exc.message},
                )
                continue
            self._keep(firm_id, wanted.bill_id, wanted.etag, pdf)
            fetched += 1
        logger.info(
            "bill PDFs prefetched",
            extra={
                "firm_id": firm_id,
                "fetched": fetched,
                "budget": budget,
                "already_cached": already,
                "stopped": stopped,
            },
        )
        return PrefetchOutcome(budget, fetched, already, stopped)

    def _keep(self, firm_id: str, bill_id: int, etag: str, pdf: bytes) -> None:
        self._store.put(firm_id, bill_id, etag, pdf)
        # Conditional on the version: a bill changed meanwhile stays wanted.
        self._bills.mark_pdf_cached(firm_id, bill_id, etag)
