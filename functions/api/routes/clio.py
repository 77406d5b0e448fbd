"""GET /clio/connect and GET /clio/callback: connecting the firm's Clio account (C1)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from billbridge.bootstrap import api_services
from billbridge.domain.connection import parse_region
from routes.context import firm_id_of

router = Router()


@router.get(
    "/clio/connect",
    summary="Redirect to Clio to authorize this firm",
    tags=["clio"],
    responses={302: {"description": "Redirect to Clio's authorize page"}},
)
def connect(
    region: Annotated[str | None, Query(description="Clio data region: us, ca, eu or au")] = None,
) -> Response[None]:
    services = api_services()
    url = services.connect.authorize_url(firm_id_of(router), parse_region(region))
    return Response(status_code=302, headers={"Location": url, "Cache-Control": "no-store"})


@router.get(
    "/clio/callback",
    summary="Clio's OAuth redirect back to us",
    tags=["clio"],
    responses={302: {"description": "Redirect to the web UI, connected"}},
)
def callback(
    code: Annotated[str | None, Query()] = None,
    state: Annotated[str | None, Query()] = None,
    error: Annotated[str | None, Query()] = None,
) -> Response[None]:
    services = api_services()
    connection = services.connect.complete(code=code, state=state, error=error)
    target = services.web_base_url
    query = urlencode({"clio": "connected", "region": connection.region.value})
    location = f"{target}{'&' if '?' in target else '?'}{query}"
    return Response(status_code=302, headers={"Location": location, "Cache-Control": "no-store"})
