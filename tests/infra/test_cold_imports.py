"""A handler's cold import loads its own function's code and not the services of the others
(issue 14: cold imports within 1.3x of boto3 + Powertools, measured by `python -m bench --only
cold`). Each handler is imported in a fresh interpreter as Lambda imports it (its code dir and
the layer on the path), and what it loaded is read from sys.modules: no timing here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from local.lambdas import function_specs
from local.provision import FAKE_AWS_ENV, POWERTOOLS_ENV

ROOT = Path(__file__).resolve().parents[2]

SERVICES = "billbridge.services."
# Services any handler may load at import: those whose names its routes' signatures or its
# own module need (a page size, a parser, the pay page's views), never one it only builds.
ALLOWED = {
    "api": {"accounts", "invoices", "onboarding", "payment_accounts"},
    "pay": {"bill_pdfs", "payment_accounts", "payments", "plans", "ports"},
}
# Powertools' OpenAPI models: only the OpenAPI document needs them, never a request.
OPENAPI_MODELS = "aws_lambda_powertools.event_handler.openapi.models"


def _loaded(code_dir: Path, module: str) -> set[str]:
    env = {
        **os.environ,
        **FAKE_AWS_ENV,
        **POWERTOOLS_ENV,
        "PYTHONPATH": f"{code_dir}:{ROOT / 'layers' / 'billbridge'}:{ROOT}",
    }
    code = f"import json, sys; import {module}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def _handlers() -> dict[str, tuple[Path, str]]:
    found: dict[str, tuple[Path, str]] = {}
    for spec in function_specs().values():
        found.setdefault(spec.code_dir.name, (spec.code_dir, spec.handler.rpartition(".")[0]))
    return found


HANDLERS = _handlers()


def test_given_the_template_then_every_handler_is_checked() -> None:
    assert {"api", "pay", "sync_worker", "stripe_webhook", "clio_webhook"} <= set(HANDLERS)


@pytest.mark.parametrize("name", sorted(HANDLERS))
def test_given_a_handler_when_imported_cold_then_it_loads_no_service_it_does_not_need(
    name: str,
) -> None:
    code_dir, module = HANDLERS[name]
    loaded = _loaded(code_dir, module)
    assert "billbridge.bootstrap" in loaded  # the composition root itself is imported
    services = {m.removeprefix(SERVICES) for m in loaded if m.startswith(SERVICES)}
    assert services <= ALLOWED.get(name, set()), f"{name} loads {services}"
    assert OPENAPI_MODELS not in loaded


def test_given_the_api_then_its_first_invoices_page_builds_only_what_the_page_needs() -> None:
    """The API's services are built on first use: a default page builds the invoices and sync
    services (with the sync's webhook keeping), and imports none of the payment, plan,
    sending, envelope or reminder services."""
    code_dir, _ = HANDLERS["api"]
    env = {
        **os.environ,
        **FAKE_AWS_ENV,
        **POWERTOOLS_ENV,
        "PYTHONPATH": f"{code_dir}:{ROOT / 'layers' / 'billbridge'}:{ROOT}",
    }
    code = (
        "import json, sys\n"
        "from tests.fakes import FakeWorld\n"
        "api = FakeWorld().api()\n"
        "api.invoices.list('firm-a', states=None, page_size=10, cursor=None)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert f"{SERVICES}invoices" in loaded and f"{SERVICES}sync" in loaded
    for unneeded in ("payments", "plans", "saved_methods", "sending", "envelopes", "reminders"):
        assert f"{SERVICES}{unneeded}" not in loaded
