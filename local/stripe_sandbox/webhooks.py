"""Outgoing Stripe webhooks: the `Stripe-Signature` header and one synchronous POST per attempt.

Stripe signs `"<t>.<raw body>"` with HMAC-SHA256 keyed by the endpoint's `whsec_` secret and
sends `t=<unix>,v1=<hex>`. Connect events (about a connected account: `account.updated`) go to
the Connect endpoint, with its own secret, as a Stripe Connect webhook endpoint has. The body
is the event's stored bytes; each attempt (first delivery or resend) signs them afresh with
the current time. Every attempt is recorded on the event.
Redirects are not followed (Stripe counts a 3xx as a failure and does not follow it).
"""

from __future__ import annotations

import hashlib
import hmac
import queue
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from local.stripe_sandbox.params import Obj
from local.stripe_sandbox.state import Event, SandboxState

USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
TIMEOUT_SECONDS = 10.0


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect())


def signature_header(secret: str, body: bytes, timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class Deliverer:
    """Synchronous delivery for controls and the checkout page (they answer once the events
    are delivered); a single worker thread, in order, for events an API call caused, which go
    out after the API answer (a caller's keep-alive connection is never held by a delivery)."""

    def __init__(self, state: SandboxState, timeout: float = TIMEOUT_SECONDS) -> None:
        self.state = state
        self.timeout = timeout
        self._pending = 0
        self._idle = threading.Condition()
        self._queue: queue.Queue[list[Event]] = queue.Queue()
        self._worker: threading.Thread | None = None

    def endpoint(self, event: Event) -> tuple[str | None, str]:
        """Where an event goes and the secret that signs it: Connect events (those about a
        connected account, with a top-level `account`) to the Connect endpoint."""
        state = self.state
        if event.connect:
            url = state.connect_webhook_url or state.webhook_url
            return url, state.connect_webhook_secret or state.webhook_secret
        return state.webhook_url, state.webhook_secret

    def deliver_new(self, events: list[Event]) -> None:
        """Send freshly created events in order, unless delivery is paused or no URL is set."""
        for event in events:
            if not self.state.paused and self.endpoint(event)[0] is not None:
                self.send(event)

    def expect(self) -> None:
        """One more batch is on its way to deliver_later (see the server's answer path)."""
        with self._idle:
            self._pending += 1

    def deliver_later(self, events: list[Event]) -> None:
        """Queue a batch announced by expect() for the worker."""
        with self._idle:
            if self._worker is None:
                self._worker = threading.Thread(
                    target=self._work, name="stripe-sandbox-webhooks", daemon=True
                )
                self._worker.start()
        self._queue.put(events)

    def _work(self) -> None:
        while True:
            events = self._queue.get()
            try:
                self.deliver_new(events)
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def wait_idle(self, timeout: float = 15.0) -> bool:
        """Wait until the events of API calls made so far have been delivered."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def send(self, event: Event) -> Obj:
        """POST the event's stored bytes once to the current webhook URL; record the attempt."""
        url, secret = self.endpoint(event)
        record: Obj = {"url": url, "attempted_at": time.time(), "status": None, "error": None}
        if url is None:
            record["error"] = "no webhook_url is set"
            return record
        header = signature_header(secret, event.body, int(time.time()))
        request = urllib.request.Request(
            url,
            data=event.body,
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": USER_AGENT,
                "Stripe-Signature": header,
                "Accept": "*/*; q=0.5, application/xml",
                "Cache-Control": "no-cache",
            },
        )
        started = time.monotonic()
        try:
            with _OPENER.open(request, timeout=self.timeout) as response:
                record["status"] = response.status
        except urllib.error.HTTPError as exc:
            record["status"] = exc.code
            exc.close()
        except (OSError, ValueError) as exc:
            record["error"] = f"{type(exc).__name__}: {exc}"
        record["duration_ms"] = round((time.monotonic() - started) * 1000, 1)
        record["signature"] = header
        with self.state.lock:
            event.deliveries.append(record)
        return record
