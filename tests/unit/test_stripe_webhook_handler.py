"""The Stripe webhook's handler (functions/stripe_webhook/app.py) on fakes: when SES throttles a
receipt, the event is recorded and the answer is a 503 so Stripe delivers it again; the retry
(a duplicate, recording nothing) sends the receipt, once."""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from billbridge.domain.errors import SesThrottled
from tests.unit.pay_harness import Pay

ROOT = Path(__file__).resolve().parents[2]


def _handler_module() -> Any:
    spec = importlib.util.spec_from_file_location(
        "stripe_webhook_app", ROOT / "functions" / "stripe_webhook" / "app.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["stripe_webhook_app"] = module
    spec.loader.exec_module(module)
    return module


class _NoTracer:
    """X-Ray's recorder opens a UDP socket when made; unit tests run with sockets blocked."""

    def capture_lambda_handler(self, handler: Any) -> Any:
        return handler


@pytest.fixture
def handler(monkeypatch: pytest.MonkeyPatch) -> Any:
    import aws_lambda_powertools

    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    monkeypatch.setattr(aws_lambda_powertools, "Tracer", _NoTracer)
    return _handler_module()


def api_event(stripe_event: dict[str, Any]) -> dict[str, Any]:
    sample = json.loads(
        (ROOT / "events" / "stripe_webhook" / "checkout_completed.json").read_text()
    )
    event = copy.deepcopy(sample)
    event["body"] = json.dumps(stripe_event)
    return event


def test_given_ses_throttles_a_receipt_then_503_and_stripes_retry_sends_it_once(
    handler: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pay = Pay()
    hook = replace(pay.world.stripe_webhook(), verify=lambda raw, signature: json.loads(raw))
    monkeypatch.setattr(handler, "stripe_webhook", lambda: hook)
    token = pay.link("pl_1", pay.bill(1, 8_000))
    (completed,) = pay.world.stripe.pay(pay.checkout(token, [1]))
    pay.world.mailer.refuse_next = [SesThrottled("slow down")]

    first = handler.app.resolve(api_event(completed), None)
    assert first["statusCode"] == 503, first["body"]
    assert json.loads(first["body"])["error"]["code"] == "receipt_delayed"
    assert pay.money(1).paid_gl_cents == 8_000  # the payment itself is recorded
    assert pay.world.mailer.sent == []

    again = handler.app.resolve(api_event(completed), None)
    assert again["statusCode"] == 200 and json.loads(again["body"])["outcome"] == "duplicate"
    handler.app.resolve(api_event(completed), None)
    (receipt,) = pay.world.mailer.sent
    assert receipt.subject.startswith("Receipt: your payment of $80.00")


def test_given_account_updated_through_the_handler_then_audited_once_by_stripe_with_the_change(
    handler: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime

    from tests.unit.test_payment_accounts import FIRM, onboarded_world

    world, _, stripe_id = onboarded_world()
    hook = replace(world.stripe_webhook(), verify=lambda raw, signature: json.loads(raw))
    monkeypatch.setattr(handler, "stripe_webhook", lambda: hook)
    world.clock.advance(seconds=5)
    event = world.stripe.onboard(stripe_id)

    first = handler.app.resolve(api_event(event), None)
    assert first["statusCode"] == 200 and json.loads(first["body"])["outcome"] == "applied"
    again = handler.app.resolve(api_event(event), None)  # Stripe delivers it again
    assert again["statusCode"] == 200, again["body"]

    (entry,) = [e for e in world.audit_log.entries if e.firm_id == FIRM]
    assert entry.action.value == "payment_account.updated"
    assert entry.actor.user_id == "stripe" and entry.actor.email is None
    assert entry.at == datetime.fromtimestamp(event["created"], UTC)
    assert entry.object["account"] == "trust" and entry.object["event_id"] == event["id"]
    assert entry.object["stripe_account_id"] == stripe_id
    assert entry.object["status"] == {"from": "pending", "to": "ready"}
    assert entry.object["requirements"]["to"] == []
    assert entry.object["requirements"]["from"]  # what Stripe still needed before
