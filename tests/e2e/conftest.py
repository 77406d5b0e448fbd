"""End-to-end fixtures: the local stack (`python -m local.stack`, what `make run` starts) in a
subprocess on free ports, and small HTTP helpers that act as the web UI and as Clio staff."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalStack:
    api_url: str
    clio_url: str
    stripe_url: str
    aws_url: str
    process: subprocess.Popen[bytes]
    log: Path
    ports: dict[str, int]
    # The local admin token the stack was started with (LOCAL_ADMIN_TOKEN).
    admin_token: str

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    def control(self, method: str, path: str) -> requests.Response:
        """A local control (`/_local/...`), as the admin."""
        return requests.request(
            method, f"{self.api_url}{path}", headers=self.admin_headers, timeout=60
        )

    def outbox(self) -> list[dict[str, Any]]:
        answer = self.control("GET", "/_local/outbox")
        assert answer.status_code == 200, answer.text
        mails: list[dict[str, Any]] = answer.json()
        return mails


def stack_ports() -> dict[str, int]:
    return {
        name: free_port()
        for name in ("API_PORT", "CLIO_SANDBOX_PORT", "STRIPE_SANDBOX_PORT", "AWS_EMULATOR_PORT")
    }


def start_stack(
    state_dir: Path, log: Path, ports: dict[str, int] | None = None, *args: str
) -> LocalStack:
    """`python -m local.stack` in a subprocess, its state kept in `state_dir` (never the
    developer's `.local/`), on `ports` (free ones when None); answers once it is up."""
    ports = ports or stack_ports()
    admin_token = secrets.token_urlsafe(24)
    env = {
        **os.environ,
        **{k: str(v) for k, v in ports.items()},
        "LOCAL_STATE_DIR": str(state_dir),
        "PYTHONUNBUFFERED": "1",
        # Tests tick the schedule themselves (POST /_local/tick) when they mean to.
        "LOCAL_SYNC_TICK_SECONDS": "3600",
        # The local controls' token, so the tests can read the outbox and onboard firms.
        "LOCAL_ADMIN_TOKEN": admin_token,
    }
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "local.stack", *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    stack = LocalStack(
        api_url=f"http://127.0.0.1:{ports['API_PORT']}",
        clio_url=f"http://127.0.0.1:{ports['CLIO_SANDBOX_PORT']}",
        stripe_url=f"http://127.0.0.1:{ports['STRIPE_SANDBOX_PORT']}",
        aws_url=f"http://127.0.0.1:{ports['AWS_EMULATOR_PORT']}",
        process=process,
        log=log,
        ports=ports,
        admin_token=admin_token,
    )
    started = log.read_text(errors="replace").count("local stack is up")
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None:
            pytest.fail(f"the local stack exited:\n{log.read_text()[-4000:]}")
        if log.read_text(errors="replace").count("local stack is up") > started:
            return stack
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the local stack did not start:\n{log.read_text()[-4000:]}")
        time.sleep(0.2)


def stop_stack(stack: LocalStack, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
    """Send `sig` and wait for the process to end; answers its exit code."""
    stack.process.send_signal(sig)
    try:
        return stack.process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        stack.process.kill()
        stack.process.wait()
        raise


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    folder = tmp_path_factory.mktemp("stack")
    stack = start_stack(folder / "state", folder / "stack.log")
    yield stack
    try:
        stop_stack(stack, timeout=15)
    except subprocess.TimeoutExpired:
        pass


class Firm:
    """A firm's staff using the API, as the web UI does."""

    def __init__(self, stack: LocalStack, firm_id: str) -> None:
        self.stack = stack
        self.firm_id = firm_id
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer dev-{firm_id}"

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.session.get(f"{self.stack.api_url}{path}", params=params or None, timeout=60)

    def post(self, path: str, json: Any = None) -> requests.Response:
        return self.session.post(f"{self.stack.api_url}{path}", json=json, timeout=60)

    def put(self, path: str, json: Any = None) -> requests.Response:
        return self.session.put(f"{self.stack.api_url}{path}", json=json, timeout=60)

    def connect_clio(self, clio_account: str) -> requests.Response:
        """The OAuth dance through the real redirects; returns our callback's answer."""
        return self.approve_in_clio(self.start_connect(), clio_account)

    def start_connect(self) -> requests.Response:
        """Press Connect Clio: our answer, a redirect to Clio, sets the connect cookie in this
        firm's browser (`self.session`'s cookie jar)."""
        start = self.session.get(
            f"{self.stack.api_url}/clio/connect", allow_redirects=False, timeout=30
        )
        assert start.status_code == 302, start.text
        assert start.headers["Location"].startswith(f"{self.stack.clio_url}/oauth/authorize?")
        return start

    def approve_in_clio(
        self, start: requests.Response, clio_account: str, browser: Any = None
    ) -> requests.Response:
        """A Clio user of `clio_account` approves the authorize URL in `browser` (a cookie
        jar; this firm's own browser unless another is given); answers our callback's answer."""
        jar = self.session.cookies if browser is None else browser
        approved = requests.get(
            f"{start.headers['Location']}&{urlencode({'sandbox_account': clio_account})}",
            allow_redirects=False,
            timeout=30,
            cookies=jar,
        )
        assert approved.status_code == 302, approved.text
        # The callback carries no Authorization header: the state names the firm, and the
        # browser's cookie proves it is the browser that started the connect.
        return requests.get(
            approved.headers["Location"], allow_redirects=False, timeout=60, cookies=jar
        )

    def wait_sync(self, run_id: str, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            run = self.get(f"/sync/{run_id}").json()
            if run["status"] != "running":
                return run
            if time.monotonic() > deadline:
                tail = self.stack.log_tail()
                raise AssertionError(f"sync {run_id} still running: {run}\n--- stack log:\n{tail}")
            time.sleep(0.2)

    def sync_now(self) -> dict[str, Any]:
        """Press Sync and wait for it. A press while a run is live answers that run, which may
        have started before the caller's change: then wait for it and press again."""
        for _ in range(3):
            pressed_at = datetime.now(UTC)
            started = self.post("/sync")
            assert started.status_code == 202, started.text
            run = started.json()
            finished = self.wait_sync(run["id"])
            # Strictly after the press: a brand-new firm's connect-time run can start a moment
            # before it and not see bills made just now.
            if datetime.fromisoformat(run["started_at"]) >= pressed_at:
                return finished
        raise AssertionError("Sync never started a run of its own")

    def all_invoices(self, states: str, page_size: int) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"states": states, "page_size": page_size}
            if cursor:
                params["cursor"] = cursor
            page = self.get("/invoices", **params)
            assert page.status_code == 200, page.text
            body = page.json()
            assert len(body["items"]) <= page_size
            items += body["items"]
            cursor = body["next_cursor"]
            if not cursor:
                return items


class ClioStaff:
    """Someone changing bills in Clio: the sandbox's control endpoints."""

    def __init__(self, stack: LocalStack, account: str) -> None:
        self.url = stack.clio_url
        self.account = account

    def create_bill(self, **fields: Any) -> dict[str, Any]:
        body = {
            "account": self.account,
            "kind": "invoice",
            "total_cents": 10_000,
            "state": "awaiting_payment",
            "client": {"name": "Acme Ltd", "email": "billing@acme.example"},
            "matter": {"display_number": "00001-Acme", "description": "General"},
        }
        body.update(fields)
        answer = requests.post(f"{self.url}/_sandbox/bills", json=body, timeout=30)
        assert answer.status_code == 201, answer.text
        return answer.json()

    def change_bill(self, bill_id: int, **fields: Any) -> None:
        answer = requests.patch(f"{self.url}/_sandbox/bills/{bill_id}", json=fields, timeout=30)
        assert answer.status_code == 200, answer.text

    def seed(self, count: int) -> None:
        answer = requests.post(
            f"{self.url}/_sandbox/seed", json={"account": self.account, "count": count}, timeout=60
        )
        assert answer.status_code in (200, 201), answer.text

    def control(self, path: str, body: dict[str, Any]) -> None:
        answer = requests.post(
            f"{self.url}/_sandbox/{path}", json={"account": self.account, **body}, timeout=30
        )
        assert answer.status_code in (200, 201, 204), answer.text

    def stats(self) -> dict[str, Any]:
        return requests.get(
            f"{self.url}/_sandbox/stats", params={"account": self.account}, timeout=30
        ).json()


@pytest.fixture
def new_firm(local_stack: LocalStack):
    """A firm of its own, connected to a Clio account of its own (tests never share data)."""

    def make(bills: int = 0, payments: bool = True) -> tuple[Firm, ClioStaff]:
        name = f"e2e-{uuid.uuid4().hex[:10]}"
        firm, clio = Firm(local_stack, name), ClioStaff(local_stack, name)
        if bills:
            clio.seed(bills)
        answer = firm.connect_clio(name)
        assert answer.status_code == 302, answer.text
        if payments:  # trust and operating Stripe accounts, onboarded at once (the sandbox)
            onboarded = local_stack.control("POST", f"/_local/firms/{name}/payment-accounts")
            assert onboarded.status_code == 201, onboarded.text
        return firm, clio

    return make


class StripeSandbox:
    """The Stripe side: what a client does on the checkout page, what banks do later."""

    def __init__(self, stack: LocalStack) -> None:
        self.url = stack.stripe_url

    def control(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        answer = requests.post(f"{self.url}/_sandbox/{path}", json=body or {}, timeout=60)
        assert answer.status_code in (200, 201), answer.text
        result: dict[str, Any] = answer.json()
        return result

    def pay(
        self, session_id: str, method: str = "card", outcome: str = "succeeded"
    ) -> dict[str, Any]:
        return self.control(
            f"checkout_sessions/{session_id}/pay", {"method": method, "outcome": outcome}
        )

    def events(self) -> list[dict[str, Any]]:
        answer = requests.get(f"{self.url}/_sandbox/events", timeout=30)
        assert answer.status_code == 200, answer.text
        result: list[dict[str, Any]] = answer.json()
        return result

    def resend(self, event_id: str) -> int:
        return int(self.control(f"events/{event_id}/resend")["status"])


@pytest.fixture
def stripe_sandbox(local_stack: LocalStack) -> StripeSandbox:
    return StripeSandbox(local_stack)
