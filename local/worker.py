"""One Lambda "container" of the local stack: `python -m local.worker --fd N`, started by
`local.pool` with the function's environment.

Like Lambda's Python runtime it puts the function's code (`LAMBDA_TASK_ROOT`) and its layers on
`sys.path`, imports `_HANDLER` once (the init phase), then serves one invocation at a time for
as long as it lives. Invocations arrive on the socket `--fd` as length-prefixed JSON, and their
results leave the same way; stdout and stderr stay free for the function's own logs, which the
pool copies into the stack's log. Standard library only: a worker imports nothing of the local
stack (no moto), only what the function itself imports.

It ignores SIGINT (Ctrl-C in a terminal reaches the whole process group: the stack ends its
workers itself) and exits when its socket closes or its parent is gone.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from typing import Any

HEADER = struct.Struct(">I")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def send_message(sock: socket.socket, message: dict[str, Any]) -> None:
    data = json.dumps(message, separators=(",", ":")).encode()
    sock.sendall(HEADER.pack(len(data)) + data)


def recv_exactly(sock: socket.socket, size: int) -> bytes | None:
    chunks = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def recv_message(sock: socket.socket) -> dict[str, Any] | None:
    header = recv_exactly(sock, HEADER.size)
    if header is None:
        return None
    body = recv_exactly(sock, HEADER.unpack(header)[0])
    if body is None:
        return None
    message: dict[str, Any] = json.loads(body)
    return message


def rss_bytes(pid: int | str = "self") -> int | None:
    """Resident memory of a process (Linux /proc); None where it cannot be read."""
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return None


class LambdaContext:
    """The context object Lambda hands a handler (the attributes Python's runtime sets)."""

    def __init__(
        self,
        *,
        function_name: str,
        memory_limit_in_mb: int,
        request_id: str,
        deadline: float,
        region: str,
        account: str,
    ) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account}:function:{function_name}"
        self.memory_limit_in_mb = memory_limit_in_mb
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self.identity = None
        self.client_context = None
        self._deadline = deadline  # time.time() seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


def _error(exc: BaseException, request_id: str) -> dict[str, Any]:
    """What Lambda's Python runtime answers for an exception the handler let out."""
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "requestId": request_id,
        "stackTrace": traceback.format_tb(exc.__traceback__),
    }


def _load_handler() -> Any:
    task_root = os.environ["LAMBDA_TASK_ROOT"]
    layers = [p for p in os.environ.get("LOCAL_LAYER_PATHS", "").split(os.pathsep) if p]
    # What Lambda's sys.path holds: the code, then the layers; never the stack's own folders.
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    rest = [p for p in sys.path if p not in ("", here) and os.path.abspath(p or ".") != here]
    sys.path[:] = [task_root, *layers, *rest]
    module_name, _, attr = os.environ["_HANDLER"].rpartition(".")
    module = importlib.import_module(module_name)
    return getattr(module, attr)


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(1)  # the stack is gone: a container without its host


def serve(sock: socket.socket) -> int:
    function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "local")
    memory = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
    region = os.environ.get("AWS_REGION", "us-east-1")
    account = os.environ.get("LOCAL_ACCOUNT_ID", "123456789012")
    started = time.monotonic()
    try:
        handler = _load_handler()
    except Exception as exc:  # reported as Lambda reports a failed init, then the worker ends
        kind = "Runtime.ImportModuleError" if isinstance(exc, ImportError) else "Runtime.Unknown"
        if isinstance(exc, AttributeError):
            kind = "Runtime.HandlerNotFound"
        traceback.print_exc()
        send_message(sock, {"type": "init_error", "errorType": kind, "errorMessage": str(exc)})
        return 1
    send_message(
        sock,
        {"type": "ready", "init_ms": int((time.monotonic() - started) * 1000), "rss": rss_bytes()},
    )
    while True:
        request = recv_message(sock)
        if request is None:
            return 0
        request_id = str(request["id"])
        context = LambdaContext(
            function_name=function_name,
            memory_limit_in_mb=memory,
            request_id=request_id,
            deadline=float(request["deadline"]),
            region=region,
            account=account,
        )
        reply: dict[str, Any] = {"type": "result", "id": request_id}
        try:
            result = handler(request["event"], context)
        except Exception as exc:
            reply["error"] = _error(exc, request_id)
            print(
                f"[ERROR] {type(exc).__name__}: {exc}\n{traceback.format_exc()}",
                file=sys.stderr,
                flush=True,
            )
        else:
            try:
                reply["payload"] = json.dumps(result)
            except (TypeError, ValueError) as exc:  # as Lambda's runtime refuses it
                reply["error"] = {
                    "errorMessage": f"Unable to marshal response: {exc}",
                    "errorType": "Runtime.MarshalError",
                    "requestId": request_id,
                    "stackTrace": [],
                }
        sys.stdout.flush()
        sys.stderr.flush()
        reply["rss"] = rss_bytes()
        send_message(sock, reply)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="one local Lambda worker")
    parser.add_argument("--fd", type=int, required=True)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    sock = socket.socket(fileno=args.fd)
    try:
        return serve(sock)
    except (BrokenPipeError, ConnectionResetError):
        return 0
    finally:
        sock.close()


if __name__ == "__main__":
    sys.exit(main())
