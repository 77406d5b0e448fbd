"""`make lint` as part of the suite: ruff and mypy clean, so style drift fails CI."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def test_given_the_tree_when_ruff_checks_it_then_nothing_is_found():
    result = subprocess.run(
        [str(BIN / "ruff"), "check", "."], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_given_the_shared_package_when_mypy_checks_it_then_it_is_clean():
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "layers/billbridge/billbridge"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
