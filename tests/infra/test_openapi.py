"""The committed OpenAPI document is the one the code generates (`make openapi` refreshes it)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("args", "committed_file"),
    [([], "openapi.json"), (["--public"], "openapi-public.json")],
)
def test_given_the_code_when_its_openapi_document_is_generated_then_it_matches_the_committed_one(
    args: list[str], committed_file: str
) -> None:
    # A fresh interpreter: the document depends on which modules the API imports, nothing else.
    generated = subprocess.run(
        [sys.executable, "-m", "local.openapi", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    committed = (ROOT / "docs" / committed_file).read_text()
    assert json.loads(generated) == json.loads(committed), (
        "run `make openapi` and commit the result"
    )
