"""Stripe's webhooks (P4): the signature verified over the raw body, then each event recorded
once, whatever order it arrives in. A bad signature is a 400 and records nothing."""

from __future__ import annotations

import base64
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from billbridge.api_errors import error_response
from billbridge.bootstrap import stripe_webhook
from billbridge.domain.errors import Unauthenticated

logger = Logger()
tracer = Tracer()
metrics = Metrics()

app = APIGatewayRestResolver()


def raw_body() -> bytes:
    """The body exactly as Stripe sent it: the signature covers these bytes."""
    event = app.current_event
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        return base64.b64decode(body)
    return str(body).encode("utf-8")


@app.post("/webhooks/stripe")
def stripe_event() -> Response[Any]:
    signature = app.current_event.headers.get("Stripe-Signature") or app.current_event.headers.get(
        "stripe-signature"
    )
    webhook = stripe_webhook()
    try:
        event = webhook.verify(raw_body(), signature)
    except Unauthenticated as exc:
        # Stripe expects a 400 for a payload that fails verification (it stops retrying it).
        metrics.add_metric(name="StripeWebhookRejected", unit=MetricUnit.Count, value=1)
        return error_response(HTTPStatus.BAD_REQUEST, exc.code, exc.message, "Stripe-Signature")
    outcome = webhook.events.handle(event)
    logger.info(
        "stripe event",
        extra={"event_id": outcome.event_id, "type": outcome.type, "outcome": outcome.outcome},
    )
    metrics.add_metric(
        name=f"StripeEvent{outcome.outcome.capitalize()}", unit=MetricUnit.Count, value=1
    )
    return Response(
        status_code=200,
        content_type=content_types.APPLICATION_JSON,
        body={"id": outcome.event_id, "type": outcome.type, "outcome": outcome.outcome},
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
