"""Who is calling: the firm comes only from the API Gateway authorizer's claims."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router

from billbridge.domain.errors import Unauthenticated

FIRM_CLAIM = "custom:firm_id"


def firm_id_of(router: Router) -> str:
    claims = router.current_event.request_context.authorizer.claims or {}
    firm_id = claims.get(FIRM_CLAIM)
    if not firm_id:
        raise Unauthenticated("the caller's token names no firm")
    return str(firm_id)
