"""Who is calling: the firm comes only from the API Gateway authorizer's claims."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router

from billbridge.domain.errors import Unauthenticated
from billbridge.domain.oauth_state import ConnectingUser

FIRM_CLAIM = "custom:firm_id"


def firm_id_of(router: Router) -> str:
    claims = router.current_event.request_context.authorizer.claims or {}
    firm_id = claims.get(FIRM_CLAIM)
    if not firm_id:
        raise Unauthenticated("the caller's token names no firm")
    return str(firm_id)


def user_of(router: Router) -> ConnectingUser:
    """The signed-in user: the token's `sub` (and email, when the token carries one)."""
    claims = router.current_event.request_context.authorizer.claims or {}
    user_id = claims.get("sub") or claims.get("cognito:username")
    if not user_id:
        raise Unauthenticated("the caller's token names no user")
    email = claims.get("email")
    return ConnectingUser(user_id=str(user_id), email=str(email) if email else None)
