"""Fixtures and helpers shared by the Clio sandbox and Clio client tests: a started sandbox, the
OAuth dance against it, a recording `sleep`, and a tiny local webhook receiver.

Loaded by those test modules through `pytest_plugins` (so tests/conftest.py stays untouched),
which also import its helpers; being imported before pytest registers it as a plugin, it opts out
of assertion rewriting (PYTEST_DONT_REWRITE) rather than warn on every run.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from local.clio_sandbox import ClioSandbox

CLIENT_ID = "sandbox-client-id"
CLIENT_SECRET = "sandbox-client-secret"
REDIRECT_URI = "http://127.0.0.1:9/clio/callback"


@pytest.fixture
def clio_sandbox() -> Iterator[ClioSandbox]:
    sandbox = ClioSandbox(port=0, webhook_delay_seconds=0.01, webhook_backoff_seconds=0.05)
    sandbox.start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


def authorize_code(sandbox: ClioSandbox, account: str, state: str = "st-1") -> str:
    """Walk the authorize page as a browser would and take the code off the redirect."""
    answer = requests.get(
        f"{sandbox.url}/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": REDIRECT_URI,
            "state": state,
            "sandbox_account": account,
        },
        allow_redirects=False,
        timeout=5,
    )
    assert answer.status_code == 302, answer.text
    location = answer.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?")
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == [state]
    return query["code"][0]


def token_answer(sandbox: ClioSandbox, account: str) -> dict[str, Any]:
    answer = requests.post(
        f"{sandbox.url}/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": authorize_code(sandbox, account),
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_uri": REDIRECT_URI,
        },
        timeout=5,
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def api_session(sandbox: ClioSandbox, account: str) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token_answer(sandbox, account)['access_token']}"
    return session


def control(sandbox: ClioSandbox, method: str, path: str, body: Any = None) -> requests.Response:
    return requests.request(method, f"{sandbox.url}/_sandbox/{path}", json=body, timeout=10)


def make_bill(sandbox: ClioSandbox, account: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "account": account,
        "kind": "invoice",
        "total_cents": 123450,
        "state": "awaiting_payment",
        "client": {"name": "Acme Holdings LLC", "email": "billing@acme.example"},
        "matter": {"display_number": "00042-Acme", "description": "Contract dispute"},
    }
    body.update(overrides)
    answer = control(sandbox, "POST", "bills", body)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def wait_for(predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


@dataclass
class RecordingSleep:
    """An injected `sleep` that records each wait; `real` makes it actually sleep too."""

    real: bool = False
    waits: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        if self.real:
            time.sleep(seconds)


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class WebhookReceiver:
    """A local HTTP endpoint standing in for our webhook handler. It echoes `X-Hook-Secret` on
    handshakes when `echo_secret`, and answers deliveries with the statuses queued in
    `statuses` (then 200)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.echo_secret = True
        self.statuses: list[int] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.received.append(Received(dict(self.headers.items()), body))
                    secret = self.headers.get("X-Hook-Secret")
                    status = 200
                    if secret is None and receiver.statuses:
                        status = receiver.statuses.pop(0)
                self.send_response(status)
                if secret is not None and receiver.echo_secret:
                    self.send_header("X-Hook-Secret", secret)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/webhooks/clio"

    def deliveries(self) -> list[Received]:
        with self._lock:
            return [r for r in self.received if "X-Hook-Signature" in r.headers]

    def handshakes(self) -> list[Received]:
        with self._lock:
            return [r for r in self.received if "X-Hook-Secret" in r.headers]

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()
