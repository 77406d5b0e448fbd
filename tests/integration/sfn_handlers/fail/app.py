"""Test stand-in for the mark-failed task: answers the error the Catch handed it; for "e9" it
fails itself every time (as when the table cannot be written), to show that one envelope's
unrecordable failure does not stop the others."""

from __future__ import annotations

from typing import Any

from tests.integration.sfn_handlers.ledger import LEDGER


class ClientError(Exception):
    """Named as botocore's error, which is what a DynamoDB failure leaves the task as."""


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    LEDGER.record("fail", event)
    if event["envelope_id"] == "e9":
        raise ClientError("the table could not be written")
    return {"envelope_id": event["envelope_id"], "outcome": "failed", "error": event["error"]}
