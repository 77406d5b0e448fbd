"""Stripe's webhooks (P4): the signature verified over the raw body, then each event recorded
once, whatever order it arrives in. A bad signature is a 401 and records nothing; a body that
is not UTF-8 (no Stripe event is) is a 400."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Header
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

from billbridge.api_errors import (
    error_responses,
    refuse_other_methods,
    register_error_handlers,
)
from billbridge.bootstrap import stripe_webhook
from billbridge.domain.errors import ReceiptDelayed, SesThrottled, Unauthenticated
from billbridge.metrics import handler_metrics

logger = Logger()
tracer = Tracer()
metrics = handler_metrics()

app = APIGatewayRestResolver(enable_validation=True)
register_error_handlers(app)
refuse_other_methods(app, "/webhooks/stripe", ["POST"])


class StripeEventOut(BaseModel):
    id: str = Field(description="The event's id")
    type: str = Field(description="The event's type, such as checkout.session.completed")
    outcome: str = Field(description="What recording it did: recorded, duplicate, ignored, ...")


# The body is read raw (the signature covers its exact bytes), so it is documented here rather
# than parsed by a model.
STRIPE_EVENT_BODY = {
    "requestBody": {
        "required": True,
        "description": "A Stripe event object, as Stripe sent it",
        "content": {
            content_types.APPLICATION_JSON: {
                "schema": {
                    "type": "object",
                    "required": ["id", "type", "data"],
                    "properties": {
                        "id": {"type": "string"},
                        "type": {"type": "string"},
                        "data": {"type": "object"},
                    },
                }
            }
        },
    }
}


@app.post(
    "/webhooks/stripe",
    summary="Stripe's events (checkout, refunds, disputes), signed",
    tags=["webhooks"],
    responses={
        200: {"description": "The event, recorded once (and its receipt emailed once)"},
        **error_responses(400, 401, 422, 503),
    },
    openapi_extensions=STRIPE_EVENT_BODY,
)
def stripe_event(
    stripe_signature: Annotated[
        str | None,
        Header(
            alias="Stripe-Signature",
            max_length=2000,
            description="Stripe's signature of the body; without a valid one the answer is 401",
        ),
    ] = None,
) -> Response[StripeEventOut]:
    event = app.current_event
    # The signature covers the body as Stripe sent it (decoded_body undoes API Gateway's base64).
    raw = (event.decoded_body or "").encode("utf-8")
    webhook = stripe_webhook()
    try:
        verified = webhook.verify(raw, stripe_signature)
    except Unauthenticated as exc:
        # The signature is the sender's credential: without a valid one the caller is not
        # Stripe (401, as for Clio's webhooks). Stripe retries any non-2xx, so a genuine event
        # whose signature we failed to check is delivered again.
        metrics.add_metric(name="StripeWebhookRejected", unit=MetricUnit.Count, value=1)
        raise Unauthenticated(exc.message, field="Stripe-Signature", code=exc.code) from None
    outcome = webhook.events.handle(verified)
    logger.info(
        "stripe event",
        extra={"event_id": outcome.event_id, "type": outcome.type, "outcome": outcome.outcome},
    )
    metrics.add_metric(
        name=f"StripeEvent{outcome.outcome.capitalize()}", unit=MetricUnit.Count, value=1
    )
    try:
        sent = webhook.receipts.send_for(outcome.touched)
    except SesThrottled:
        # The event is recorded; only its receipt waits. Stripe retries a non-2xx, and the
        # retry (a duplicate, which records nothing) sends the receipt. Raised, not returned:
        # the route's answer model is the event's outcome, not the error shape.
        metrics.add_metric(name="ReceiptThrottled", unit=MetricUnit.Count, value=1)
        raise ReceiptDelayed(
            "The event was recorded; its receipt email could not be sent yet. Send it again."
        ) from None
    for kind in sent:
        metrics.add_metric(name=f"Receipt_{kind.value}", unit=MetricUnit.Count, value=1)
    return Response(
        status_code=200,
        content_type=content_types.APPLICATION_JSON,
        body=StripeEventOut(id=outcome.event_id, type=outcome.type, outcome=outcome.outcome),
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
