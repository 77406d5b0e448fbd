"""The local stack's clock (`POST /_local/clock`, `GET /_local/clock`): one offset from the real
time, kept in `clock.json` in the stack's state folder, so it survives a restart and every
process reads the same one.

Who follows it: every function (bootstrap's clock is `billbridge.adapters.shifted_clock` when
`LOCAL_CLOCK_FILE` is set, and each worker gets it in its environment), the schedule ticker
(the time of its scheduled events), the Clio sandbox (bill stamps, tokens, webhooks' expiry,
rate windows) and the Stripe sandbox (`created`, sessions' expiry). Stripe's webhook
signatures keep the real time: the handler checks them against the real time, as Stripe's
own test clocks do.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

from billbridge.adapters.shifted_clock import ShiftedClock, read_offset, write_offset

CLOCK_FILE_NAME = "clock.json"


class LocalClock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._reader = ShiftedClock(path)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        return self._reader()

    def timestamp(self) -> float:
        return self._reader.timestamp()

    def offset_seconds(self) -> float:
        return read_offset(self.path)

    def set(self, now: datetime) -> datetime:
        """Move the clock so that it reads `now` at this moment (forward or back); answers
        the new reading."""
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("now must carry a time zone (ISO 8601, e.g. 2026-01-31T09:00:00Z)")
        with self._lock:
            write_offset(self.path, (now - datetime.now(UTC)).total_seconds())
        return self.now()


def parse_now(raw: object) -> datetime:
    """`{"now": ...}` of `POST /_local/clock`: an ISO 8601 time with its zone."""
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError("now must be an ISO 8601 time, e.g. 2026-01-31T09:00:00Z")
    try:
        moment = datetime.fromisoformat(raw.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"now is not an ISO 8601 time: {raw[:40]!r}") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("now must carry a time zone (ISO 8601, e.g. 2026-01-31T09:00:00Z)")
    if not 2000 <= moment.astimezone(UTC).year <= 2200:
        raise ValueError("now must be between the years 2000 and 2200")
    return moment.astimezone(UTC)
