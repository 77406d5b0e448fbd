"""The Stripe sandbox's HTTP face: a stdlib threading server routing `/v1` to the API, `/c/pay`
to the checkout page, `/setup/s` to the Connect onboarding and `/_sandbox` to the test
controls, and `StripeSandbox`, which owns the server thread, the state and the webhook
deliverer.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from local.background_server import BackgroundServer
from local.stripe_sandbox import controls
from local.stripe_sandbox.api import handle_api
from local.stripe_sandbox.params import ControlError
from local.stripe_sandbox.state import SandboxState
from local.stripe_sandbox.webhooks import Deliverer
from local.stripe_sandbox.wire import Request, Response, json_response

MAX_BODY_BYTES = 1_000_000


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True
    server_version = "StripeSandbox/1.0"
    sandbox: StripeSandbox  # set on the subclass made per sandbox

    def log_message(self, format: str, *args: Any) -> None:
        if self.sandbox.verbose:
            super().log_message(format, *args)

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self.close_connection = True  # the unread body would be taken for the next request
            self._send(json_response(413, {"error": "body too large"}))
            return
        body = self.rfile.read(length) if length else b""
        req = Request(self.command, self.path, self.headers, body)
        try:
            response = self.sandbox.handle(req)
        except ControlError as exc:
            response = json_response(exc.status, {"error": str(exc)})
        except Exception as exc:  # a sandbox bug must answer, not hang the client
            error = {"type": "api_error", "message": f"sandbox bug: {exc!r}"}
            response = json_response(500, {"error": error})
        if not response.deliver_after:
            self._send(response)
            return
        # Counted as pending before the answer leaves, so a caller's wait_idle() right after
        # the answer cannot see "idle" before these events are queued.
        self.sandbox.deliverer.expect()
        try:
            self._send(response)
        finally:
            self.sandbox.deliverer.deliver_later(response.deliver_after)

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.content_type and response.body:
            self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if response.body:
            self.wfile.write(response.body)
        self.wfile.flush()

    do_GET = do_POST = do_DELETE = _dispatch


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's backlog of 5 overflows under the load test's bursts of new connections.
    request_queue_size = socket.SOMAXCONN
    block_on_close = False


class StripeSandbox(BackgroundServer):
    """A stand-in for the few Stripe API endpoints the project calls, on a real socket."""

    thread_name = "stripe-sandbox"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str = "sk_test_sandbox",
        webhook_url: str | None = None,
        webhook_secret: str = "whsec_sandbox",
        *,
        public_url: str | None = None,
        verbose: bool = False,
        clock: Callable[[], float] = time.time,
        connect_webhook_url: str | None = None,
        connect_webhook_secret: str = "",
    ) -> None:
        super().__init__(host, port)
        self.api_key = api_key
        self.verbose = verbose
        self._public_url = public_url.rstrip("/") if public_url else None
        # Its `created` times and sessions' expiry (the local stack's clock, local/clock.py).
        self.state = SandboxState(clock=clock)
        self.state.webhook_url = webhook_url
        self.state.webhook_secret = webhook_secret
        self.state.connect_webhook_url = connect_webhook_url
        self.state.connect_webhook_secret = connect_webhook_secret
        self.deliverer = Deliverer(self.state)

    @property
    def webhook_url(self) -> str | None:
        return self.state.webhook_url

    @webhook_url.setter
    def webhook_url(self, value: str | None) -> None:
        self.state.webhook_url = value

    @property
    def webhook_secret(self) -> str:
        return self.state.webhook_secret

    @webhook_secret.setter
    def webhook_secret(self, value: str) -> None:
        self.state.webhook_secret = value

    def handle(self, req: Request) -> Response:
        if req.path.startswith("/v1/") or req.path == "/v1":
            return handle_api(self, req)
        known = False
        for method, pattern, route in controls.ROUTES:
            match = pattern.fullmatch(req.path)
            if match is None:
                continue
            known = True
            if method == req.method:
                return route(self, req, match)
        if known:
            return json_response(405, {"error": f"{req.method} not allowed on {req.path}"})
        return json_response(404, {"error": f"no route {req.path}"})

    def wait_idle(self, timeout: float = 15.0) -> bool:
        """Wait until webhooks caused by API calls so far have been delivered (controls and the
        checkout page deliver before they answer; API calls deliver just after)."""
        return self.deliverer.wait_idle(timeout)

    def _bind(self) -> _Server:
        handler = type("Handler", (_Handler,), {"sandbox": self})
        server = _Server((self.host, self.port), handler)
        self._server = server
        self.state.base_url = self._public_url or self.url
        return server

    def start(self) -> None:
        """Serve in a background thread; `url` is the API base for stripe-python."""
        self._serve_in_background()

    def __enter__(self) -> StripeSandbox:
        self.start()
        return self
