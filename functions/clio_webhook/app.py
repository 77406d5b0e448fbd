"""Clio's bill webhooks (C4, X1): the activation handshake, then signed deliveries."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from billbridge.api_errors import register_error_handlers
from billbridge.bootstrap import clio_webhook_service
from billbridge.metrics import handler_metrics

logger = Logger()
tracer = Tracer()
metrics = handler_metrics()

app = APIGatewayRestResolver(enable_validation=True)
register_error_handlers(app)


@app.post("/webhooks/clio")
def clio_webhook(firm_id: Annotated[str | None, Query()] = None) -> Response[Any]:
    event = app.current_event
    hook_secret = event.headers.get("X-Hook-Secret")  # Powertools' headers ignore case
    if hook_secret:
        # Activation handshake: echoing the secret back is what Clio asks; it reveals nothing
        # the caller did not send. The secret we verify with comes from the subscription.
        metrics.add_metric(name="ClioWebhookHandshake", unit=MetricUnit.Count, value=1)
        return Response(status_code=200, headers={"X-Hook-Secret": hook_secret}, body="")
    signature = event.headers.get("X-Hook-Signature")
    raw = (event.decoded_body or "").encode("utf-8")
    result = clio_webhook_service().deliver(firm_id, raw, signature)
    metrics.add_metric(
        name="ClioWebhookApplied" if result.applied else "ClioWebhookStale",
        unit=MetricUnit.Count,
        value=1,
    )
    return Response(
        status_code=200,
        content_type=content_types.APPLICATION_JSON,
        body={"event": result.event, "bill_id": str(result.bill_id), "applied": result.applied},
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
