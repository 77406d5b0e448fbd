"""Clio's bill webhooks (C4, X1): the activation handshake, then signed deliveries."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Header, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

from billbridge.api_errors import error_responses, refuse_other_methods, register_error_handlers
from billbridge.bootstrap import clio_webhook_service
from billbridge.metrics import handler_metrics

logger = Logger()
tracer = Tracer()
metrics = handler_metrics()

app = APIGatewayRestResolver(enable_validation=True)
register_error_handlers(app)
refuse_other_methods(app, "/webhooks/clio", ["POST"])


class ClioWebhookOut(BaseModel):
    event: str = Field(description="Clio's event (created, updated, deleted) or handshake")
    bill_id: str | None = Field(description="The bill the delivery was about")
    applied: bool = Field(
        description="Whether it changed our copy of the bill (false: older news), or for a "
        "handshake, that the webhook is activated"
    )


# The body is read raw (the signature covers its exact bytes), so it is documented here. Any
# JSON: a handshake's body is not read, and a delivery's is read only once its signature holds.
CLIO_DELIVERY_BODY = {
    "requestBody": {
        "description": "Clio's delivery, {data: the bill's fields, meta: {event}}; a handshake's "
        "body is not read",
        "content": {content_types.APPLICATION_JSON: {"schema": {}}},
    }
}


@app.post(
    "/webhooks/clio",
    summary="Clio's bill webhooks: the activation handshake, then signed deliveries",
    tags=["webhooks"],
    responses={
        200: {"description": "Delivered (or activated)"},
        **error_responses(400, 401, 404, 422),
    },
    openapi_extensions=CLIO_DELIVERY_BODY,
)
def clio_webhook(
    firm_id: Annotated[
        str,
        Query(
            pattern=r"^[A-Za-z0-9_.-]{1,64}$",
            description="The firm the webhook was registered for (in the address we gave Clio)",
        ),
    ],
    hook_secret: Annotated[
        str | None,
        Header(alias="X-Hook-Secret", max_length=500, description="Handshake: echoed back"),
    ] = None,
    signature: Annotated[
        str | None,
        Header(
            alias="X-Hook-Signature",
            max_length=500,
            description="HMAC-SHA256 of the body; without a valid one the answer is 401",
        ),
    ] = None,
) -> Response[ClioWebhookOut]:
    if hook_secret:
        # Activation handshake: echoing the secret back is what Clio asks; it reveals nothing
        # the caller did not send. The secret we verify with comes from the subscription.
        metrics.add_metric(name="ClioWebhookHandshake", unit=MetricUnit.Count, value=1)
        return Response(
            status_code=200,
            content_type=content_types.APPLICATION_JSON,
            body=ClioWebhookOut(event="handshake", bill_id=None, applied=True),
            headers={"X-Hook-Secret": hook_secret},
        )
    raw = (app.current_event.decoded_body or "").encode("utf-8")
    result = clio_webhook_service().deliver(firm_id, raw, signature)
    metrics.add_metric(
        name="ClioWebhookApplied" if result.applied else "ClioWebhookStale",
        unit=MetricUnit.Count,
        value=1,
    )
    return Response(
        status_code=200,
        content_type=content_types.APPLICATION_JSON,
        body=ClioWebhookOut(
            event=result.event, bill_id=str(result.bill_id), applied=result.applied
        ),
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
