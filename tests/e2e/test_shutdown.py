"""Ctrl-C (SIGINT) and SIGTERM end the local stack and every process it started, under load:
requests in flight, keep-alive connections open, a sync and a send workflow running.

The waits are bounded (the stack promises a few seconds; the test allows more before calling it
a hang); nothing here times how fast it stops."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.conftest import LocalStack, start_stack

pytestmark = pytest.mark.e2e

# Well past the stack's own stop deadline: beyond it, the stack hangs.
EXIT_WAIT_SECONDS = 30


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"  # a zombie has ended; only its parent's wait() is missing


def load(stack: LocalStack, stop: threading.Event) -> None:
    """A client hammering the stack over one keep-alive connection until told to stop."""
    session = requests.Session()
    session.headers["Authorization"] = "Bearer dev-demo"
    paths = ["/invoices?page_size=200", "/settings", "/pay/not-a-token", "/reconciliation"]
    n = 0
    while not stop.is_set():
        try:
            session.get(f"{stack.api_url}{paths[n % len(paths)]}", timeout=10)
            if n % 7 == 0:
                session.post(f"{stack.api_url}/sync", timeout=10)
        except requests.RequestException:
            pass  # the stack is going away: what the test checks is that it goes
        n += 1


def start_a_send(stack: LocalStack) -> None:
    demo = requests.Session()
    demo.headers["Authorization"] = "Bearer dev-demo"
    bills = demo.get(
        f"{stack.api_url}/invoices", params={"states": "awaiting_payment"}, timeout=60
    ).json()["items"]
    ids = [b["id"] for b in bills if b["client"]["email"]][:5]
    if ids:
        batch = demo.post(f"{stack.api_url}/envelopes", json={"bill_ids": ids}, timeout=60)
        if batch.status_code == 201:
            demo.post(f"{stack.api_url}/batches/{batch.json()['batch_id']}/send", timeout=60)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_given_the_stack_under_load_when_signalled_then_every_process_it_started_ends(
    tmp_path: Path, signum: int
) -> None:
    stack = start_stack(tmp_path / "state", tmp_path / "stack.log")
    stop = threading.Event()
    tree: set[int] = set()
    clients = [threading.Thread(target=load, args=(stack, stop), daemon=True) for _ in range(8)]
    try:
        for client in clients:
            client.start()
        start_a_send(stack)
        time.sleep(3)  # requests in flight, workers busy
        health: dict[str, Any] = requests.get(f"{stack.api_url}/_local/health", timeout=30).json()
        tree = descendants(stack.process.pid) | set(health["worker_pids"])
        assert health["worker_pids"] and set(health["worker_pids"]) <= tree

        stack.process.send_signal(signum)
        try:
            stack.process.wait(timeout=EXIT_WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the stack did not stop:\n{stack.log_tail()}")

        deadline = time.monotonic() + 10
        while [pid for pid in tree if running(pid)] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [pid for pid in tree if running(pid)] == [], stack.log_tail()
        assert stack.process.returncode == 0, stack.log_tail()
    finally:
        stop.set()
        if stack.process.poll() is None:
            stack.process.kill()
            stack.process.wait(timeout=10)
        for pid in tree:  # what a failed stop left behind, and only that
            if running(pid) and b"local." in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, signal.SIGKILL)
