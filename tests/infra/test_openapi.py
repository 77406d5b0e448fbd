"""The committed OpenAPI document is the one the code generates (`make openapi` refreshes it)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_given_the_code_when_its_openapi_document_is_generated_then_it_matches_the_committed_one():
    # A fresh interpreter: the document depends on which modules the API imports, nothing else.
    generated = subprocess.run(
        [sys.executable, "-m", "local.openapi"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    committed = (ROOT / "docs" / "openapi.json").read_text()
    assert json.loads(generated) == json.loads(committed), (
        "run `make openapi` and commit the result"
    )
