"""The send workflow's tasks (S3-S5, P1): send one envelope, or record why it failed.

Step Functions calls these from statemachines/send_envelopes.asl.json. Errors leave with their
class names (SesThrottled, TransientSendError), which the state machine's Retry matches.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from billbridge.bootstrap import send_steps
from billbridge.metrics import handler_metrics

logger = Logger()
tracer = Tracer()
metrics = handler_metrics()


class SendStep(BaseModel):
    model_config = ConfigDict(extra="ignore")

    firm_id: str = Field(min_length=1)
    batch_id: str = Field(min_length=1)
    envelope_id: str = Field(min_length=1)
    claim_token: str = Field(min_length=8)


class StepError(BaseModel):
    model_config = ConfigDict(extra="ignore")

    Error: str = "Error"
    Cause: str | None = None


class FailStep(SendStep):
    error: StepError = StepError()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def send_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = parse(event=event, model=SendStep)
    result = send_steps().send_step(step.firm_id, step.envelope_id, step.claim_token)
    metrics.add_metric(name=f"Envelope_{result['outcome']}", unit=MetricUnit.Count, value=1)
    return result


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def fail_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = parse(event=event, model=FailStep)
    reason = _reason(step.error)
    metrics.add_metric(name="EnvelopeFailed", unit=MetricUnit.Count, value=1)
    logger.warning("envelope failed", extra={"envelope_id": step.envelope_id, "reason": reason})
    return send_steps().fail_step(step.firm_id, step.envelope_id, step.claim_token, reason)


def _reason(error: StepError) -> str:
    """Step Functions gives the Lambda error as {"Error", "Cause"}, Cause being a JSON string
    of {"errorMessage", "errorType", ...}: keep what a billing clerk can read."""
    message = None
    if error.Cause:
        try:
            cause = json.loads(error.Cause)
            message = cause.get("errorMessage") if isinstance(cause, dict) else None
        except ValueError:
            message = error.Cause
    return f"{error.Error}: {message}" if message else error.Error
