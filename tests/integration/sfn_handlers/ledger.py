"""What the test handlers were invoked with, shared with the test. The Map state runs its
iterations on several threads, hence the lock."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Ledger:
    calls: list[tuple[str, dict[str, Any], float]] = field(default_factory=list)
    active: int = 0
    max_active: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, task: str, event: dict[str, Any]) -> int:
        """Record one invocation; answer how many times `task` has now seen this envelope."""
        with self.lock:
            self.calls.append((task, event, time.monotonic()))
            return sum(
                1
                for name, seen, _ in self.calls
                if name == task and seen.get("envelope_id") == event.get("envelope_id")
            )

    def enter(self) -> None:
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)

    def leave(self) -> None:
        with self.lock:
            self.active -= 1

    def times(self, task: str, envelope_id: str) -> list[float]:
        with self.lock:
            return [
                at
                for name, seen, at in self.calls
                if name == task and seen["envelope_id"] == envelope_id
            ]

    def events(self, task: str) -> list[dict[str, Any]]:
        with self.lock:
            return [seen for name, seen, _ in self.calls if name == task]

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()
            self.active = self.max_active = 0


LEDGER = Ledger()
