"""Test stand-in for the send task: "e2" is throttled twice, "e3" and "e9" fail for good, others
send.

Errors leave by class name, as Lambda reports them (`errorType`), so the state machine's Retry
and Catch see `SesThrottled` and `ValueError`."""

from __future__ import annotations

import time
from typing import Any

from tests.integration.sfn_handlers.ledger import LEDGER

# Long enough that iterations running at once overlap, so MaxConcurrency can be observed.
WORK_SECONDS = 0.05


class SesThrottled(Exception):
    """Named as the real adapter's error, which the ASL's Retry matches by name."""


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    attempt = LEDGER.record("send", event)
    LEDGER.enter()
    try:
        time.sleep(WORK_SECONDS)
        if event["envelope_id"] == "e2" and attempt <= 2:
            raise SesThrottled(f"Maximum sending rate exceeded (attempt {attempt})")
        if event["envelope_id"] in ("e3", "e9"):
            raise ValueError(f"envelope {event['envelope_id']} has no recipient")
        return {"envelope_id": event["envelope_id"], "outcome": "sent", "attempt": attempt}
    finally:
        LEDGER.leave()
