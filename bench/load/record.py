"""What the clients saw: every request's route, status and latency, and every answer that
was meant for another request."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import requests

TIMEOUT = 60.0


@dataclass
class Sample:
    route: str
    status: int  # 0: no answer at all (connection refused or reset, timeout)
    ms: float


class Recorder:
    """Every request's route, status and latency, and every answer meant for another request."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.samples: list[Sample] = []
        self.crossed: list[str] = []
        self.unanswered: list[str] = []
        self.server_errors: list[str] = []
        self.refusals: dict[str, list[str]] = defaultdict(list)  # a few 4xx per route, to read

    def add(self, route: str, status: int, ms: float, detail: str = "") -> None:
        with self.lock:
            self.samples.append(Sample(route, status, ms))
            if status == 0:
                self.unanswered.append(f"{route}: {detail}")
            elif status >= 500:
                self.server_errors.append(f"{route}: {status} {detail[:300]}")
            elif status >= 400 and len(self.refusals[route]) < 3:
                self.refusals[route].append(f"{status} {detail[:200]}")

    def cross(self, route: str, detail: str) -> None:
        with self.lock:
            self.crossed.append(f"{route}: {detail[:500]}")

    def call(
        self, route: str, session: requests.Session, method: str, url: str, **kwargs: Any
    ) -> requests.Response | None:
        started = time.monotonic()
        try:
            answer = session.request(method, url, timeout=TIMEOUT, **kwargs)
        except requests.RequestException as exc:
            detail = f"{type(exc).__name__}: {exc}"[:300]
            self.add(route, 0, (time.monotonic() - started) * 1000, detail)
            return None
        self.add(route, answer.status_code, (time.monotonic() - started) * 1000, answer.text)
        if answer.status_code == 401 and "Authorization" in session.headers:
            # Every client's token is good: a 401 answered someone else's request (one that
            # carried no firm), as when a handler reads another request's event.
            self.cross(route, f"401 to a signed-in request: {answer.text}")
        return answer


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def summarise(samples: list[Sample]) -> list[tuple[str, int, int, int, float, float, float]]:
    by_route: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        by_route[sample.route].append(sample)
    rows = []
    for route in sorted(by_route):
        group = by_route[route]
        latencies = [s.ms for s in group]
        rows.append(
            (
                route,
                len(group),
                sum(1 for s in group if 400 <= s.status < 500),
                sum(1 for s in group if s.status >= 500 or s.status == 0),
                _percentile(latencies, 0.50),
                _percentile(latencies, 0.95),
                _percentile(latencies, 0.99),
            )
        )
    return rows
