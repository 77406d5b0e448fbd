"""Who is calling: the principal (user, email, firm, role) comes from the API Gateway
authorizer's claims (billbridge/domain/access.py), checked against the firm's member record on
every signed-in request (a removed user is refused, a demoted admin acts as staff, before their
token expires), and every signed-in route's role is checked once, centrally, by
`enforce_roles` before the route runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver, Router

from billbridge.bootstrap import account_services
from billbridge.domain.access import (
    PUBLIC_RESOURCES,
    Principal,
    authorize,
    principal_from_claims,
)
from billbridge.domain.oauth_state import ConnectingUser

if TYPE_CHECKING:
    from billbridge.services.ports import FirmHeader

FIRM_CLAIM = "custom:firm_id"
# Where enforce_roles leaves the request's principal for the route (the resolver's context is
# cleared after each request).
PRINCIPAL = "principal"
# Where it leaves the firm header, read with the caller's member record in one request, for a
# route of HEADER_ROUTES (which reads the header anyway): its page then costs no other read.
HEADER = "firm_header"
HEADER_ROUTES = frozenset({("GET", "/invoices")})


def _claims(router: Router | ApiGatewayResolver) -> dict[str, Any]:
    authorizer = router.current_event.request_context.authorizer
    return dict(authorizer.claims or {}) if authorizer is not None else {}


def principal_of(router: Router | ApiGatewayResolver) -> Principal:
    """The request's principal as enforce_roles checked it (the member record's role)."""
    found = router.context.get(PRINCIPAL)
    if isinstance(found, Principal):
        return found
    return account_services().users.current(principal_from_claims(_claims(router)))


def header_of(router: Router) -> FirmHeader | None:
    """The firm header enforce_roles read for this request (a route of HEADER_ROUTES), else
    None: the route's service reads it itself."""
    return cast("FirmHeader | None", router.context.get(HEADER))


def firm_id_of(router: Router) -> str:
    return principal_of(router).firm_id


def user_of(router: Router) -> ConnectingUser:
    """The signed-in user: the token's `sub` (and email, when the token carries one)."""
    principal = principal_of(router)
    return ConnectingUser(user_id=principal.user_id, email=principal.email)


def enforce_roles(
    app: ApiGatewayResolver, next_middleware: Callable[[ApiGatewayResolver], Response[Any]]
) -> Response[Any]:
    """The route-to-role table, applied to every signed-in route: a 401 without a principal or
    without a member record in the firm the token names, a 403 `forbidden` for a role the
    table does not allow (the lesser of the token's and the record's)."""
    event = app.current_event
    if event.resource not in PUBLIC_RESOURCES:
        claimed = principal_from_claims(_claims(app))
        users = account_services().users
        if (event.http_method, event.resource) in HEADER_ROUTES:
            principal, header = users.current_with_header(claimed)
            authorize(principal, event.http_method, event.resource)
            app.append_context(**{PRINCIPAL: principal, HEADER: header})
        else:
            principal = users.current(claimed)
            authorize(principal, event.http_method, event.resource)
            app.append_context(**{PRINCIPAL: principal})
    return next_middleware(app)
