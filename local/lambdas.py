"""Our real Lambda handlers behind moto's Lambda service, in-process (tests and the local stack).

moto cannot run Lambda code without Docker, so `LambdaFunction.invoke` is patched to call the
handler named by template.yaml (CodeUri + Handler), found by the function's name. A
`RequestResponse` invocation runs at once; an `Event` (asynchronous) one runs on a worker thread
in "thread" mode, at once in "inline" mode (deterministic integration tests), or waits in a
queue until `drain()` in "queue" mode (benchmarks, which time each part on its own). The callers
still make the real `lambda:Invoke` API call, so what deploys is what runs here.
"""

from __future__ import annotations

import importlib.util
import io
import json
import sys
import threading
import time
import traceback
import uuid
import zipfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moto.awslambda.models import LambdaFunction

from local.aws_template import load_template

ROOT = Path(__file__).resolve().parent.parent
FUNCTION_TYPE = "AWS::Serverless::Function"
ROLE_NAME = "billbridge-local-lambda"


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    name: str
    code_dir: Path
    handler: str
    timeout: int


class FakeContext:
    """The parts of the Lambda context object our handlers use."""

    def __init__(self, spec: FunctionSpec, region: str, account: str) -> None:
        self.function_name = spec.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account}:function:{spec.name}"
        self.memory_limit_in_mb = 512
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{spec.name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + spec.timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _resolve_name(logical_id: str, props: dict[str, Any], stack_name: str) -> str:
    name = props.get("FunctionName")
    if isinstance(name, str):
        return name
    if isinstance(name, dict) and "Fn::Sub" in name and isinstance(name["Fn::Sub"], str):
        return name["Fn::Sub"].replace("${AWS::StackName}", stack_name)
    return f"{stack_name}-{logical_id}"


def function_specs(stack_name: str = "billbridge") -> dict[str, FunctionSpec]:
    template = load_template()
    globals_fn = template.get("Globals", {}).get("Function", {})
    specs: dict[str, FunctionSpec] = {}
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != FUNCTION_TYPE:
            continue
        props = resource.get("Properties", {})
        timeout = props.get("Timeout", globals_fn.get("Timeout", 3))
        specs[logical_id] = FunctionSpec(
            logical_id=logical_id,
            name=_resolve_name(logical_id, props, stack_name),
            code_dir=(ROOT / str(props["CodeUri"])).resolve(),
            handler=str(props.get("Handler", globals_fn.get("Handler", "app.lambda_handler"))),
            timeout=int(timeout),
        )
    return specs


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
    """Registers the template's functions in moto and runs their invocations in-process."""

    def __init__(
        self,
        stack_name: str = "billbridge",
        mode: str = "thread",
        workers: int = 8,
        extra_specs: dict[str, FunctionSpec] | None = None,
    ) -> None:
        # extra_specs: functions outside template.yaml (tests' own handlers), keyed by logical id.
        self.specs = {**function_specs(stack_name), **(extra_specs or {})}
        self.by_name = {spec.name: spec for spec in self.specs.values()}
        self.mode = mode
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lambda")
        self._pending: set[Future[Any]] = set()
        self._lock = threading.Lock()
        self.errors: list[str] = []
        self.invocations: list[tuple[str, str]] = []  # (function name, invocation type)
        self._original: Any = None
        self._queue: list[tuple[FunctionSpec, LambdaFunction, Any]] = []

    def name_of(self, logical_id: str) -> str:
        return self.specs[logical_id].name

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
            archive.writestr("app.py", "# the real code runs in-process; see local/lambdas.py\n")
        for spec in self.specs.values():
            lambda_client.create_function(
                FunctionName=spec.name,
                Runtime="python3.13",
                Role=role,
                Handler=spec.handler,
                Code={"ZipFile": buffer.getvalue()},
                Timeout=spec.timeout,
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
        if kind == "Event" and self.mode == "queue":
            with self._lock:
                self._queue.append((spec, fn, event))
            return b""
        if kind == "Event" and self.mode == "thread":
            future = self._pool.submit(self._run, spec, fn, event)
            with self._lock:
                self._pending.add(future)
            future.add_done_callback(self._forget)
            return b""
        result, errored = self._run(spec, fn, event)
        if errored:
            response_headers["x-amz-function-error"] = "Unhandled"
        return result.encode()

    def _forget(self, future: Future[Any]) -> None:
        with self._lock:
            self._pending.discard(future)

    def _run(self, spec: FunctionSpec, fn: LambdaFunction, event: Any) -> tuple[str, bool]:
        context = FakeContext(spec, fn.region, fn.account_id)
        try:
            result = load_handler(spec)(event, context)
            return json.dumps(result, default=str), False
        except Exception as exc:  # reported the way Lambda reports a function's error
            trace = traceback.format_exc()
            with self._lock:
                self.errors.append(f"{spec.name}: {trace}")
            sys.stderr.write(f"[lambda {spec.name}] {trace}\n")
            return json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)}), True

    def drain(self) -> int:
        """Queue mode: run queued invocations (and those they queue) until none is left."""
        ran = 0
        while True:
            with self._lock:
                if not self._queue:
                    return ran
                spec, fn, event = self._queue.pop(0)
            self._run(spec, fn, event)
            ran += 1

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Block until no asynchronous invocation is running (including ones they started)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                pending = list(self._pending)
            if not pending:
                return
            for future in pending:
                future.exception(timeout=max(0.0, deadline - time.monotonic()))
        raise TimeoutError("asynchronous Lambda invocations still running")

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.uninstall()
