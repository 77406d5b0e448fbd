"""Who is calling: the principal (user, email, firm, role) comes only from the API Gateway
authorizer's claims (billbridge/domain/access.py), and every signed-in route's role is checked
once, centrally, by `enforce_roles` before the route runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver, Router

from billbridge.domain.access import (
    PUBLIC_RESOURCES,
    Principal,
    authorize,
    principal_from_claims,
)
from billbridge.domain.oauth_state import ConnectingUser

FIRM_CLAIM = "custom:firm_id"


def _claims(router: Router | ApiGatewayResolver) -> dict[str, Any]:
    authorizer = router.current_event.request_context.authorizer
    return dict(authorizer.claims or {}) if authorizer is not None else {}


def principal_of(router: Router | ApiGatewayResolver) -> Principal:
    return principal_from_claims(_claims(router))


def firm_id_of(router: Router) -> str:
    return principal_of(router).firm_id


def user_of(router: Router) -> ConnectingUser:
    """The signed-in user: the token's `sub` (and email, when the token carries one)."""
    principal = principal_of(router)
    return ConnectingUser(user_id=principal.user_id, email=principal.email)


def enforce_roles(
    app: ApiGatewayResolver, next_middleware: Callable[[ApiGatewayResolver], Response[Any]]
) -> Response[Any]:
    """The route-to-role table, applied to every signed-in route (a 401 without a principal,
    a 403 `forbidden` for a role the table does not allow)."""
    event = app.current_event
    if event.resource not in PUBLIC_RESOURCES:
        authorize(principal_of(app), event.http_method, event.resource)
    return next_middleware(app)
