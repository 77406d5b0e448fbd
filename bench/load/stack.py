"""The local stack for a load run: `python -m local.stack` in a subprocess on free loopback
ports with its state in a temporary folder, and the resident memory of its process tree."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"


@dataclass(frozen=True)
class StackUrls:
    api: str
    clio: str
    stripe: str
    aws: str
    pid: int | None = None  # the stack's process, whose tree's memory is measured
    admin_token: str | None = None  # the local controls' token (/_local/...)
    state_dir: str | None = None  # where the stack keeps its state (the data it holds)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@contextmanager
def local_stack(log: Path) -> Iterator[StackUrls]:
    """`python -m local.stack` on free loopback ports with its state in a temporary folder,
    stopped (SIGTERM, then SIGKILL) on the way out."""
    ports = {name: _free_port() for name in ("API", "CLIO", "STRIPE", "AWS")}
    admin_token = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="billbridge-load-") as state:
        env = {
            **os.environ,
            "API_PORT": str(ports["API"]),
            "CLIO_SANDBOX_PORT": str(ports["CLIO"]),
            "STRIPE_SANDBOX_PORT": str(ports["STRIPE"]),
            "AWS_EMULATOR_PORT": str(ports["AWS"]),
            "PYTHONUNBUFFERED": "1",
            # A fresh stack whose kept state lives and dies with this run.
            "LOCAL_STATE_DIR": state,
            "LOCAL_ADMIN_TOKEN": admin_token,
        }
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "local.stack", "--no-seed"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + 120
            while "local stack is up" not in log.read_text(errors="replace"):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the local stack did not start:\n{_tail(log)}")
                time.sleep(0.2)
            yield StackUrls(
                api=f"http://{HOST}:{ports['API']}",
                clio=f"http://{HOST}:{ports['CLIO']}",
                stripe=f"http://{HOST}:{ports['STRIPE']}",
                aws=f"http://{HOST}:{ports['AWS']}",
                pid=process.pid,
                admin_token=admin_token,
                state_dir=state,
            )
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants (a supervisor and its workers)."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total / (1024 * 1024)
