"""Schemathesis against both OpenAPI documents (docs/openapi.json, the firm API, and
docs/openapi-public.json, the pay page and webhooks) on the local stack over HTTP: every check
(server errors, status codes, content types, response schemas, schema-violating input refused,
schema-valid input accepted, undeclared methods, auth enforced, stateful links), a bounded
number of examples with a fixed seed, and zero failures.

Each run gets a firm of its own with bills in Clio, so what it edits (settings, drafts) is no
other test's. The hooks in tests/e2e/schemathesis_hooks.py teach the generator what the
documents say that JSON Schema cannot spell (the templates' grammar, money as integer literals).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SCHEMATHESIS = Path(sys.executable).parent / "st"
# Bounded: per operation, at most this many generated cases in each phase (the coverage phase
# adds its own fixed set); a fixed seed makes the run the same every time.
MAX_EXAMPLES = 15
SEED = 20261125


@pytest.mark.timeout(600)
@pytest.mark.parametrize("document", ["openapi.json", "openapi-public.json"])
def test_given_an_openapi_document_when_schemathesis_runs_every_check_then_nothing_fails(
    new_firm, local_stack, document, tmp_path
):
    firm, _ = new_firm(bills=20)
    command = [
        str(SCHEMATHESIS),
        "run",
        str(ROOT / "docs" / document),
        "--url",
        local_stack.api_url,
        "--header",
        f"Authorization: Bearer dev-{firm.firm_id}",
        "--checks",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "2",
        "--request-timeout",
        "60",
    ]
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.e2e.schemathesis_hooks",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "billbridge"), str(ROOT)]),
        "NO_COLOR": "1",
    }
    # Run from a scratch folder: schemathesis keeps its cache (.schemathesis/) where it runs.
    run = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=540, check=False
    )
    report = run.stdout[-30_000:] + run.stderr[-5_000:]
    assert run.returncode == 0, f"schemathesis found failures:\n{report}"
    assert "Tested:" in run.stdout, report
