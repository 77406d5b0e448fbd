"""Test functions for the local Lambda runtime (tests/integration/test_runtime.py), run in worker
processes. `event["do"]` picks what the invocation does."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

# Module state, as a Powertools resolver keeps its current event: shared by every request a
# process serves at once, so only isolation keeps answers apart.
CURRENT: dict[str, Any] = {}
HELD: list[bytes] = []
# A slow init (a cold start on a busy machine): the import takes this long.
time.sleep(float(os.environ.get("INIT_SLEEP", "0")))


def lambda_handler(event: dict[str, Any], context: Any) -> Any:
    do = event.get("do", "echo")
    if do == "echo":
        CURRENT["event"] = event
        time.sleep(float(event.get("sleep", 0)))
        return {
            "echo": CURRENT["event"].get("id"),
            "pid": os.getpid(),
            "function": context.function_name,
            "memory": context.memory_limit_in_mb,
            "env": os.environ.get(str(event.get("env", "")), None),
            "remaining_ms": context.get_remaining_time_in_millis(),
        }
    if do == "sleep":
        time.sleep(float(event["seconds"]))
        return {"slept": event["seconds"]}
    if do == "crash":
        sys.stdout.flush()
        os._exit(3)
    if do == "hog":
        HELD.append(b"\x01" * (int(event["mb"]) * 1024 * 1024))  # touched, so resident
        time.sleep(float(event.get("hold", 2)))
        return {"held": len(HELD)}
    if do == "raise":
        raise LookupError("no such thing")
    if do == "noisy":
        # Output that would break a protocol sharing stdout: a length prefix, JSON, binary.
        sys.stdout.write('\x00\x00\x00\x10{"type":"result"}\n')
        print("a line on stdout", flush=True)
        print("a line on stderr", file=sys.stderr, flush=True)
        return {"quiet": True}
    if do == "unserialisable":
        return {"when": object()}
    raise ValueError(f"unknown do {do!r}")
