"""Our real Lambda handlers behind moto's Lambda service (tests and the local stack).

moto cannot run Lambda code without Docker, so `LambdaFunction.invoke` is patched to run the
handler named by template.yaml (CodeUri + Handler), found by the function's name. The callers
still make the real `lambda:Invoke` API call, so what deploys is what runs here. Where it runs:

- "process" (the local stack): in worker processes of the function's own (`local.pool`), as
  Lambda runs it: isolated, concurrent up to the function's concurrency, recycled, with its
  Timeout and MemorySize enforced. Asynchronous (`Event`) invocations queue for those workers.
- in-process, for tests with `mock_aws` (no server for a worker to reach): a `RequestResponse`
  invocation runs at once; an `Event` one runs on a thread in "thread" mode, at once in
  "inline" mode (deterministic integration tests), or waits in a queue until `drain()` in
  "queue" mode (benchmarks, which time each part on its own). In-process handlers share one
  interpreter, so module state is shared too: Powertools keeps the current event on a class
  attribute shared by every function's resolver, so API Gateway invocations run one at a time
  across all functions (a Clio webhook's delivery once answered a concurrent GET /invoices
  with the webhook's event: 401, "the caller's token names no firm"), and nothing else is
  isolated between functions.
"""

from __future__ import annotations

import importlib.util
import io
import json
import sys
import threading
import time
import traceback
import zipfile
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from moto.awslambda.models import LambdaFunction

from local.lambda_specs import ROOT, FakeContext, FunctionSpec, function_specs
from local.pool import Outcome, PoolClosed, PoolSettings, WorkerPools

__all__ = [
    "ROLE_NAME",
    "ROOT",
    "FakeContext",
    "FunctionSpec",
    "LocalLambdas",
    "function_specs",
    "load_handler",
]

ROLE_NAME = "billbridge-local-lambda"
MODES = ("process", "thread", "inline", "queue")
# How much invocation history the runner keeps (tests read it); older entries are dropped.
HISTORY = 10_000


_load_lock = threading.Lock()


def load_handler(spec: FunctionSpec) -> Callable[[Any, Any], Any]:
    """Import the function's module from its CodeUri, as Lambda would (code dir on sys.path).
    Under a lock: the Map state runs tasks on several threads, and none may see a module
    half-imported."""
    module_name, _, attr = spec.handler.rpartition(".")
    unique = f"lambda_{spec.logical_id}_{module_name}"
    with _load_lock:
        module = sys.modules.get(unique)
        if module is None:
            code_dir = str(spec.code_dir)
            if code_dir not in sys.path:
                sys.path.insert(0, code_dir)
            file_spec = importlib.util.spec_from_file_location(
                unique, spec.code_dir / f"{module_name}.py"
            )
            assert file_spec and file_spec.loader
            module = importlib.util.module_from_spec(file_spec)
            file_spec.loader.exec_module(module)
            sys.modules[unique] = module
    handler: Callable[[Any, Any], Any] = getattr(module, attr)
    return handler


