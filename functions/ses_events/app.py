"""SES's events for sent envelopes (S5): send, delivery, bounce and complaint, arriving through
EventBridge from the SES configuration set, recorded on the envelope."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict

from billbridge.bootstrap import delivery_events
from billbridge.metrics import handler_metrics

logger = Logger()
tracer = Tracer()
metrics = handler_metrics()


class SesMail(BaseModel):
    model_config = ConfigDict(extra="ignore")

    messageId: str
    tags: dict[str, list[str]] = {}


class SesEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    eventType: str
    mail: SesMail


class SesEventBridgeModel(EventBridgeModel):
    detail: SesEvent


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parsed = parse(event=event, model=SesEventBridgeModel)
    detail = parsed.detail
    tags = {name: values[0] for name, values in detail.mail.tags.items() if values}
    changed = delivery_events().ses_event(detail.eventType, detail.mail.messageId, tags)
    metrics.add_metric(name=f"Ses{detail.eventType}", unit=MetricUnit.Count, value=1)
    return {"event": detail.eventType, "message_id": detail.mail.messageId, "changed": changed}
