"""The template's functions as the local runtimes see them: name, code folder, handler, layers,
timeout, memory size and reserved concurrency, read from template.yaml (its Globals applied).
No moto here: worker processes and the pools read these too."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.aws_template import load_template
from local.worker import LambdaContext

ROOT = Path(__file__).resolve().parent.parent
FUNCTION_TYPE = "AWS::Serverless::Function"
LAYER_TYPE = "AWS::Serverless::LayerVersion"
DEFAULT_LAYER = ROOT / "layers" / "billbridge"


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    name: str
    code_dir: Path
    handler: str
    timeout: int
    memory_mb: int = 128  # Lambda's default MemorySize
    # ReservedConcurrentExecutions when the template sets it.
    reserved_concurrency: int | None = None
    layer_dirs: tuple[Path, ...] = field(default=(DEFAULT_LAYER,))


class FakeContext(LambdaContext):
    """The Lambda context for a handler run in-process (tests, benchmarks)."""

    def __init__(self, spec: FunctionSpec, region: str, account: str) -> None:
        super().__init__(
            function_name=spec.name,
            memory_limit_in_mb=spec.memory_mb,
            request_id=str(uuid.uuid4()),
            deadline=time.time() + spec.timeout,
            region=region,
            account=account,
        )


def _resolve_name(logical_id: str, props: dict[str, Any], stack_name: str) -> str:
    name = props.get("FunctionName")
    if isinstance(name, str):
        return name
    if isinstance(name, dict) and "Fn::Sub" in name and isinstance(name["Fn::Sub"], str):
        return name["Fn::Sub"].replace("${AWS::StackName}", stack_name)
    return f"{stack_name}-{logical_id}"


def _layer_dirs(layers: Any, resources: dict[str, Any]) -> tuple[Path, ...]:
    """Each `!Ref` to a layer of the template is its ContentUri (SAM ships that folder as the
    layer's `python/`, so it goes on sys.path as it is)."""
    found = []
    for layer in layers or []:
        ref = layer.get("Ref") if isinstance(layer, dict) else None
        resource = resources.get(ref) if isinstance(ref, str) else None
        if isinstance(resource, dict) and resource.get("Type") == LAYER_TYPE:
            found.append((ROOT / str(resource["Properties"]["ContentUri"])).resolve())
    return tuple(found) or (DEFAULT_LAYER,)


def function_specs(
    stack_name: str = "billbridge", template: Mapping[str, Any] | None = None
) -> dict[str, FunctionSpec]:
    template = load_template() if template is None else template
    resources = template["Resources"]
    globals_fn = template.get("Globals", {}).get("Function", {})
    specs: dict[str, FunctionSpec] = {}
    for logical_id, resource in resources.items():
        if resource.get("Type") != FUNCTION_TYPE:
            continue
        props = resource.get("Properties", {})

        def prop(name: str, default: Any, props: dict[str, Any] = props) -> Any:
            return props.get(name, globals_fn.get(name, default))

        reserved = prop("ReservedConcurrentExecutions", None)
        specs[logical_id] = FunctionSpec(
            logical_id=logical_id,
            name=_resolve_name(logical_id, props, stack_name),
            code_dir=(ROOT / str(props["CodeUri"])).resolve(),
            handler=str(prop("Handler", "app.lambda_handler")),
            timeout=int(prop("Timeout", 3)),
            memory_mb=int(prop("MemorySize", 128)),
            reserved_concurrency=int(reserved) if reserved is not None else None,
            layer_dirs=_layer_dirs(prop("Layers", []), resources),
        )
    return specs
