"""GET /clio/connect and GET /clio/callback: connecting the firm's Clio account (C1)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from billbridge.bootstrap import api_services
from billbridge.domain.connection import parse_region
from routes.context import firm_id_of
from schemas import AuthorizeUrlOut, ClioStatusOut

router = Router()


@router.get("/clio/status", summary="Whether the firm's Clio account is connected", tags=["clio"])
def status() -> ClioStatusOut:
    state, connection = api_services().connect.status(firm_id_of(router))
    return ClioStatusOut(
        status=state,  # type: ignore[arg-type]
        region=connection.region.value if connection else None,
        clio_user_name=connection.clio_user_name if connection else None,
        connected_at=connection.connected_at if connection else None,
    )


@router.get(
    "/clio/connect",
    summary="Redirect to Clio to authorize this firm",
    tags=["clio"],
    responses={
        302: {"description": "Redirect to Clio's authorize page"},
        200: {
            "description": "With `Accept: application/json`: the address to send the browser to "
            "(a web page cannot follow a redirect that needs its Authorization header)",
            "content": {"application/json": {"model": AuthorizeUrlOut}},
        },
    },
)
def connect(  # type: ignore[no-untyped-def]  # a redirect, or JSON for the web UI
    region: Annotated[str | None, Query(description="Clio data region: us, ca, eu or au")] = None,
):
    services = api_services()
    url = services.connect.authorize_url(firm_id_of(router), parse_region(region))
    if "application/json" in (router.current_event.headers.get("Accept") or ""):
        return Response(
            status_code=200,
            content_type=content_types.APPLICATION_JSON,
            body={"authorize_url": url},
            headers={"Cache-Control": "no-store"},
        )
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
