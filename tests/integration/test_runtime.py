"""The local Lambda runtime (local/pool.py, local/worker.py): worker processes per function,
isolated, concurrent up to the function's concurrency, recycled, failing as Lambda fails; and
moto's Lambda invoke and the local API Gateway going through them.

The functions are tests/integration/runtime_handlers/app.py, each invocation saying what to do."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.server import ThreadedMotoServer

from local.apigw import LocalApiGateway
from local.aws_template import load_template_text
from local.lambda_specs import FunctionSpec, function_specs
from local.lambdas import LocalLambdas
from local.pool import (
    THROTTLED,
    FunctionPool,
    Outcome,
    PoolSettings,
    WorkerPools,
    worker_environment,
)
from local.provision import FAKE_AWS_ENV

HANDLERS = Path(__file__).resolve().parent / "runtime_handlers"
SETTINGS = PoolSettings(concurrency=2, max_invocations=1000, idle_seconds=300, init_seconds=60)


def spec(name: str = "echo", *, handler: str = "app.lambda_handler", **extra: Any) -> FunctionSpec:
    fields: dict[str, Any] = {"timeout": 10, "memory_mb": 256, **extra}
    return FunctionSpec(
        logical_id=f"Test{name.title()}",
        name=f"runtime-test-{name}",
        code_dir=HANDLERS,
        handler=handler,
        **fields,
    )


@pytest.fixture
def pools() -> Iterator[Any]:
    made: list[WorkerPools] = []

    def make(
        *specs: FunctionSpec, settings: PoolSettings = SETTINGS, env: dict[str, str] | None = None
    ) -> WorkerPools:
        function_env = {"MARK": "from-the-template", **(env or {})}
        made.append(WorkerPools({s.logical_id: s for s in specs}, function_env, settings))
        return made[-1]

    yield make
    for pool in made:
        pool.close()


def result(outcome: Outcome) -> Any:
    assert not outcome.failed, outcome.payload
    return json.loads(outcome.payload)


def in_parallel(count: int, call: Any) -> list[Any]:
    answers: list[Any] = [None] * count
    start = threading.Barrier(count)

    def run(n: int) -> None:
        start.wait()
        answers[n] = call(n)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return answers


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


# --- isolation and concurrency -------------------------------------------------------------------


def test_given_concurrent_requests_to_one_function_then_each_gets_its_own_answer_and_worker(
    pools: Any,
) -> None:
    fn = spec()
    pool = pools(fn)

    answers = in_parallel(
        6, lambda n: result(pool.invoke(fn.name, {"id": f"request-{n}", "sleep": 0.3}))
    )

    # Module state (here the handler's CURRENT) never carries one request's event into another.
    assert [a["echo"] for a in answers] == [f"request-{n}" for n in range(6)]
    # Concurrency 2: six requests at once were served by two workers, the rest waited.
    assert len({a["pid"] for a in answers}) == 2
    assert all(pid != os.getpid() for pid in {a["pid"] for a in answers})


def test_given_a_busy_worker_and_a_slow_cold_start_then_the_request_takes_the_first_free_worker(
    pools: Any,
) -> None:
    # A Clio webhook got no answer within the sandbox's 5 s under make load: its function's
    # one warm worker was busy, so the delivery started a new worker and waited for that
    # worker's init (seconds on two busy cores) although the warm one was free again in
    # a few hundred milliseconds.
    fn = spec()
    pool = pools(fn, env={"INIT_SLEEP": "3"})
    warm = result(pool.invoke(fn.name, {"id": "first"}))["pid"]
    busy = threading.Thread(
        target=pool.invoke, args=(fn.name, {"id": "long", "sleep": 0.5}), daemon=True
    )
    busy.start()
    while not any(w["busy"] for w in pool.describe()["TestEcho"]["workers"]):
        time.sleep(0.01)

    answer = result(pool.invoke(fn.name, {"id": "next"}))
    busy.join()

    assert answer["echo"] == "next"
    assert answer["pid"] == warm  # served by the warm worker once free, not the cold one
    # The new worker still started (the pool grows with demand) and now waits idle.
    deadline = time.monotonic() + 30
    while pool.describe()["TestEcho"]["cold_starts"] < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    stats = pool.describe()["TestEcho"]
    assert stats["cold_starts"] == 2 and len(pool.pids()) == 2
    assert [w["busy"] for w in stats["workers"]] == [False, False]
    assert stats["waited"] >= 1


def test_given_every_worker_busy_and_a_max_wait_then_the_invocation_is_throttled_unrun(
    pools: Any,
) -> None:
    fn = spec("busy", reserved_concurrency=1)
    pool = pools(fn)
    # A cold start is no throttle: the first invocation waits for its worker's init.
    first = result(pool.invoke(fn.name, {"id": "first"}, max_wait=0.0))
    busy = threading.Thread(
        target=pool.invoke, args=(fn.name, {"id": "long", "sleep": 2}), daemon=True
    )
    busy.start()
    while not any(w["busy"] for w in pool.describe()["TestBusy"]["workers"]):
        time.sleep(0.01)

    throttled = pool.invoke(fn.name, {"id": "next"}, max_wait=0.2)
    busy.join()

    assert first["echo"] == "first"
    assert throttled.error == "TooManyRequestsException"
    stats = pool.describe()["TestBusy"]
    assert stats["throttles"] == 1
    assert stats["invocations"] == 2  # the throttled one never ran
    assert result(pool.invoke(fn.name, {"id": "after"}, max_wait=0.2))["echo"] == "after"


def test_given_a_provisioned_function_then_its_workers_wait_ready_and_a_retired_one_is_replaced(
    pools: Any,
) -> None:
    # The Clio webhook function is provisioned to its concurrency: a delivery under load once
    # waited 9 s for three workers' cold starts and got no answer within Clio's timeout.
    fn = spec()
    pool = pools(fn, settings=PoolSettings(concurrency=2, max_invocations=1, idle_seconds=0.5))
    function = pool.pools[fn.name]

    function.provision(2)
    deadline = time.monotonic() + 60
    while function.describe()["cold_starts"] < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    ready = pool.pids()

    assert len(ready) == 2 and function.describe()["invocations"] == 0
    function.reap_idle(now=time.monotonic() + 10)  # idle past the limit: provisioned, kept
    assert pool.pids() == ready
    served = result(pool.invoke(fn.name, {"id": 1}))["pid"]  # no cold start: one is ready
    assert served in ready
    # Retired after its one invocation: replaced without waiting for the next invocation.
    while function.describe()["cold_starts"] < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(pool.pids()) == 2 and served not in pool.pids()


def test_given_many_cold_starts_at_once_then_only_so_many_workers_are_in_their_init_together(
    pools: Any,
) -> None:
    # make load's first half minute started ~25 workers, up to ten at once on two cores: each
    # init took 7-10 s, and every warm worker and the stack's own process got a small share of
    # the machine (Clio deliveries then went unanswered within 5 s).
    slow, other = spec("slow"), spec("other")
    settings = PoolSettings(concurrency=3, max_invocations=1000, idle_seconds=300, parallel_inits=2)
    pool = pools(slow, other, settings=settings, env={"INIT_SLEEP": "0.5"})

    pool.provision(slow.name, 3)
    pool.provision(other.name, 2)
    deadline = time.monotonic() + 60
    functions = [pool.pools[slow.name], pool.pools[other.name]]
    while sum(f.describe()["cold_starts"] for f in functions) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)

    workers = [w for f in functions for w in f._idle]
    assert len(workers) == 5
    # Each worker's init, from its process's start to its handler imported: never three at once.
    spans = [(w.started_at, w.started_at + w.init_ms / 1000) for w in workers]
    for start, _ in spans:
        assert sum(1 for s, e in spans if s <= start < e) <= 2
    assert result(pool.invoke(slow.name, {"id": "after"}))["echo"] == "after"


def test_given_a_reserved_concurrency_then_it_is_the_functions_concurrency(pools: Any) -> None:
    fn = spec("reserved", reserved_concurrency=3)
    pool = pools(fn)

    answers = in_parallel(6, lambda n: result(pool.invoke(fn.name, {"id": n, "sleep": 0.5})))

    assert len({a["pid"] for a in answers}) == 3
    assert pool.describe()["TestReserved"]["concurrency"] == 3


def test_given_the_template_when_reading_functions_then_memory_timeout_and_concurrency_follow_it():
    template = load_template_text(
        """
