"""Lambda's execution model on one machine: worker processes per function (`local.worker`),
each one "container" serving one invocation at a time.

- **Isolation.** Each function has its own workers, each a process of its own with the
  function's environment, importing the handler from its CodeUri as Lambda does and reaching
  the AWS emulator over HTTP (`AWS_ENDPOINT_URL`). Nothing a handler keeps in module state (a
  Powertools resolver's current event, caches, clients) is shared with another request.
- **Concurrency.** Concurrent invocations of one function get separate workers, up to the
  function's concurrency: its `ReservedConcurrentExecutions`, else `LOCAL_LAMBDA_CONCURRENCY`.
  Beyond it an invocation waits for a free worker (Lambda would throttle it instead; see
  docs/local-stack.md). Workers start on demand (a cold start) and the warmest idle one is
  reused first; a cold start runs beside the invocation that caused it, which takes the first
  worker free (the new one, or a warm one that finished sooner).
- **Recycling.** A worker is retired after `LOCAL_LAMBDA_MAX_INVOCATIONS` invocations and
  after `LOCAL_LAMBDA_IDLE_SECONDS` idle. One whose resident memory passes the function's
  MemorySize is killed mid-invocation, which fails as Lambda's `Runtime.OutOfMemory`.
- **Failures.** A worker that dies fails its invocation as `Runtime.ExitError` and is replaced
  by the next invocation; one past the function's Timeout is killed and its invocation fails
  as Lambda's "Task timed out" (`Sandbox.Timedout`). Each is logged to the stack's log, where
  every worker's stdout and stderr go too, line by line, prefixed with the function's name.
"""

from __future__ import annotations

import json
import os
import queue
import select
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from local.lambda_specs import ROOT, FunctionSpec
from local.worker import HEADER, recv_exactly, rss_bytes, send_message

DEFAULT_CONCURRENCY = 4
DEFAULT_MAX_INVOCATIONS = 1000
DEFAULT_IDLE_SECONDS = 300.0
# Lambda allows 10 s for a function's init; a laptop's cold Python on two busy cores needs more.
DEFAULT_INIT_SECONDS = 60.0
# How many workers may be in their init at once, across every function: an init is a second
# or more of one core's CPU, and ten at once on two cores (make load's first half minute) left
# every warm worker and the stack's own process a small share of the machine.
DEFAULT_PARALLEL_INITS = max(
    1,
    len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1),
)
WATCH_INTERVAL = 0.25  # how often a running invocation's deadline and memory are checked
STOP_GRACE_SECONDS = 1.0
# Lambda's error for an invocation beyond the function's concurrency.
THROTTLED = "TooManyRequestsException"
# What a worker inherits from the stack's environment besides the function's own variables.
INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "SYSTEMROOT")


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw else default


@dataclass(frozen=True)
class PoolSettings:
    concurrency: int = DEFAULT_CONCURRENCY
    max_invocations: int = DEFAULT_MAX_INVOCATIONS
    idle_seconds: float = DEFAULT_IDLE_SECONDS
    init_seconds: float = DEFAULT_INIT_SECONDS
    parallel_inits: int = DEFAULT_PARALLEL_INITS

    @classmethod
    def from_env(cls) -> PoolSettings:
        return cls(
            concurrency=int(_env_number("LOCAL_LAMBDA_CONCURRENCY", DEFAULT_CONCURRENCY)),
            max_invocations=int(
                _env_number("LOCAL_LAMBDA_MAX_INVOCATIONS", DEFAULT_MAX_INVOCATIONS)
            ),
            idle_seconds=_env_number("LOCAL_LAMBDA_IDLE_SECONDS", DEFAULT_IDLE_SECONDS),
            init_seconds=_env_number("LOCAL_LAMBDA_INIT_SECONDS", DEFAULT_INIT_SECONDS),
            parallel_inits=int(_env_number("LOCAL_LAMBDA_PARALLEL_INITS", DEFAULT_PARALLEL_INITS)),
        )


