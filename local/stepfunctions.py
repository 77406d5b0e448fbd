"""The template's state machines in moto: their ASL files with DefinitionSubstitutions applied
(function ARNs resolved to the functions `LocalLambdas` registered), so the ASL that ships is
the ASL the tests and the local stack run.

moto runs executions only when told to: in-process with `mock_aws(config=EXECUTE_IN_PROCESS)`,
as a server after `enable_execution_in_server`. Its interpreter sleeps every Retry interval for
real (`time.sleep` in moto's retrier), so tests that exercise retries shrink them."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from local.aws_template import load_template
from local.lambdas import LocalLambdas

ROOT = Path(__file__).resolve().parent.parent
STATE_MACHINE_TYPE = "AWS::Serverless::StateMachine"
ACCOUNT = "123456789012"
REGION = "us-east-1"
EXECUTE_IN_PROCESS: dict[str, Any] = {"stepfunctions": {"execute_state_machine": True}}


def _resolve(
    value: Any, lambdas: LocalLambdas, template: Mapping[str, Any], stack_name: str
) -> str:
    if isinstance(value, bool):  # before int: bool is an int, and ASL spells it lower-case
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    if isinstance(value, Mapping) and "Fn::GetAtt" in value:
        logical_id, attribute = value["Fn::GetAtt"]
        if attribute == "Arn" and logical_id in lambdas.specs:
            name = lambdas.specs[logical_id].name
            return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    if isinstance(value, Mapping) and "Ref" in value:
        ref = value["Ref"]
        if ref in lambdas.specs:
            return lambdas.specs[ref].name
        parameter = (template.get("Parameters") or {}).get(ref)
        if isinstance(parameter, Mapping) and "Default" in parameter:
            return _resolve(parameter["Default"], lambdas, template, stack_name)
    if isinstance(value, Mapping) and isinstance(value.get("Fn::Sub"), str):
        pseudo = {"AWS::StackName": stack_name, "AWS::Region": REGION, "AWS::AccountId": ACCOUNT}
        text: str = value["Fn::Sub"]
        for name, replacement in pseudo.items():
            text = text.replace("${" + name + "}", replacement)
        if "${" not in text:
            return text
    raise ValueError(f"cannot resolve substitution {value!r} locally")


def definition(
    resource: Mapping[str, Any],
    lambdas: LocalLambdas,
    template: Mapping[str, Any] | None = None,
    stack_name: str = "billbridge",
) -> str:
    """The ASL text of a state machine resource, substitutions applied."""
    props = resource["Properties"]
    text = (ROOT / str(props["DefinitionUri"])).read_text()
    for name, value in (props.get("DefinitionSubstitutions") or {}).items():
        text = text.replace("${" + name + "}", _resolve(value, lambdas, template or {}, stack_name))
    json.loads(text)  # what moto receives must be JSON, as Step Functions requires
    return text


def create_state_machines(
    sfn_client: Any,
    lambdas: LocalLambdas,
    *,
    role_arn: str,
    stack_name: str,
    template: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """Create every state machine of the template (none is fine); answer {logical_id: ARN}."""
    template = template if template is not None else load_template()
    created: dict[str, str] = {}
    for logical_id, resource in (template.get("Resources") or {}).items():
        if not isinstance(resource, Mapping) or resource.get("Type") != STATE_MACHINE_TYPE:
            continue
        answer = sfn_client.create_state_machine(
            name=f"{stack_name}-{logical_id}",
            definition=definition(resource, lambdas, template, stack_name),
            roleArn=role_arn,
        )
        created[logical_id] = answer["stateMachineArn"]
    return created


def enable_execution_in_server(aws_url: str) -> None:
    """moto's server only records executions until told to run them.

    Its interpreter calls Lambda (and the other services) back at localhost:$MOTO_PORT (5000
    when unset), read when a task runs: set here for a server running in this process
    (`ThreadedMotoServer`); a server in another process needs it in its own environment."""
    port = urlsplit(aws_url).port
    if port is not None:
        os.environ["MOTO_PORT"] = str(port)
    answer = requests.post(f"{aws_url}/moto-api/config", json=EXECUTE_IN_PROCESS, timeout=10)
    answer.raise_for_status()
