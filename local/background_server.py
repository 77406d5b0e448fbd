"""The lifecycle the local sandboxes share: an HTTP server on a real socket, served from a
background thread (tests, the local stack) or in the calling thread (`python -m`)."""

from __future__ import annotations

import sys
import threading
from http.server import ThreadingHTTPServer


class BackgroundServer:
    """Subclasses bind their server in `_bind()` (and keep it in `_server`)."""

    thread_name = "sandbox"

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError(f"the {self.thread_name} is not started")
        return f"http://{self.host}:{self._server.server_address[1]}"

    def _bind(self) -> ThreadingHTTPServer:
        raise NotImplementedError

    def _serve_in_background(self) -> None:
        server = self._bind()
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=self.thread_name,
            daemon=True,
        )
        self._thread.start()

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (the `python -m` entry point)."""
        server = self._bind()
        try:
            server.serve_forever(poll_interval=0.5)
        finally:
            server.server_close()

    def run_until_interrupted(self, name: str) -> int:
        """The `python -m` entry point: say where, serve until Ctrl-C."""
        print(f"{name} on http://{self.host}:{self.port}", file=sys.stderr, flush=True)
        try:
            self.serve_forever()
        except KeyboardInterrupt:
            pass
        return 0

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __exit__(self, *exc: object) -> None:
        self.stop()