class LocalLambdas:
    """Registers the template's functions in moto and runs their invocations."""

    def __init__(
        self,
        stack_name: str = "billbridge",
        mode: str = "thread",
        workers: int = 8,
        extra_specs: dict[str, FunctionSpec] | None = None,
        history: int = HISTORY,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown Lambda mode {mode!r}; one of {MODES}")
        # extra_specs: functions outside template.yaml (tests' own handlers), keyed by logical id.
        self.specs = {**function_specs(stack_name), **(extra_specs or {})}
        self.by_name = {spec.name: spec for spec in self.specs.values()}
        self.mode = mode
        self._threads = workers
        self._pool: ThreadPoolExecutor | None = None
        self._pending: set[Future[Any]] = set()
        self._lock = threading.Lock()
        # Bounded: a long-running stack must not keep every invocation it ever ran.
        self.errors: deque[str] = deque(maxlen=100)
        self.invocations: deque[tuple[str, str]] = deque(maxlen=history)  # (name, type)
        self._original: Any = None
        self._queue: list[tuple[FunctionSpec, Any]] = []
        # One for every function: their resolvers share Powertools' current event (see above).
        self._api_lock = threading.Lock()
        self.workers: WorkerPools | None = None

    def name_of(self, logical_id: str) -> str:
        return self.specs[logical_id].name

    def start_workers(
        self, function_env: Mapping[str, str], settings: PoolSettings | None = None
    ) -> None:
        """Process mode: the worker pools, given the environment every function reads (it must
        name the emulator's endpoint, `AWS_ENDPOINT_URL`: a worker has no in-process mock)."""
        if self.mode != "process":
            raise RuntimeError("worker processes are for the process mode")
        if not function_env.get("AWS_ENDPOINT_URL"):
            raise RuntimeError("worker processes need AWS_ENDPOINT_URL (a moto server)")
        self.workers = WorkerPools(self.specs, function_env, settings)

    # -- moto wiring --------------------------------------------------------------------------

    def register(self, lambda_client: Any, iam_client: Any) -> None:
        role = iam_client.create_role(
            RoleName=ROLE_NAME,
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )["Role"]["Arn"]
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("app.py", "# the real code runs elsewhere; see local/lambdas.py\n")
        for spec in self.specs.values():
            lambda_client.create_function(
                FunctionName=spec.name,
                Runtime="python3.13",
                Role=role,
                Handler=spec.handler,
                Code={"ZipFile": buffer.getvalue()},
                Timeout=spec.timeout,
                MemorySize=spec.memory_mb,
            )

    def install(self) -> None:
        if self._original is not None:
            return
        self._original = LambdaFunction.invoke
        local = self

        def invoke(
            fn: LambdaFunction, body: str, request_headers: Any, response_headers: Any
        ) -> bytes:
            return local._invoke(fn, body, request_headers, response_headers)

        LambdaFunction.invoke = invoke  # type: ignore[method-assign]

    def uninstall(self) -> None:
        if self._original is not None:
            LambdaFunction.invoke = self._original  # type: ignore[method-assign]
            self._original = None

    # -- running ------------------------------------------------------------------------------

    def _invoke(
        self, fn: LambdaFunction, body: str, request_headers: Any, response_headers: Any
    ) -> bytes:
        spec = self.by_name[fn.function_name]
        event = json.loads(body) if body else {}
        headers = {str(k).lower(): v for k, v in dict(request_headers or {}).items()}
        kind = headers.get("x-amz-invocation-type", "RequestResponse")
        with self._lock:
            self.invocations.append((spec.name, kind))
        if kind == "Event":
            self._invoke_async(spec, event)
            return b""
        outcome = self.run(spec, event)
        if outcome.failed:
            response_headers["x-amz-function-error"] = "Unhandled"
        return outcome.payload.encode()

    def _invoke_async(self, spec: FunctionSpec, event: Any) -> None:
        if self.mode == "process":
            assert self.workers is not None, "start_workers() first"
            self.workers.invoke_async(spec.name, event)
        elif self.mode == "queue":
            with self._lock:
                self._queue.append((spec, event))
        elif self.mode == "thread":
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="lambda")
                future = self._pool.submit(self.run, spec, event)
                self._pending.add(future)
            future.add_done_callback(self._forget)
        else:
            self.run(spec, event)

    def _forget(self, future: Future[Any]) -> None:
        with self._lock:
            self._pending.discard(future)

    def run(self, spec: FunctionSpec, event: Any, max_wait: float | None = None) -> Outcome:
        """One synchronous invocation, wherever this mode runs functions. `max_wait` (process
        mode): how long it may wait for a busy function's worker before it is throttled."""
        if self.mode == "process":
            assert self.workers is not None, "start_workers() first"
            try:
                outcome = self.workers.invoke(spec.name, event, max_wait)
            except PoolClosed:
                outcome = Outcome.failure("Runtime.Shutdown", "the local stack is stopping", "-")
            if outcome.failed:
                with self._lock:
                    self.errors.append(f"{spec.name}: {outcome.payload}")
            return outcome
        return self._run_in_process(spec, event)

    def _run_in_process(self, spec: FunctionSpec, event: Any) -> Outcome:
        context = FakeContext(spec, "us-east-1", "123456789012")
        try:
            result = load_handler(spec)(event, context)
            return Outcome(json.dumps(result, default=str))
        except Exception as exc:  # reported the way Lambda reports a function's error
            trace = traceback.format_exc()
            with self._lock:
                self.errors.append(f"{spec.name}: {trace}")
            sys.stderr.write(f"[lambda {spec.name}] {trace}\n")
            error = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
            return Outcome(json.dumps(error), type(exc).__name__)

    def invoke_api(
        self, spec: FunctionSpec, event: dict[str, Any], max_wait: float | None = None
    ) -> Outcome:
        """An API Gateway proxy invocation. In-process, one request at a time across functions
        (one Lambda container serves one request at a time, and in this one interpreter every
        function's resolver reads the same current event)."""
        if self.mode == "process":
            return self.run(spec, event, max_wait)
        with self._api_lock:
            return self._run_in_process(spec, event)

    def drain(self) -> int:
        """Queue mode: run queued invocations (and those they queue) until none is left."""
        ran = 0
        while True:
            with self._lock:
                if not self._queue:
                    return ran
                spec, event = self._queue.pop(0)
            self.run(spec, event)
            ran += 1

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Block until no asynchronous invocation is running (including ones they started)."""
        if self.workers is not None:
            self.workers.wait_idle(timeout)
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                pending = list(self._pending)
            if not pending:
                return
            for future in pending:
                future.exception(timeout=max(0.0, deadline - time.monotonic()))
        raise TimeoutError("asynchronous Lambda invocations still running")

    def provision(self, spec: FunctionSpec, count: int | None = None) -> None:
        """Process mode: keep `count` workers of the function (default: its concurrency)
        started and initialized, as Lambda's provisioned concurrency does."""
        if self.workers is not None:
            pool = self.workers.pools[spec.name]
            pool.provision(pool.concurrency if count is None else count)

    def describe(self) -> dict[str, Any]:
        """Process mode: each function's workers and counts (GET /_local/stats)."""
        return self.workers.describe() if self.workers is not None else {}

    def worker_pids(self) -> list[int]:
        return self.workers.pids() if self.workers is not None else []

    def shutdown(self) -> None:
        if self.workers is not None:
            self.workers.close()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self.uninstall()
