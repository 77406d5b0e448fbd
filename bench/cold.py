"""Cold import of every handler against boto3 + Powertools, in fresh interpreters.

The CPU time of the import (`time.process_time()` in the child), best of several: on a busy
machine the wall clock measures the neighbours, the CPU time mostly the import.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys

from bench.common import ROOT, Row
from local.lambdas import function_specs

TARGET = 1.3
# "boto3 plus Powertools" as a handler of ours uses them: the utilities instantiated, a
# validating resolver with its parameter types. What remains above it is our own code.
BASELINE = (
    "import boto3; from aws_lambda_powertools import Logger, Metrics, Tracer; "
    "Logger(); Metrics(); Tracer(); "
    "from aws_lambda_powertools.event_handler import APIGatewayRestResolver; "
    "from aws_lambda_powertools.event_handler.openapi.params import Query; "
    "APIGatewayRestResolver(enable_validation=True)"
)


def import_time(statement: str, env: dict[str, str]) -> float:
    code = f"import time; t = time.process_time(); {statement}; print(time.process_time() - t)"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def cold_imports(repeat: int = 7) -> list[Row]:
    from local.provision import FAKE_AWS_ENV, POWERTOOLS_ENV

    env = {
        **os.environ,
        **FAKE_AWS_ENV,
        **POWERTOOLS_ENV,
        "PYTHONPATH": f"{ROOT / 'layers' / 'billbridge'}:{ROOT}",
        # Lambda's: the tracer is on there, and importing it is part of a cold start.
        "POWERTOOLS_TRACE_DISABLED": "false",
    }
    modules: dict[str, tuple[str, dict[str, str]]] = {}  # name -> (statement, env)
    for spec in function_specs().values():
        module = spec.handler.rpartition(".")[0]
        name = spec.code_dir.name  # two handlers of one module share its import
        path = f"{spec.code_dir}:{env['PYTHONPATH']}"
        modules.setdefault(name, (f"import {module}", {**env, "PYTHONPATH": path}))
    # Interleaved rounds, best of each: a busy spell of the machine weighs on all alike.
    best = {name: math.inf for name in ["baseline", *modules]}
    for _ in range(repeat):
        best["baseline"] = min(best["baseline"], import_time(BASELINE, env))
        for name, (statement, module_env) in modules.items():
            best[name] = min(best[name], import_time(statement, module_env))
    baseline = best["baseline"]
    return [
        (
            f"Cold import of functions/{name}",
            f"{best[name] * 1000:.0f} ms",
            f"{best[name] / baseline:.2f}x boto3+Powertools ({baseline * 1000:.0f} ms): "
            + ("met" if best[name] / baseline <= TARGET else "MISSED")
            + f" (target <= {TARGET}x)",
        )
        for name in modules
    ]
