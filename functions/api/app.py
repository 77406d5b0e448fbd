"""The firm API: one Powertools REST resolver, a router per resource (api.md)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from billbridge.api_errors import register_error_handlers
from routes import (
    accounts,
    clio,
    envelopes,
    invoices,
    onboarding,
    payment_accounts,
    payments,
    plans,
    settings,
    sync,
)
from routes.context import enforce_roles

logger = Logger()
tracer = Tracer()

app = APIGatewayRestResolver(enable_validation=True)
register_error_handlers(app)
# Roles (api.md): one table (billbridge/domain/access.py), checked before every route.
app.use(middlewares=[enforce_roles])
for module in (
    invoices,
    sync,
    settings,
    clio,
    envelopes,
    payments,
    plans,
    payment_accounts,
    onboarding,
    accounts,
):
    app.include_router(module.router)

OPENAPI_TITLE = "BillBridge firm API"
OPENAPI_VERSION = "1.0.0"


def security_schemes() -> dict[str, Any]:
    """Every route needs a firm user's Cognito ID token (the API's authorizer), unless it says
    otherwise (the OAuth callback). Powertools' OpenAPI models are imported only here: serving
    a request never needs them, and they are a good part of a cold import."""
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    return {
        "firmUser": HTTPBearer(
            bearerFormat="JWT",
            description="A firm user's Cognito ID token (claim custom:firm_id). The local "
            "stack also takes dev-<firm_id>, and nowhere else.",
        )
    }


def openapi_document() -> str:
    return app.get_openapi_json_schema(
        title=OPENAPI_TITLE,
        version=OPENAPI_VERSION,
        security_schemes=security_schemes(),
        security=[{"firmUser": []}],
    )


@app.get("/openapi.json", include_in_schema=False)
def openapi() -> Response[str]:
    return Response(
        status_code=200, content_type=content_types.APPLICATION_JSON, body=openapi_document()
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
