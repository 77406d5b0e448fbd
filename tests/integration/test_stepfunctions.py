"""The shipped send workflow ASL on moto's Step Functions interpreter, its Lambda tasks run
in-process by `LocalLambdas` (test handlers in `sfn_handlers/`), and every ASL file statelinted.

moto sleeps each Retry interval for real (`time.sleep` in its retrier), so these tests shrink the
intervals a hundredfold: the backoff's shape is kept, the seconds are not."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import moto.stepfunctions.parser.asl.component.common.retry.retrier_decl as retrier_decl
import pytest
from moto import mock_aws

from local.aws_template import load_template_text
from local.lambdas import ROLE_NAME, FunctionSpec, LocalLambdas
from local.provision import FAKE_AWS_ENV
from local.stepfunctions import create_state_machines
from tests.integration.sfn_handlers.ledger import LEDGER

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = Path(__file__).resolve().parent / "sfn_handlers"
REGION = "us-east-1"
TIME_SCALE = 0.01
FAST_INTERVAL = 1 * TIME_SCALE  # the ASL's IntervalSeconds (1), shrunk

EXTRA_SPECS = {
    logical_id: FunctionSpec(
        logical_id=logical_id,
        name=f"sfn-test-{folder}",
        code_dir=HANDLERS / folder,
        handler="app.lambda_handler",
        timeout=10,
    )
    for logical_id, folder in (("SfnTestSend", "send"), ("SfnTestFail", "fail"))
}


def machine_template(definition_uri: str, concurrency: int = 5) -> dict[str, Any]:
    """A template of one state machine wired to the test handlers, as template.yaml wires the
    real ones (`SendConcurrency` is unused by an ASL that does not name it)."""
    return load_template_text(
        f"""
Resources:
  SendEnvelopesStateMachine:
    Type: AWS::Serverless::StateMachine
    Properties:
      DefinitionUri: {definition_uri}
      DefinitionSubstitutions:
        SendEnvelopeFunctionArn: !GetAtt SfnTestSend.Arn
        MarkEnvelopeFailedFunctionArn: !GetAtt SfnTestFail.Arn
        SendConcurrency: {concurrency}
"""
    )


class _ScaledTime:
    """Stands in for the `time` module inside moto's retrier: sleeps shrunk by TIME_SCALE."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        time.sleep(seconds * TIME_SCALE)


@dataclass
class Sfn:
    client: Any
    lambdas: LocalLambdas
    role_arn: str

    def create(self, template: dict[str, Any]) -> str:
        machines = create_state_machines(
            self.client,
            self.lambdas,
            role_arn=self.role_arn,
            stack_name=f"sfn-test-{time.monotonic_ns()}",
            template=template,
        )
        return machines["SendEnvelopesStateMachine"]

    def run(self, machine_arn: str, envelope_ids: list[str]) -> dict[str, Any]:
        execution = self.client.start_execution(
            stateMachineArn=machine_arn,
            input=json.dumps(
                {
                    "firm_id": "firm-1",
                    "batch_id": "batch-1",
                    # The shipped workflow hands each task its run's claim token.
                    "claim_token": "claim-token-of-this-run",
                    "envelope_ids": envelope_ids,
                }
            ),
        )["executionArn"]
        deadline = time.monotonic() + 15
        while True:
            described = self.client.describe_execution(executionArn=execution)
            if described["status"] != "RUNNING":
                return dict(described)
            assert time.monotonic() < deadline, "execution still running"
            time.sleep(0.02)


@pytest.fixture
def sfn(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sfn]:
    for key, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setattr(retrier_decl, "time", _ScaledTime())
    LEDGER.reset()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        lambdas = LocalLambdas(stack_name="sfn-test", mode="inline", extra_specs=EXTRA_SPECS)
        iam = boto3.client("iam", region_name=REGION)
        lambdas.register(boto3.client("lambda", region_name=REGION), iam)
        lambdas.install()
        try:
            yield Sfn(
                client=boto3.client("stepfunctions", region_name=REGION),
                lambdas=lambdas,
                role_arn=iam.get_role(RoleName=ROLE_NAME)["Role"]["Arn"],
            )
        finally:
            lambdas.shutdown()


