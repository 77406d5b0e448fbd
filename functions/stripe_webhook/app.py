"""Stripe's webhooks (P4): the signature verified over the raw body, then each event recorded
once, whatever order it arrives in. A bad signature is a 400 and records nothing."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from billbridge.api_errors import error_response
from billbridge.bootstrap import stripe_webhook
from billbridge.domain.errors import Unauthenticated
from billbridge.metrics import handler_metrics

logger = Logger()
tracer = Tracer()
metrics = handler_metrics()

app = APIGatewayRestResolver()


@app.post("/webhooks/stripe")
def stripe_event() -> Response[Any]:
    event = app.current_event
    signature = event.headers.get("Stripe-Signature")  # Powertools' headers ignore case
    # The signature covers the body as Stripe sent it (decoded_body undoes API Gateway's base64).
    raw = (event.decoded_body or "").encode("utf-8")
    webhook = stripe_webhook()
    try:
        verified = webhook.verify(raw, signature)
    except Unauthenticated as exc:
        # Stripe expects a 400 for a payload that fails verification (it stops retrying it).
        metrics.add_metric(name="StripeWebhookRejected", unit=MetricUnit.Count, value=1)
        return error_response(HTTPStatus.BAD_REQUEST, exc.code, exc.message, "Stripe-Signature")
    outcome = webhook.events.handle(verified)
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
