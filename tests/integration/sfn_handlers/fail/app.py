"""Test stand-in for the mark-failed task: answers the error the Catch handed it."""

from __future__ import annotations

from typing import Any

from tests.integration.sfn_handlers.ledger import LEDGER


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    LEDGER.record("fail", event)
    return {"envelope_id": event["envelope_id"], "outcome": "failed", "error": event["error"]}
