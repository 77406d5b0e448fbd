"""Every state machine the template declares: its ASL file exists, is valid once the template's
substitutions are applied (statelint, since cfn-lint does not check ASL), and names only
functions of the template."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from local.aws_template import load_template

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MACHINES = {
    logical_id: resource["Properties"]
    for logical_id, resource in load_template()["Resources"].items()
    if resource["Type"] == "AWS::Serverless::StateMachine"
}


def test_given_the_template_then_the_send_workflow_is_declared():
    assert "SendEnvelopesStateMachine" in MACHINES
    assert (
        MACHINES["SendEnvelopesStateMachine"]["DefinitionUri"]
        == "statemachines/send_envelopes.asl.json"
    )


@pytest.mark.parametrize("logical_id", sorted(MACHINES))
def test_given_a_state_machine_when_substituted_then_statelint_accepts_it(logical_id, tmp_path):
    props = MACHINES[logical_id]
    text = (ROOT / props["DefinitionUri"]).read_text()
    used = set(re.findall(r"\$\{([A-Za-z0-9]+)\}", text))
    substitutions = props.get("DefinitionSubstitutions") or {}
    assert used == set(substitutions), (
        "every ${...} needs a substitution and every substitution a use"
    )
    resources = load_template()["Resources"]
    for name, value in substitutions.items():
        if isinstance(value, int):  # a number, e.g. the Map's MaxConcurrency
            text = text.replace("${" + name + "}", str(value))
            continue
        target = value["Fn::GetAtt"][0]
        assert resources[target]["Type"] == "AWS::Serverless::Function", name
        text = text.replace(
            "${" + name + "}", f"arn:aws:lambda:us-east-1:123456789012:function:{target}"
        )
    json.loads(text)
    path = tmp_path / "machine.asl.json"
    path.write_text(text)
    result = subprocess.run([str(BIN / "statelint"), str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_given_the_send_workflow_then_retry_names_errors_and_catch_follows():
    text = (ROOT / "statemachines" / "send_envelopes.asl.json").read_text()
    machine = json.loads(text.replace("${SendConcurrency}", "5"))
    send = machine["States"]["SendEach"]["ItemProcessor"]["States"]["SendEnvelope"]
    assert {"SesThrottled", "TransientSendError"} <= set(send["Retry"][0]["ErrorEquals"])
    assert "States.ALL" not in send["Retry"][0]["ErrorEquals"]
    assert send["Catch"][0]["Next"] == "MarkFailed"
