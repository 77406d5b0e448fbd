"""The payment plans' schedule (issue 12): EventBridge ticks this function; each tick charges
every active plan's installment (or retry) due on or before the tick's day, off-session on
the client's saved method. A duplicate or overlapping tick charges nothing twice: each attempt
is claimed on the plan first and asked of Stripe with its own idempotency keys."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from billbridge.bootstrap import tick_plans
from billbridge.metrics import handler_metrics

logger = Logger()
tracer = Tracer()
metrics = handler_metrics()


def tick_day(event: dict[str, Any]) -> Any:
    """The scheduled event's own time (EventBridge's `time`; the local stack's clock sets it),
    so a retried or late tick still charges what was due on its day."""
    raw = event.get("time") if isinstance(event, dict) else None
    try:
        moment = datetime.fromisoformat(str(raw).replace("Z", "+00:00")) if raw else None
    except ValueError:
        moment = None
    return (moment or datetime.now(UTC)).astimezone(UTC).date()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    day = tick_day(event)
    counts = tick_plans().run_due(day)
    metrics.add_metric(name="InstallmentsCharged", unit=MetricUnit.Count, value=counts["charged"])
    return {"day": day.isoformat(), **counts}
