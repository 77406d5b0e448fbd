"""The local stack's controls (local/controls.py): who may call which, and the admin token."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from local.controls import LocalControls, admin_token

TOKEN = "a-local-admin-token-for-tests"


class FakeStack:
    def __init__(self) -> None:
        self.onboarded: list[str] = []
        self.ticks = 0
        self.mails = [
            {"message_id": "m1", "to": ["a@client.example"]},
            {"message_id": "m2", "to": ["b@client.example"]},
        ]
        self.owners = {"m1": "firm-a", "m2": "firm-b"}

    def payment_accounts(self, firm_id: str, name: str | None = None) -> Any:
        self.onboarded.append(firm_id)
        return SimpleNamespace(trust_account_id="acct_t", operating_account_id="acct_o")

    def tick(self) -> None:
        self.ticks += 1

    def outbox(self) -> list[dict[str, Any]]:
        return self.mails

    def firm_of_message(self, message_id: str) -> str | None:
        return self.owners.get(message_id)

    def worker_pids(self) -> list[int]:
        return [41, 42]

    def functions(self) -> dict[str, Any]:
        return {"ApiFunction": {"workers": []}}


def call(
    controls: LocalControls, method: str, path: str, token: str | None = None
) -> tuple[int, Any]:
    headers = {"Authorization": token} if token else {}
    status, _, body = controls(method, path, headers, b"")
    return status, json.loads(body)


@pytest.fixture
def stack() -> FakeStack:
    return FakeStack()


@pytest.fixture
def controls(stack: FakeStack) -> LocalControls:
    return LocalControls(stack, TOKEN)


def test_given_no_token_then_only_health_answers(controls: LocalControls) -> None:
    status, health = call(controls, "GET", "/_local/health")
    assert status == 200 and health["ok"] is True and health["worker_pids"] == [41, 42]
    for method, path in (
        ("GET", "/_local/outbox"),
        ("GET", "/_local/stats"),
        ("POST", "/_local/tick"),
        ("POST", "/_local/firms/firm-a/payment-accounts"),
    ):
        status, body = call(controls, method, path)
        assert status == 401, path
        assert body["error"]["code"] == "unauthenticated" and "field" in body["error"]


def test_given_the_admin_token_then_every_control_answers(
    controls: LocalControls, stack: FakeStack
) -> None:
    admin = f"Bearer {TOKEN}"

    assert call(controls, "GET", "/_local/outbox", admin) == (200, stack.mails)
    assert call(controls, "GET", "/_local/stats", admin)[0] == 200
    assert call(controls, "POST", "/_local/tick", admin)[0] == 202
    status, made = call(controls, "POST", "/_local/firms/firm-c/payment-accounts", admin)

    assert status == 201 and made["trust_account_id"] == "acct_t"
    assert stack.onboarded == ["firm-c"] and stack.ticks == 1


def test_given_a_firms_sign_in_then_it_reads_only_its_own_mail_and_nothing_else(
    controls: LocalControls, stack: FakeStack
) -> None:
    status, mails = call(controls, "GET", "/_local/outbox", "Bearer dev-firm-a")
    assert status == 200 and [m["message_id"] for m in mails] == ["m1"]
    # A firm named like a role is still a firm.
    status, body = call(controls, "GET", "/_local/stats", "Bearer dev-admin")
    assert status == 403 and body["error"]["code"] == "forbidden"
    assert call(controls, "GET", "/_local/outbox", "Bearer dev-admin") == (200, [])
    assert call(controls, "POST", "/_local/tick", "Bearer dev-firm-a")[0] == 403
    assert stack.ticks == 0


@pytest.mark.parametrize(
    "token", [f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", TOKEN, f"Basic {TOKEN}", "Bearer "]
)
def test_given_a_token_that_is_not_the_admin_token_then_it_is_refused(
    controls: LocalControls, token: str
) -> None:
    assert call(controls, "GET", "/_local/stats", token)[0] == 401


def test_given_a_wrong_method_or_an_unknown_control_then_405_or_404(
    controls: LocalControls,
) -> None:
    admin = f"Bearer {TOKEN}"
    assert call(controls, "GET", "/_local/tick", admin)[0] == 405
    assert call(controls, "POST", "/_local/outbox", admin)[0] == 405
    assert call(controls, "GET", "/_local/nothing-here", admin)[0] == 404


def test_given_no_token_anywhere_then_one_is_made_kept_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / ".local" / "admin-token"

    first = admin_token({}, path)
    second = admin_token({}, path)

    assert first == second and len(first) >= 24
    assert path.read_text().strip() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_given_the_environment_names_a_token_then_it_wins_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    path = tmp_path / ".local" / "admin-token"

    assert admin_token({"LOCAL_ADMIN_TOKEN": "from-the-env-123456"}, path) == "from-the-env-123456"
    assert not path.exists()