@dataclass(frozen=True)
class Outcome:
    """One invocation's answer: the payload Lambda returns (the result's JSON, or the error
    object), and the error type when the invocation failed."""

    payload: str
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None

    @classmethod
    def failure(cls, kind: str, message: str, request_id: str) -> Outcome:
        body = {"errorMessage": f"RequestId: {request_id} Error: {message}", "errorType": kind}
        return cls(json.dumps(body), kind)


class PoolClosed(RuntimeError):
    """The stack is stopping: no more invocations."""


def log(message: str) -> None:
    sys.stderr.write(f"[lambda] {message}\n")
    sys.stderr.flush()


def worker_environment(
    spec: FunctionSpec, function_env: Mapping[str, str], base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """A worker's environment: the function's variables and the ones Lambda itself sets."""
    base = os.environ if base is None else base
    env = {name: base[name] for name in INHERITED_ENV if name in base}
    env.update(function_env)
    env.update(
        {
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": "local",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
            "LAMBDA_TASK_ROOT": str(spec.code_dir),
            "_HANDLER": spec.handler,
            "LOCAL_LAYER_PATHS": os.pathsep.join(str(p) for p in spec.layer_dirs),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


class Worker:
    """One worker process and its end of the socket."""

    def __init__(self, spec: FunctionSpec, env: Mapping[str, str], init_seconds: float) -> None:
        self.spec = spec
        self.invocations = 0
        self.rss: int | None = None
        self.started_at = time.monotonic()
        self.last_used = self.started_at
        self._init_seconds = init_seconds
        self._ready = False
        self._init_error: tuple[str, str] | None = None
        self.init_ms = 0  # how long its cold start took, once it is ready
        ours, theirs = socket.socketpair()
        self._sock = ours
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "local.worker", "--fd", str(theirs.fileno())],
                cwd=ROOT,
                env=dict(env),
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.pid = self.process.pid
        assert self.process.stdout is not None
        threading.Thread(
            target=_copy_log,
            args=(self.process.stdout, f"[{spec.logical_id} {self.pid}] "),
            name=f"log-{spec.logical_id}-{self.pid}",
            daemon=True,
        ).start()

    @property
    def alive(self) -> bool:
        return self.process.poll() is None and self._init_error is None

    def invoke(self, event: Any, request_id: str, closed: threading.Event) -> Outcome:
        """Run one invocation; on a timeout, a crash or memory past the limit the worker is
        killed and the outcome says so, as Lambda reports it."""
        self.invocations += 1
        self.last_used = time.monotonic()
        if not self._ready:
            failed = self.start_up(closed)
            if failed is not None:
                return Outcome.failure(failed[0], failed[1], request_id)
        deadline = time.time() + self.spec.timeout
        try:
            send_message(self._sock, {"id": request_id, "event": event, "deadline": deadline})
        except OSError:
            return self._crashed(request_id)
        reply = self._receive(deadline, request_id, closed, enforce_limits=True)
        self.last_used = time.monotonic()
        if isinstance(reply, Outcome):
            return reply
        self.rss = reply.get("rss")
        if "error" in reply:
            error = reply["error"]
            return Outcome(json.dumps(error), str(error.get("errorType") or "Unhandled"))
        return Outcome(str(reply["payload"]))

    def start_up(self, closed: threading.Event) -> tuple[str, str] | None:
        """Wait for the worker's init (its handler imported): None when it is ready, else the
        failure as Lambda names it (error type, message); a failed worker is killed."""
        reply = self._receive(
            time.time() + self._init_seconds, "init", closed, enforce_limits=False
        )
        if isinstance(reply, Outcome):
            message = json.loads(reply.payload)["errorMessage"].split(" Error: ", 1)[-1]
            return str(reply.error), message
        if reply.get("type") == "init_error":
            self._init_error = (str(reply["errorType"]), str(reply["errorMessage"]))
            log(f"{self.spec.name}: init failed in worker {self.pid}: {reply['errorMessage']}")
            self.kill()
            return self._init_error
        self._ready = True
        self.rss = reply.get("rss")
        # From the process's start (the interpreter too, as Lambda's Init Duration counts it).
        self.init_ms = int((time.monotonic() - self.started_at) * 1000)
        return None

    def _receive(
        self, deadline: float, request_id: str, closed: threading.Event, *, enforce_limits: bool
    ) -> dict[str, Any] | Outcome:
        limit = self.spec.memory_mb * 1024 * 1024
        while True:
            if closed.is_set():
                self.kill()
                return Outcome.failure(
                    "Runtime.Shutdown", "the local stack is stopping", request_id
                )
            remaining = deadline - time.time()
            if remaining <= 0:
                self.kill()
                if not enforce_limits:
                    log(f"{self.spec.name}: worker {self.pid} did not finish its init in time")
                    return Outcome.failure(
                        "Runtime.InitTimeout", "the function's init timed out", request_id
                    )
                log(f"{self.spec.name}: task timed out after {self.spec.timeout} s, killed")
                return Outcome.failure(
                    "Sandbox.Timedout",
                    f"Task timed out after {self.spec.timeout:.2f} seconds",
                    request_id,
                )
            readable, _, _ = select.select([self._sock], [], [], min(WATCH_INTERVAL, remaining))
            if readable:
                message = self._read()
                if message is None:
                    if closed.is_set():
                        continue  # killed by the stack's stop, reported as such above
                    return self._crashed(request_id)
                return message
            if enforce_limits:
                rss = rss_bytes(self.pid)
                if rss is not None and rss > limit:
                    self.kill()
                    log(
                        f"{self.spec.name}: worker {self.pid} used {rss // 2**20} MB, past its "
                        f"MemorySize of {self.spec.memory_mb} MB: killed"
                    )
                    return Outcome.failure(
                        "Runtime.OutOfMemory",
                        "Runtime exited with error: signal: killed",
                        request_id,
                    )

    def _read(self) -> dict[str, Any] | None:
        try:
            header = recv_exactly(self._sock, HEADER.size)
            if header is None:
                return None
            body = recv_exactly(self._sock, HEADER.unpack(header)[0])
        except OSError:
            return None
        if body is None:
            return None
        message: dict[str, Any] = json.loads(body)
        return message

    def _crashed(self, request_id: str) -> Outcome:
        try:
            code = self.process.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.process.returncode
        how = f"signal: {-code}" if code is not None and code < 0 else f"exit status {code}"
        log(f"{self.spec.name}: worker {self.pid} exited mid-invocation ({how}); replaced")
        return Outcome.failure("Runtime.ExitError", f"Runtime exited with error: {how}", request_id)

    def kill_process(self) -> None:
        if self.process.poll() is None:
            self.process.kill()

    def kill(self) -> None:
        self._close_socket()
        self.kill_process()
        try:
            self.process.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            pass

    def end(self) -> None:
        """Ask the worker to end without waiting: its socket closes, and SIGTERM."""
        self._close_socket()
        if self.process.poll() is None:
            self.process.terminate()

    def stop(self) -> None:
        """End the worker: its socket closes (it exits on its own), else SIGTERM, else SIGKILL."""
        self._close_socket()
        if self.process.poll() is None:
            try:
                self.process.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                self.process.terminate()
                try:
                    self.process.wait(timeout=STOP_GRACE_SECONDS)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=STOP_GRACE_SECONDS)

    def _close_socket(self) -> None:
        try:
            self._sock.close()
        except OSError:
            pass


def _copy_log(stream: IO[bytes], prefix: str) -> None:
    """A worker's stdout and stderr, line by line, into the stack's log."""
    with stream:
        for line in iter(stream.readline, b""):
            sys.stderr.write(prefix + line.decode("utf-8", "replace").rstrip("\n") + "\n")
            sys.stderr.flush()


@dataclass
class PoolStats:
    invocations: int = 0
    errors: int = 0
    timeouts: int = 0
    crashes: int = 0
    out_of_memory: int = 0
    cold_starts: int = 0
    recycled: int = 0
    by_error: dict[str, int] = field(default_factory=dict)
    # Cold starts: the longest, in ms from the process's start to its handler imported.
    cold_start_ms_max: int = 0
    # Invocations that found no idle worker and waited (for a worker to finish, or for a new
    # one's init), and the longest wait.
    waited: int = 0
    wait_ms_max: int = 0
    throttles: int = 0  # invocations refused: no worker free within their max_wait


class _Start:
    """One worker being started for an invocation that found none idle."""

    def __init__(self) -> None:
        self.done = False
        self.failure: tuple[str, str] | None = None


class FunctionPool:
    """The workers of one function."""

    def __init__(
        self,
        spec: FunctionSpec,
        env: Mapping[str, str],
        settings: PoolSettings,
        inits: threading.Semaphore | None = None,
    ) -> None:
        self.spec = spec
        self.env = dict(env)
        self.settings = settings
        # Shared by every pool of the stack: at most `parallel_inits` workers in their init.
        self._inits = inits or threading.BoundedSemaphore(max(1, settings.parallel_inits))
        self.concurrency = (
            spec.reserved_concurrency
            if spec.reserved_concurrency is not None
            else settings.concurrency
        )
        if self.concurrency < 1:
            raise ValueError(f"{spec.logical_id}: a concurrency of {self.concurrency} runs nothing")
        self.stats = PoolStats()
        self._cond = threading.Condition()
        self._idle: list[Worker] = []  # most recently used last
        self._busy: set[Worker] = set()
        self._starting = 0
        self._launching: set[Worker] = set()  # started, their init not done yet
        self._waiting = 0
        self._closed = threading.Event()
        # Lambda's provisioned concurrency: workers kept started and initialized, whether or
        # not anything invokes them (provision()).
        self.provisioned = 0

    def invoke(
        self, event: Any, request_id: str | None = None, *, max_wait: float | None = None
    ) -> Outcome:
        """One invocation on a worker of the function. `max_wait`: how long it may wait for a
        worker when every one is busy and the pool is at its concurrency; past it, it is
        throttled as Lambda throttles an invocation beyond the function's concurrency
        (`TooManyRequestsException`), without running."""
        request_id = request_id or str(uuid.uuid4())
        acquired = self._acquire(max_wait)
        if acquired is None:
            outcome = Outcome.failure(THROTTLED, "Rate Exceeded.", request_id)
            with self._cond:
                self.stats.throttles += 1
            log(
                f"{self.spec.name}: throttled: all {self.concurrency} workers busy for "
                f"{max_wait:g} s"
            )
            return outcome
        if not isinstance(acquired, Worker):  # the worker started for it failed its init
            outcome = Outcome.failure(acquired[0], acquired[1], request_id)
            with self._cond:
                self._count(outcome)
            return outcome
        worker = acquired
        answer: Outcome | None = None
        try:
            answer = worker.invoke(event, request_id, self._closed)
            return answer
        finally:
            self._release(worker, answer)

    def _acquire(self, max_wait: float | None = None) -> Worker | tuple[str, str] | None:
        """An idle worker, the warmest first. With none idle and room below the concurrency, a
        new worker starts beside the wait (a cold start), and the invocation takes whichever
        worker is free first: the new one once its init is done, or one that finished its
        invocation sooner. A local init on two busy cores takes seconds (Lambda's, a second
        or less): an invocation bound to the new worker would wait all of it, while a warm
        worker of the same function is free after a few hundred milliseconds. When the worker
        started for this invocation fails its init, the invocation fails as its init did.
        None: no worker was free within `max_wait` (throttled)."""
        began = time.monotonic()
        mine: _Start | None = None
        waited = False
        all_busy_since: float | None = None
        with self._cond:
            while True:
                if self._closed.is_set():
                    raise PoolClosed(self.spec.name)
                if self._idle:
                    worker = self._idle.pop()
                    self._busy.add(worker)
                    if waited:
                        wait_ms = int((time.monotonic() - began) * 1000)
                        self.stats.waited += 1
                        self.stats.wait_ms_max = max(self.stats.wait_ms_max, wait_ms)
                    return worker
                if mine is not None and mine.done:
                    if mine.failure is not None:
                        return mine.failure
                    mine = None  # ready, but another invocation took it first
                if mine is None and len(self._busy) + self._starting < self.concurrency:
                    self._starting += 1
                    mine = _Start()
                    threading.Thread(
                        target=self._start_worker,
                        args=(mine,),
                        name=f"start-{self.spec.logical_id}",
                        daemon=True,
                    ).start()
                waited = True
                # A throttle is for a pool at its concurrency, every worker busy: a wait for
                # a worker's cold start is not (Lambda's neither).
                remaining = None
                if max_wait is not None and mine is None and len(self._busy) >= self.concurrency:
                    all_busy_since = all_busy_since or time.monotonic()
                    remaining = all_busy_since + max_wait - time.monotonic()
                    if remaining <= 0:
                        return None
                else:
                    all_busy_since = None
                self._waiting += 1
                try:
                    self._cond.wait(remaining)
                finally:
                    self._waiting -= 1

    def _start_worker(self, start: _Start) -> None:
        """A cold start: the worker's process, then its init; ready, it joins the idle ones
        and serves next; failed, the invocation it was started for fails as Lambda reports a
        failed init."""
        worker: Worker | None = None
        failure: tuple[str, str] | None = None
        # Its turn among the stack's inits first (the process starts only then, so its init
        # time and limit are its own).
        while not self._inits.acquire(timeout=0.25):
            if self._closed.is_set():
                failure = ("Runtime.Shutdown", "the local stack is stopping")
                break
        if failure is None:
            try:
                worker = Worker(self.spec, self.env, self.settings.init_seconds)
                with self._cond:
                    self._launching.add(worker)
                failure = worker.start_up(self._closed)
            except Exception as exc:  # the process could not start at all
                log(f"{self.spec.name}: a worker could not start: {exc!r}")
                failure = ("Runtime.Unknown", f"the worker could not start: {exc}")
            finally:
                self._inits.release()
        with self._cond:
            self._starting -= 1
            if worker is not None:
                self._launching.discard(worker)
            if failure is None and worker is not None:
                if self._closed.is_set():
                    failure = ("Runtime.Shutdown", "the local stack is stopping")
                else:
                    self.stats.cold_starts += 1
                    self.stats.cold_start_ms_max = max(self.stats.cold_start_ms_max, worker.init_ms)
                    # Last: the next invocation takes it, as Lambda sends the next request to
                    # the environment it just started (so a new worker does not sit cold).
                    self._idle.append(worker)
            start.failure = failure
            start.done = True
            self._cond.notify_all()
        if failure is not None and worker is not None:
            worker.kill()
        elif worker is not None:
            log(f"{self.spec.name}: cold start, worker {worker.pid} ready in {worker.init_ms} ms")

    def _count(self, outcome: Outcome | None) -> None:
        """One invocation's outcome in the stats (under the pool's lock)."""
        self.stats.invocations += 1
        if outcome is not None and outcome.error is not None:
            self.stats.errors += 1
            self.stats.by_error[outcome.error] = self.stats.by_error.get(outcome.error, 0) + 1
            if outcome.error == "Sandbox.Timedout":
                self.stats.timeouts += 1
            elif outcome.error == "Runtime.ExitError":
                self.stats.crashes += 1
            elif outcome.error == "Runtime.OutOfMemory":
                self.stats.out_of_memory += 1

    def _release(self, worker: Worker, outcome: Outcome | None) -> None:
        worn = worker.invocations >= self.settings.max_invocations
        too_big = worker.rss is not None and worker.rss > self.spec.memory_mb * 1024 * 1024
        if too_big:
            log(
                f"{self.spec.name}: worker {worker.pid} ended an invocation at "
                f"{(worker.rss or 0) // 2**20} MB, past its MemorySize: retired"
            )
        keep = worker.alive and not worn and not too_big and not self._closed.is_set()
        with self._cond:
            self._busy.discard(worker)
            self._count(outcome)
            if keep:
                self._idle.append(worker)
            elif worker.alive:
                self.stats.recycled += 1
            self._cond.notify()
        if not keep:
            worker.stop()
            if self.provisioned:
                self._top_up()

    def reap_idle(self, now: float | None = None) -> None:
        """Retire workers idle for longer than the idle limit (Lambda reclaims cold containers),
        but never below the provisioned ones."""
        now = time.monotonic() if now is None else now
        with self._cond:
            stale = [w for w in self._idle if now - w.last_used > self.settings.idle_seconds]
            spare = len(self._idle) + len(self._busy) + self._starting - self.provisioned
            stale = stale[: max(0, spare)]
            for worker in stale:
                self._idle.remove(worker)
                self.stats.recycled += 1
        for worker in stale:
            worker.stop()

    def provision(self, count: int) -> None:
        """Keep `count` workers (at most the concurrency) started and initialized, as Lambda's
        provisioned concurrency keeps execution environments: they start now, in the
        background, and one retired (recycled, crashed, killed) is replaced at once, so no
        invocation waits for a cold start while the pool holds fewer."""
        with self._cond:
            self.provisioned = min(count, self.concurrency)
        self._top_up()

    def _top_up(self) -> None:
        with self._cond:
            if self._closed.is_set():
                return
            missing = self.provisioned - (len(self._idle) + len(self._busy) + self._starting)
            self._starting += max(0, missing)
        for _ in range(missing):
            threading.Thread(
                target=self._start_worker,
                args=(_Start(),),
                name=f"provision-{self.spec.logical_id}",
                daemon=True,
            ).start()

    def pids(self) -> list[int]:
        with self._cond:
            return sorted(w.pid for w in (*self._idle, *self._busy, *self._launching))

    def describe(self) -> dict[str, Any]:
        with self._cond:
            workers = [
                {
                    "pid": w.pid,
                    "busy": w in self._busy,
                    "invocations": w.invocations,
                    "rss_bytes": w.rss,
                }
                for w in sorted((*self._idle, *self._busy), key=lambda w: w.pid)
            ]
            workers += [
                {"pid": w.pid, "busy": False, "starting": True, "invocations": 0, "rss_bytes": None}
                for w in sorted(self._launching, key=lambda w: w.pid)
            ]
            stats = self.stats
            return {
                "function": self.spec.name,
                "concurrency": self.concurrency,
                "memory_mb": self.spec.memory_mb,
                "timeout_seconds": self.spec.timeout,
                "workers": workers,
                "waiting": self._waiting,
                "invocations": stats.invocations,
                "errors": stats.errors,
                "timeouts": stats.timeouts,
                "crashes": stats.crashes,
                "out_of_memory": stats.out_of_memory,
                "cold_starts": stats.cold_starts,
                "cold_start_ms_max": stats.cold_start_ms_max,
                "waited": stats.waited,
                "wait_ms_max": stats.wait_ms_max,
                "throttles": stats.throttles,
                "provisioned": self.provisioned,
                "recycled": stats.recycled,
                "errors_by_type": dict(stats.by_error),
            }

    def close(self) -> list[Worker]:
        """No more invocations; every worker is told to end (answers them, to wait on)."""
        self._closed.set()
        with self._cond:
            idle, busy = list(self._idle), [*self._busy, *self._launching]
            self._idle.clear()
            self._cond.notify_all()
        for worker in busy:
            worker.kill_process()  # its invoking thread sees the stop and closes the rest
        for worker in idle:
            worker.end()
        return [*idle, *busy]


_STOP = object()


class AsyncInvoker:
    """Lambda's asynchronous (`Event`) invocations of one function: queued, then run on the
    function's workers by as many threads as its concurrency (started as they are needed)."""

    def __init__(self, pool: FunctionPool, on_done: Callable[[], None]) -> None:
        self._pool = pool
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads = 0
        self._lock = threading.Lock()
        self._on_done = on_done

    def submit(self, event: Any) -> None:
        self._queue.put(event)
        with self._lock:
            if self._threads >= self._pool.concurrency:
                return
            self._threads += 1
        threading.Thread(
            target=self._serve, name=f"async-{self._pool.spec.logical_id}", daemon=True
        ).start()

    def _serve(self) -> None:
        while True:
            event = self._queue.get()
            if event is _STOP:
                return
            try:
                outcome = self._pool.invoke(event)
                if outcome.failed:
                    log(
                        f"{self._pool.spec.name}: asynchronous invocation failed: {outcome.payload}"
                    )
            except PoolClosed:
                return
            finally:
                self._on_done()

    def stop(self) -> None:
        with self._lock:
            threads = self._threads
        for _ in range(threads):
            self._queue.put(_STOP)


class WorkerPools:
    """Every function's pool, and their asynchronous queues."""

    def __init__(
        self,
        specs: Mapping[str, FunctionSpec],
        function_env: Mapping[str, str],
        settings: PoolSettings | None = None,
    ) -> None:
        settings = settings or PoolSettings.from_env()
        self.settings = settings
        inits = threading.BoundedSemaphore(max(1, settings.parallel_inits))
        self.pools = {
            spec.name: FunctionPool(spec, worker_environment(spec, function_env), settings, inits)
            for spec in specs.values()
        }
        self._pending = 0
        self._pending_cond = threading.Condition()
        self._async = {
            name: AsyncInvoker(pool, self._async_done) for name, pool in self.pools.items()
        }
        self._closed = threading.Event()
        threading.Thread(target=self._sweep, name="lambda-reaper", daemon=True).start()

    def invoke(self, function_name: str, event: Any, max_wait: float | None = None) -> Outcome:
        return self.pools[function_name].invoke(event, max_wait=max_wait)

    def provision(self, function_name: str, count: int) -> None:
        self.pools[function_name].provision(count)

    def invoke_async(self, function_name: str, event: Any) -> None:
        if self._closed.is_set():
            raise PoolClosed(function_name)
        with self._pending_cond:
            self._pending += 1
        self._async[function_name].submit(event)

    def _async_done(self) -> None:
        with self._pending_cond:
            self._pending -= 1
            self._pending_cond.notify_all()

    def wait_idle(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._pending_cond:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("asynchronous Lambda invocations still running")
                self._pending_cond.wait(remaining)

    def pids(self) -> list[int]:
        return sorted(pid for pool in self.pools.values() for pid in pool.pids())

    def describe(self) -> dict[str, Any]:
        return {pool.spec.logical_id: pool.describe() for pool in self.pools.values()}

    def _sweep(self) -> None:
        interval = max(1.0, min(30.0, self.settings.idle_seconds / 4))
        while not self._closed.wait(interval):
            for pool in self.pools.values():
                pool.reap_idle()

    def close(self) -> None:
        """End every worker now (running invocations fail as `Runtime.Shutdown`): all are
        told at once, then whatever is still alive after a grace second is killed."""
        self._closed.set()
        for invoker in self._async.values():
            invoker.stop()
        workers = [worker for pool in self.pools.values() for worker in pool.close()]
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for worker in workers:
            try:
                worker.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.kill_process()
        for worker in workers:
            try:
                worker.process.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                log(f"worker {worker.pid} did not end")
