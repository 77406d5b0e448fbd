"""The reminders schedule (X3): EventBridge's tick claims every reminder slot due, for every
connected firm, and starts the send workflow for each (services/reminders.py)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from billbridge.bootstrap import reminders_service
from billbridge.metrics import handler_metrics

logger = Logger()
tracer = Tracer()
metrics = handler_metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parse(event=event, model=EventBridgeModel)  # only the schedule invokes it
    result = reminders_service().tick()
    metrics.add_metric(name="RemindersStarted", unit=MetricUnit.Count, value=result.reminders)
    return {"firms": result.firms, "reminders": result.reminders}
