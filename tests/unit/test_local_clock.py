"""The local clock (local/clock.py, billbridge/adapters/shifted_clock.py, `/_local/clock`): one
offset file that every process reads, moved by the admin only, and bootstrap's clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from billbridge import bootstrap
from billbridge.adapters.shifted_clock import ShiftedClock, write_offset
from billbridge.config import CommonConfig
from local.clock import LocalClock
from local.controls import LocalControls
from tests.unit.test_local_controls import FakeStack

TOKEN = "a-local-admin-token-for-tests"


class ClockStack(FakeStack):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.clock = LocalClock(path)

    def clock_now(self) -> datetime:
        return self.clock.now()

    def set_clock(self, now: datetime) -> datetime:
        return self.clock.set(now)


def call(
    controls: LocalControls, method: str, body: Any = None, token: str | None = f"Bearer {TOKEN}"
) -> tuple[int, Any]:
    headers = {"Authorization": token} if token else {}
    raw = body if isinstance(body, bytes) else (b"" if body is None else json.dumps(body).encode())
    status, _, answer = controls(method, "/_local/clock", headers, raw)
    return status, json.loads(answer)


def close_to(moment: datetime, expected: datetime) -> bool:
    # Real time passes between the move and the reading; a loaded machine may take seconds.
    return abs((moment - expected).total_seconds()) < 120


def test_given_no_move_then_the_clock_reads_the_real_time(tmp_path: Path) -> None:
    controls = LocalControls(ClockStack(tmp_path / "clock.json"), TOKEN)
    status, body = call(controls, "GET")
    assert status == 200
    assert close_to(datetime.fromisoformat(body["now"]), datetime.now(UTC))


def test_when_the_admin_moves_the_clock_then_every_reader_of_the_file_sees_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "clock.json"
    controls = LocalControls(ClockStack(path), TOKEN)
    worker_clock = ShiftedClock(path)  # what a function's worker process reads
    target = datetime(2031, 3, 4, 9, 30, tzinfo=UTC)

    status, body = call(controls, "POST", {"now": "2031-03-04T09:30:00Z"})

    assert status == 200 and body["now"].endswith("Z")
    assert close_to(datetime.fromisoformat(body["now"]), target)
    assert close_to(worker_clock(), target)
    assert close_to(datetime.fromisoformat(call(controls, "GET")[1]["now"]), target)
    # And back again: the clock may be moved backwards too.
    call(controls, "POST", {"now": "2026-01-01T00:00:00+00:00"})
    assert close_to(worker_clock(), datetime(2026, 1, 1, tzinfo=UTC))


def test_given_a_moved_clock_when_a_new_reader_starts_then_it_reads_the_same_time(
    tmp_path: Path,
) -> None:
    """A restarted stack, or a worker started later, finds the offset in the file."""
    path = tmp_path / "clock.json"
    LocalClock(path).set(datetime.now(UTC) + timedelta(days=40))
    assert close_to(LocalClock(path).now(), datetime.now(UTC) + timedelta(days=40))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", None),
        ([], "now"),
        ({}, "now"),
        ({"now": "2031-03-04T09:30:00Z", "extra": 1}, "now"),
        ({"now": "yesterday"}, "now"),
        ({"now": "2031-03-04T09:30:00"}, "now"),  # no zone: which time would it be?
        ({"now": 1_900_000_000}, "now"),
        ({"now": "1900-01-01T00:00:00Z"}, "now"),
    ],
)
def test_given_a_bad_body_then_400_and_the_clock_is_unchanged(
    tmp_path: Path, body: Any, field: str | None
) -> None:
    path = tmp_path / "clock.json"
    controls = LocalControls(ClockStack(path), TOKEN)
    status, answer = call(controls, "POST", body)
    assert status == 400
    assert answer["error"]["code"] == "invalid_input" and answer["error"]["field"] == field
    assert answer["error"]["message"]
    assert not path.exists()


def test_given_a_firm_or_no_token_then_the_clock_cannot_be_moved(tmp_path: Path) -> None:
    path = tmp_path / "clock.json"
    controls = LocalControls(ClockStack(path), TOKEN)
    status, answer = call(controls, "POST", {"now": "2031-03-04T09:30:00Z"}, token=None)
    assert status == 401 and answer["error"]["code"] == "unauthenticated"
    status, answer = call(controls, "POST", {"now": "2031-03-04T09:30:00Z"}, "Bearer dev-f")
    assert status == 403 and answer["error"]["code"] == "forbidden"
    status, answer = call(controls, "GET", token="Bearer dev-f")
    assert status == 403
    status, answer = call(controls, "DELETE")
    assert status == 405
    assert not path.exists()


def test_given_an_unreadable_file_then_the_clock_is_the_real_one(tmp_path: Path) -> None:
    path = tmp_path / "clock.json"
    path.write_text("garbage")
    assert close_to(ShiftedClock(path)(), datetime.now(UTC))
    write_offset(path, 3600.0)
    assert close_to(ShiftedClock(path)(), datetime.now(UTC) + timedelta(hours=1))


def test_given_local_clock_file_then_bootstrap_serves_the_shifted_clock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "clock.json"
    write_offset(path, 86_400.0 * 20)
    monkeypatch.setenv("TABLE_NAME", "t")
    monkeypatch.setenv("LOCAL_CLOCK_FILE", str(path))
    wiring = bootstrap._Wiring(CommonConfig(), bootstrap.Adapters())  # type: ignore[call-arg]
    assert close_to(wiring.clock(), datetime.now(UTC) + timedelta(days=20))
    monkeypatch.delenv("LOCAL_CLOCK_FILE")
    wiring = bootstrap._Wiring(CommonConfig(), bootstrap.Adapters())  # type: ignore[call-arg]
    assert close_to(wiring.clock(), datetime.now(UTC))


def test_given_a_schedule_that_fails_when_ticked_then_502_in_the_error_shape(
    tmp_path: Path,
) -> None:
    stack = ClockStack(tmp_path / "clock.json")

    def fail() -> None:
        raise RuntimeError("the reminders tick failed: boom")

    stack.tick = fail  # type: ignore[method-assign]
    controls = LocalControls(stack, TOKEN)
    status, _, answer = controls("POST", "/_local/tick", {"Authorization": f"Bearer {TOKEN}"}, b"")
    body = json.loads(answer)
    assert status == 502 and body["error"]["code"] == "tick_failed"
    assert "boom" in body["error"]["message"]