Globals:
  Function:
    Timeout: 29
    MemorySize: 512
Resources:
  Layer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: layers/billbridge
  Quick:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/api/
      Handler: app.lambda_handler
      Layers: [!Ref Layer]
  Heavy:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/sync_worker/
      Handler: app.lambda_handler
      Timeout: 900
      MemorySize: 1024
      ReservedConcurrentExecutions: 2
"""
    )

    specs = function_specs("t", template)

    assert (specs["Quick"].timeout, specs["Quick"].memory_mb) == (29, 512)
    assert specs["Quick"].reserved_concurrency is None
    assert specs["Quick"].layer_dirs[0].name == "billbridge"
    assert (specs["Heavy"].timeout, specs["Heavy"].memory_mb) == (900, 1024)
    assert specs["Heavy"].reserved_concurrency == 2
    assert FunctionPool(specs["Heavy"], {}, SETTINGS).concurrency == 2
    assert FunctionPool(specs["Quick"], {}, SETTINGS).concurrency == SETTINGS.concurrency


def test_given_no_setting_then_the_default_concurrency_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOCAL_LAMBDA_CONCURRENCY", "7")
    monkeypatch.setenv("LOCAL_LAMBDA_MAX_INVOCATIONS", "50")

    settings = PoolSettings.from_env()

    assert (settings.concurrency, settings.max_invocations) == (7, 50)


def test_given_a_worker_then_it_has_the_functions_environment_and_lambdas_own_variables(
    pools: Any,
) -> None:
    fn = spec()
    pool = pools(fn)

    first = result(pool.invoke(fn.name, {"id": 1, "env": "MARK"}))
    named = result(pool.invoke(fn.name, {"id": 2, "env": "AWS_LAMBDA_FUNCTION_NAME"}))

    assert first["env"] == "from-the-template"
    assert named["env"] == fn.name
    assert (first["function"], first["memory"]) == (fn.name, 256)
    assert 0 < first["remaining_ms"] <= 10_000
    env = worker_environment(fn, {"MARK": "x"}, base={"PATH": "/bin", "AWS_PROFILE": "mine"})
    assert env["PATH"] == "/bin" and "AWS_PROFILE" not in env  # only what Lambda would have


# --- recycling and failures ----------------------------------------------------------------------


def test_given_a_worker_past_its_invocations_then_it_is_replaced(pools: Any) -> None:
    fn = spec()
    pool = pools(fn, settings=PoolSettings(concurrency=1, max_invocations=3))

    pids = [result(pool.invoke(fn.name, {"id": n}))["pid"] for n in range(7)]

    assert pids[0] == pids[1] == pids[2]
    assert pids[3] == pids[4] == pids[5] != pids[0]
    assert pids[6] != pids[3]
    assert not alive(pids[0])
    assert pool.describe()["TestEcho"]["recycled"] == 2


def test_given_an_idle_worker_past_the_idle_limit_then_it_is_ended(pools: Any) -> None:
    fn = spec()
    pool = pools(fn, settings=PoolSettings(concurrency=1, idle_seconds=0.5))
    pid = result(pool.invoke(fn.name, {"id": 1}))["pid"]

    pool.pools[fn.name].reap_idle(now=time.monotonic() + 1.0)

    assert pool.pids() == []
    assert not alive(pid)
    assert result(pool.invoke(fn.name, {"id": 2}))["pid"] != pid


def test_given_a_function_past_its_timeout_then_it_fails_as_timed_out_and_is_replaced(
    pools: Any,
) -> None:
    fn = spec("slow", timeout=1)
    pool = pools(fn)
    before = result(pool.invoke(fn.name, {"id": 0}))["pid"]

    outcome = pool.invoke(fn.name, {"do": "sleep", "seconds": 30})

    assert outcome.error == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in json.loads(outcome.payload)["errorMessage"]
    assert not alive(before)
    assert result(pool.invoke(fn.name, {"id": 1}))["pid"] != before
    assert pool.describe()["TestSlow"]["timeouts"] == 1


def test_given_a_worker_that_dies_then_its_invocation_fails_and_the_next_gets_a_new_one(
    pools: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    fn = spec()
    pool = pools(fn)
    before = result(pool.invoke(fn.name, {"id": 0}))["pid"]

    outcome = pool.invoke(fn.name, {"do": "crash"})

    assert outcome.error == "Runtime.ExitError"
    assert "exit status 3" in json.loads(outcome.payload)["errorMessage"]
    assert result(pool.invoke(fn.name, {"id": 1}))["pid"] != before
    assert f"worker {before} exited mid-invocation" in capfd.readouterr().err


def test_given_a_worker_past_its_memory_size_then_it_is_killed_as_out_of_memory(
    pools: Any,
) -> None:
    fn = spec("hungry", memory_mb=128)
    pool = pools(fn)

    outcome = pool.invoke(fn.name, {"do": "hog", "mb": 300, "hold": 20})

    assert outcome.error == "Runtime.OutOfMemory"
    assert pool.pids() == []
    assert result(pool.invoke(fn.name, {"id": 1}))["echo"] == 1


def test_given_a_handler_error_then_it_is_reported_as_lambda_does_and_the_worker_stays(
    pools: Any,
) -> None:
    fn = spec()
    pool = pools(fn)
    before = result(pool.invoke(fn.name, {"id": 0}))["pid"]

    raised = pool.invoke(fn.name, {"do": "raise"})
    unserialisable = pool.invoke(fn.name, {"do": "unserialisable"})

    error = json.loads(raised.payload)
    assert (raised.error, error["errorType"], error["errorMessage"]) == (
        "LookupError",
        "LookupError",
        "no such thing",
    )
    assert error["stackTrace"]
    assert unserialisable.error == "Runtime.MarshalError"
    assert result(pool.invoke(fn.name, {"id": 1}))["pid"] == before


def test_given_a_function_whose_init_fails_then_each_invocation_fails_as_an_import_error(
    pools: Any,
) -> None:
    fn = spec("broken", handler="broken.lambda_handler")
    pool = pools(fn)

    outcome = pool.invoke(fn.name, {})

    assert outcome.error == "Runtime.ImportModuleError"
    assert "a_module_that_is_not_installed" in json.loads(outcome.payload)["errorMessage"]
    assert pool.pids() == []


def test_given_a_function_that_prints_then_the_output_reaches_the_log_not_the_answer(
    pools: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    fn = spec()
    pool = pools(fn)

    answer = result(pool.invoke(fn.name, {"do": "noisy"}))
    after = result(pool.invoke(fn.name, {"id": "next"}))

    assert answer == {"quiet": True}
    assert after["echo"] == "next"
    deadline = time.monotonic() + 10
    logged = ""
    while "a line on stderr" not in logged and time.monotonic() < deadline:
        logged += capfd.readouterr().err
        time.sleep(0.05)
    assert f"[TestEcho {after['pid']}] a line on stdout" in logged
    assert f"[TestEcho {after['pid']}] a line on stderr" in logged


def test_given_the_pools_closed_then_every_worker_is_gone(pools: Any) -> None:
    fn = spec()
    pool = pools(fn)
    in_parallel(2, lambda n: result(pool.invoke(fn.name, {"id": n, "sleep": 0.2})))
    busy = threading.Thread(
        target=pool.invoke, args=(fn.name, {"do": "sleep", "seconds": 30}), daemon=True
    )
    busy.start()
    time.sleep(0.5)
    pids = pool.pids()
    assert len(pids) == 2

    pool.close()

    busy.join(timeout=10)
    assert not busy.is_alive()
    assert [pid for pid in pids if alive(pid)] == []


# --- the paths into the pools: moto's Lambda invoke and the API Gateway ---------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def emulated(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LocalLambdas, Any]]:
    """A moto server with our functions registered and invoked in worker processes."""
    for key, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(key, value)
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    clients = {"region_name": "us-east-1", "endpoint_url": url}
    fn = spec()
    lambdas = LocalLambdas(stack_name="runtime-test", mode="process", extra_specs={"TestEcho": fn})
    lambdas.register(boto3.client("lambda", **clients), boto3.client("iam", **clients))
    lambdas.install()
    lambdas.start_workers({**FAKE_AWS_ENV, "AWS_ENDPOINT_URL": url, "MARK": "m"}, SETTINGS)
    try:
        yield lambdas, boto3.client("lambda", **clients)
    finally:
        lambdas.shutdown()
        server.stop()


def test_given_moto_lambda_invokes_then_they_run_in_the_functions_workers(
    emulated: tuple[LocalLambdas, Any],
) -> None:
    lambdas, client = emulated
    name = "runtime-test-echo"

    answer = client.invoke(FunctionName=name, Payload=json.dumps({"id": "sync"}).encode())
    failed = client.invoke(FunctionName=name, Payload=json.dumps({"do": "raise"}).encode())
    queued = client.invoke(
        FunctionName=name, InvocationType="Event", Payload=json.dumps({"id": "async"}).encode()
    )
    lambdas.wait_idle(timeout=60)

    body = json.loads(answer["Payload"].read())
    assert body["echo"] == "sync"
    assert body["pid"] in lambdas.worker_pids() and body["pid"] != os.getpid()
    assert failed["FunctionError"] == "Unhandled"
    assert json.loads(failed["Payload"].read())["errorType"] == "LookupError"
    assert queued["StatusCode"] == 202
    assert lambdas.describe()["TestEcho"]["invocations"] == 3


def test_given_a_runner_with_a_bounded_history_then_old_invocations_are_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        lambdas = LocalLambdas(
            stack_name="history-test", mode="inline", extra_specs={"TestEcho": spec()}, history=3
        )
        client = boto3.client("lambda", region_name="us-east-1")
        lambdas.register(client, boto3.client("iam", region_name="us-east-1"))
        lambdas.install()
        try:
            for n in range(8):
                client.invoke(
                    FunctionName="runtime-test-echo", Payload=json.dumps({"id": n}).encode()
                )
                client.invoke(
                    FunctionName="runtime-test-echo", Payload=json.dumps({"do": "raise"}).encode()
                )
        finally:
            lambdas.shutdown()

    assert len(lambdas.invocations) == 3
    assert len(lambdas.errors) <= 100


class _FailingLambdas:
    """Stands in for LocalLambdas: every function fails the given way."""

    def __init__(self, outcome: Outcome) -> None:
        self.specs = function_specs("runtime-test")
        self.outcome = outcome

    def invoke_api(
        self, spec: FunctionSpec, event: dict[str, Any], max_wait: float | None = None
    ) -> Outcome:
        return self.outcome


class _BusyLambdas:
    """Stands in for LocalLambdas with every worker of every function busy: an invocation
    allowed to wait only so long is throttled; one that may wait is served (in time)."""

    def __init__(self) -> None:
        self.specs = function_specs("runtime-test")
        self.waits: list[tuple[str, float | None]] = []

    def invoke_api(
        self, spec: FunctionSpec, event: dict[str, Any], max_wait: float | None = None
    ) -> Outcome:
        self.waits.append((event["path"], max_wait))
        if max_wait is not None:
            return Outcome.failure(THROTTLED, "Rate Exceeded.", "r")
        return Outcome(json.dumps({"statusCode": 200, "body": "{}"}))


def test_given_a_busy_clio_webhook_function_then_the_delivery_is_throttled_at_once_not_left_hanging(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Under make load a Clio delivery waited for a busy function past the sandbox's 5 s and
    # got no answer; Clio retries what fails, so a prompt throttle is an answer it acts on.
    monkeypatch.setenv("LOCAL_WEBHOOK_QUEUE_SECONDS", "0.5")
    lambdas = _BusyLambdas()
    gateway = LocalApiGateway(lambdas, port=0)  # type: ignore[arg-type]
    try:
        hook = gateway.handle("POST", "/webhooks/clio?firm_id=f", {}, b"{}")
        page = gateway.handle("GET", "/settings", {"Authorization": "Bearer dev-f"}, b"")
    finally:
        gateway.server.server_close()

    assert hook[0] == 429
    assert json.loads(hook[2])["error"]["code"] == "throttled"
    # A person's request waits for a worker, as before.
    assert page[0] == 200
    assert lambdas.waits == [("/webhooks/clio", 0.5), ("/settings", None)]


class _ProvisioningLambdas(_BusyLambdas):
    def __init__(self) -> None:
        super().__init__()
        self.provisioned: list[tuple[str, int | None]] = []

    def provision(self, spec: FunctionSpec, count: int | None = None) -> None:
        self.provisioned.append((spec.logical_id, count))


@pytest.mark.parametrize(("setting", "count"), [(None, None), ("2", 2)])
def test_given_the_clio_webhook_then_it_is_provisioned_as_many_workers_as_set(
    monkeypatch: pytest.MonkeyPatch, setting: str | None, count: int | None
) -> None:
    # Four pre-started workers hold ~340 MB on every make run; fewer can be asked for.
    if setting is None:
        monkeypatch.delenv("LOCAL_WEBHOOK_PROVISIONED", raising=False)
    else:
        monkeypatch.setenv("LOCAL_WEBHOOK_PROVISIONED", setting)
    lambdas = _ProvisioningLambdas()
    gateway = LocalApiGateway(lambdas, port=0)  # type: ignore[arg-type]
    try:
        gateway.provision_retrying_senders()
    finally:
        gateway.server.server_close()

    # None: the function's concurrency.
    assert lambdas.provisioned == [("ClioWebhookFunction", count)]


@pytest.mark.parametrize(
    ("outcome", "status", "body"),
    [
        (Outcome.failure("Runtime.ExitError", "exit status 1", "r"), 502, "Internal server error"),
        (Outcome('{"body": "no status code"}'), 502, "Internal server error"),
        (
            Outcome.failure("Sandbox.Timedout", "Task timed out", "r"),
            504,
            "Endpoint request timed out",
        ),
    ],
)
def test_given_a_function_that_fails_then_the_gateway_answers_as_api_gateway_does(
    outcome: Outcome, status: int, body: str
) -> None:
    gateway = LocalApiGateway(_FailingLambdas(outcome), port=0)  # type: ignore[arg-type]
    try:
        answer = gateway.handle("GET", "/settings", {"Authorization": "Bearer dev-f"}, b"")
    finally:
        gateway.server.server_close()

    assert answer[0] == status
    assert json.loads(answer[2]) == {"message": body}