def test_given_throttling_and_a_bad_envelope_when_the_batch_runs_then_retry_and_catch_apply(sfn):
    machine = sfn.create(machine_template("statemachines/send_envelopes.asl.json"))

    done = sfn.run(machine, ["e1", "e2", "e3", "e4"])

    assert done["status"] == "SUCCEEDED", done
    results = {r["envelope_id"]: r for r in json.loads(done["output"])}
    assert [r["envelope_id"] for r in json.loads(done["output"])] == ["e1", "e2", "e3", "e4"]
    sends = [event["envelope_id"] for event in LEDGER.events("send")]
    # e2: throttled twice (SesThrottled matched by the named Retry), then sent once.
    assert sends.count("e2") == 3 and results["e2"] == {
        "envelope_id": "e2",
        "outcome": "sent",
        "attempt": 3,
    }
    # e3: ValueError is not retried; the Catch hands it, input kept, to MarkFailed.
    assert sends.count("e3") == 1
    (failed,) = LEDGER.events("fail")
    assert failed["envelope_id"] == "e3" and failed["batch_id"] == "batch-1"
    assert failed["firm_id"] == "firm-1"
    assert failed["error"]["Error"] == "ValueError"
    assert json.loads(failed["error"]["Cause"])["errorType"] == "ValueError"
    assert results["e3"]["outcome"] == "failed"
    assert results["e3"]["error"]["Error"] == "ValueError"
    for envelope_id in ("e1", "e4"):
        assert sends.count(envelope_id) == 1
        assert results[envelope_id]["outcome"] == "sent"


def test_given_marking_one_envelope_failed_fails_when_the_batch_runs_then_the_others_still_go(
    sfn,
):
    machine = sfn.create(machine_template("statemachines/send_envelopes.asl.json"))

    done = sfn.run(machine, ["e1", "e9", "e4", "e3"])

    assert done["status"] == "SUCCEEDED", done
    results = {r["envelope_id"]: r for r in json.loads(done["output"])}
    assert results["e1"]["outcome"] == "sent" and results["e4"]["outcome"] == "sent"
    assert results["e3"]["outcome"] == "failed"
    # e9's failure could not be recorded even after the retries: said so, for that one only.
    assert results["e9"]["outcome"] == "failure_not_recorded"
    assert results["e9"]["error"]["Error"] == "ValueError"
    assert [e["envelope_id"] for e in LEDGER.events("fail")].count("e9") == 3


def test_given_retries_then_moto_waits_the_backoff_between_attempts(sfn):
    machine = sfn.create(machine_template("statemachines/send_envelopes.asl.json"))

    assert sfn.run(machine, ["e2"])["status"] == "SUCCEEDED"

    first, second, third = LEDGER.times("send", "e2")
    # IntervalSeconds then IntervalSeconds * BackoffRate (2), each shrunk by TIME_SCALE.
    assert second - first >= FAST_INTERVAL
    assert third - second >= 2 * FAST_INTERVAL


def test_given_max_concurrency_then_moto_runs_no_more_iterations_at_once(sfn, tmp_path):
    # The shipped value may be a `${SendConcurrency}` substitution or a number: pin it to 2.
    text = (ROOT / "statemachines" / "send_envelopes.asl.json").read_text()
    text = re.sub(r'"MaxConcurrency":\s*(\$\{SendConcurrency\}|\d+)', '"MaxConcurrency": 2', text)
    pinned = tmp_path / "send_envelopes.asl.json"
    pinned.write_text(text)
    machine = sfn.create(machine_template(str(pinned)))

    done = sfn.run(machine, ["e1", "e4", "e5", "e6", "e7", "e8"])

    assert done["status"] == "SUCCEEDED", done
    assert LEDGER.max_active == 2


# -- statelint --------------------------------------------------------------------------------

PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def with_sample_substitutions(text: str) -> str:
    """An ASL text with every `${Name}` replaced as a deploy would: names ending in `Arn` by a
    Lambda ARN, any other by a number (the only other kind our definitions substitute)."""

    def sample(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.endswith("Arn"):
            return f"arn:aws:lambda:{REGION}:123456789012:function:{name}"
        return "2"

    return PLACEHOLDER.sub(sample, text)


@pytest.mark.parametrize(
    "asl", sorted((ROOT / "statemachines").glob("*.asl.json")), ids=lambda path: path.name
)
def test_given_an_asl_file_when_substituted_then_statelint_accepts_it(asl, tmp_path):
    substituted = tmp_path / asl.name
    substituted.write_text(with_sample_substitutions(asl.read_text()))
    json.loads(substituted.read_text())

    # The statelint CLI (PyPI), run as a module so it is the one installed beside this Python.
    result = subprocess.run(
        [sys.executable, "-m", "statelint", str(substituted)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
