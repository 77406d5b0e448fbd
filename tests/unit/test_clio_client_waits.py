"""The Clio client's waits for Clio's rate limit, within a caller's time budget (finding 12),
on a fake clock and a fake HTTP session: no network, no real sleeping."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import requests
from requests.structures import CaseInsensitiveDict

from billbridge.adapters.clio import ClioClient, ClioRateLimited, ClioTokens

NOW = 1_800_000_000.0


class FakeClock:
    def __init__(self) -> None:
        self.now = NOW
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class ScriptedClio:
    """A requests.Session stand-in answering from a script: (status, headers) per request,
    then 200 with one empty bill page."""

    def __init__(self, script: list[tuple[int, dict[str, str]]]) -> None:
        self.script = list(script)
        self.requests = 0

    def request(self, method: str, url: str, **_: object) -> requests.Response:
        self.requests += 1
        status, headers = self.script.pop(0) if self.script else (200, {})
        response = requests.Response()
        response.status_code = status
        response.url = url
        response.headers = CaseInsensitiveDict(headers)
        body = {"data": [], "meta": {}} if status == 200 else {"error": {"type": "RateLimited"}}
        response._content = json.dumps(body).encode()
        return response


def _client(script, clock: FakeClock) -> tuple[ClioClient, ScriptedClio]:
    session = ScriptedClio(script)
    client = ClioClient(
        "https://app.clio.com",
        "id",
        "secret",
        "https://bb.example/clio/callback",
        tokens=ClioTokens("at", "rt", datetime.fromtimestamp(NOW, UTC) + timedelta(days=30)),
        session=session,  # type: ignore[arg-type]
        sleep=clock.sleep,
        clock=clock,
    )
    return client, session


def _list_bills(client: ClioClient) -> list:
    return list(client.iter_bill_pages())


def test_given_more_429s_in_a_row_than_the_retry_cap_when_they_fit_the_budget_then_all_are_waited():
    clock = FakeClock()
    client, clio = _client([(429, {"Retry-After": "1"})] * 8, clock)
    deadline = clock.now + 60
    client.limit_waits(lambda: deadline - clock.now)

    pages = _list_bills(client)

    assert len(pages) == 1 and clio.requests == 9
    assert clock.sleeps == [1.0] * 8


def test_given_a_retry_after_longer_than_the_time_left_then_rate_limited_at_once_without_sleeping():
    clock = FakeClock()
    client, _ = _client([(429, {"Retry-After": "30"})], clock)
    deadline = clock.now + 10
    client.limit_waits(lambda: deadline - clock.now)

    with pytest.raises(ClioRateLimited) as limited:
        _list_bills(client)

    assert limited.value.retry_after == 30.0 and clock.sleeps == []
    assert "longer than we may wait (10 s)" in limited.value.message


def test_given_the_budget_running_down_then_waits_stop_when_the_next_no_longer_fits():
    clock = FakeClock()
    client, _ = _client([(429, {"Retry-After": "4"})] * 5, clock)
    deadline = clock.now + 10
    client.limit_waits(lambda: deadline - clock.now)

    with pytest.raises(ClioRateLimited):
        _list_bills(client)

    assert clock.sleeps == [4.0, 4.0]  # 8 s spent; the third 4 s wait does not fit the 2 left


def test_given_a_spent_rate_window_resetting_after_the_time_left_then_no_pacing_sleep():
    clock = FakeClock()
    spent = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(NOW + 40))}
    client, _ = _client([(200, spent)], clock)
    deadline = clock.now + 15
    client.limit_waits(lambda: deadline - clock.now)
    _list_bills(client)  # the answer says the window is spent until NOW + 40

    with pytest.raises(ClioRateLimited):
        _list_bills(client)

    assert clock.sleeps == []


def test_given_no_budget_then_the_retry_cap_still_bounds_429s():
    clock = FakeClock()
    client, clio = _client([(429, {"Retry-After": "1"})] * 20, clock)

    with pytest.raises(ClioRateLimited):
        _list_bills(client)

    assert clio.requests == 7  # the first try and six retries (max_retries)
