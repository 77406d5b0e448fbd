"""Outgoing webhook traffic of the Clio sandbox: the `X-Hook-Secret` handshake and signed bill
deliveries, each POSTed from its own background thread after a short delay, as Clio does it
asynchronously after the change that caused it.

Clio counts 2xx and 3xx answers as delivered, disables a webhook that answers 410, and retries
anything else with exponential backoff (2 minutes base in production; a fraction of a second
here so tests stay fast). Every attempt is recorded in the state for `/_sandbox/webhook_deliveries`.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any

from local.clio_sandbox.state import OutgoingHook, SandboxState


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A 3xx answer already counts as delivered; following it would POST somewhere else.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect())
# Each delivery runs on a thread of its own: the duration of its last POST, per thread.
_ELAPSED = threading.local()


def sign(shared_secret: str, body: bytes) -> str:
    return hmac.new(shared_secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookDispatcher:
    def __init__(
        self,
        state: SandboxState,
        *,
        delay_seconds: float = 0.05,
        tries: int = 3,
        backoff_seconds: float = 0.2,
        timeout_seconds: float = 5.0,
    ) -> None:
        self.state = state
        self.delay_seconds = delay_seconds
        self.tries = tries
        self.backoff_seconds = backoff_seconds
        self.timeout_seconds = timeout_seconds
        self._threads: list[threading.Thread] = []
        self._threads_lock = threading.Lock()

    def __call__(self, pending: list[OutgoingHook]) -> None:
        for item in pending:
            thread = threading.Thread(
                target=self._run,
                args=(item,),
                name=f"clio-sandbox-hook-{item.webhook_id}",
                daemon=True,
            )
            with self._threads_lock:
                self._threads = [t for t in self._threads if t.is_alive()]
                self._threads.append(thread)
            thread.start()

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait for every delivery started so far to finish (tests use this)."""
        deadline = time.monotonic() + timeout
        with self._threads_lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in threads)

    def _run(self, item: OutgoingHook) -> None:
        time.sleep(self.delay_seconds)
        if item.kind == "handshake":
            self._handshake(item)
        else:
            self._deliver(item)

    def _post(
        self, item: OutgoingHook, headers: dict[str, str]
    ) -> tuple[int | None, str | None, Any]:
        request = urllib.request.Request(
            item.url,
            data=item.body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "clio-sandbox", **headers},
        )
        started = time.monotonic()
        try:
            with _OPENER.open(request, timeout=self.timeout_seconds) as response:
                return response.status, None, response.headers
        except urllib.error.HTTPError as exc:
            return exc.code, None, exc.headers
        except (OSError, ValueError) as exc:
            return None, f"{type(exc).__name__}: {exc}", None
        finally:
            # How long the receiver took to answer, for the attempt's record (make load).
            _ELAPSED.ms = round((time.monotonic() - started) * 1000, 1)

    def _record(
        self,
        item: OutgoingHook,
        attempt: int,
        status: int | None,
        error: str | None,
        outcome: str,
        signature: str | None = None,
    ) -> None:
        self.state.record_delivery(
            {
                "kind": item.kind,
                "account": item.account,
                "webhook_id": item.webhook_id,
                "url": item.url,
                "event": item.event,
                "bill_id": item.bill_id,
                "attempt": attempt,
                "status": status,
                "error": error,
                "outcome": outcome,
                "signature": signature,
                "body": item.body.decode(),
                "at": datetime.now(UTC).isoformat(),
                "duration_ms": getattr(_ELAPSED, "ms", None),
            }
        )

    def _handshake(self, item: OutgoingHook) -> None:
        status, error, headers = self._post(item, {"X-Hook-Secret": item.shared_secret})
        echoed = headers.get("X-Hook-Secret") if headers is not None else None
        ok = status is not None and 200 <= status < 300 and echoed == item.shared_secret
        if ok:
            self.state.set_webhook_status(item.webhook_id, "enabled")
        # Clio leaves the webhook pending on a failed handshake; the app may still activate it.
        self._record(item, 1, status, error, "enabled" if ok else "pending")

    def _deliver(self, item: OutgoingHook) -> None:
        signature = sign(item.shared_secret, item.body)
        wait = self.backoff_seconds
        for attempt in range(1, self.tries + 1):
            status, error, _ = self._post(item, {"X-Hook-Signature": signature})
            if status == 410:
                self.state.set_webhook_status(item.webhook_id, "suspended")
                self._record(item, attempt, status, error, "suspended", signature)
                return
            if status is not None and 200 <= status < 400:
                self._record(item, attempt, status, error, "delivered", signature)
                return
            last = attempt == self.tries
            self._record(item, attempt, status, error, "gave_up" if last else "retrying", signature)
            if not last:
                time.sleep(wait)
                wait *= 2
