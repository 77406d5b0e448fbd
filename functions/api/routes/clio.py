"""GET /clio/connect, GET /clio/callback and GET /clio/status: connecting the firm's Clio
account (C1), and which Clio account and user is connected."""

from __future__ import annotations

from http.cookies import CookieError, SimpleCookie
from typing import Annotated, Literal
from urllib.parse import urlencode

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.shared.cookies import Cookie, SameSite

from billbridge.api_errors import error_responses, refuse_other_methods
from billbridge.bootstrap import ApiServices, api_services
from billbridge.domain.connection import parse_region
from billbridge.domain.oauth_state import CONNECT_COOKIE, STATE_TTL
from routes.context import firm_id_of, user_of
from schemas import AuthorizeUrlOut, ClioStatusOut

router = Router()
refuse_other_methods(router, "/clio/callback", ["GET"])


@router.get(
    "/clio/status",
    summary="Whether the firm's Clio account is connected",
    tags=["clio"],
    responses={200: {"description": "The connection"}, **error_responses(401, 422)},
)
def status() -> ClioStatusOut:
    state, connection = api_services().connect.status(firm_id_of(router))
    return ClioStatusOut.of(state, connection)


def _connect_cookie(services: ApiServices, value: str, max_age: int) -> Cookie:
    # HttpOnly: no script reads it; SameSite=Lax: sent on Clio's top-level redirect back to
    # us, not on cross-site subrequests; the callback's path only; Secure over https.
    return Cookie(
        name=CONNECT_COOKIE,
        value=value,
        path=services.connect_cookie_path,
        secure=services.connect_cookie_secure,
        http_only=True,
        same_site=SameSite.LAX_MODE,
        max_age=max_age,
    )


@router.get(
    "/clio/connect",
    summary="Redirect to Clio to authorize this firm",
    tags=["clio"],
    responses={
        302: {
            "description": "Redirect to Clio's authorize page; sets the `billbridge_clio_connect` "
            "cookie the callback needs (HttpOnly, SameSite=Lax, path of the callback)",
            "content": {},
        },
        200: {
            "description": "With `Accept: application/json`: the address to send the browser to "
            "(a web page cannot follow a redirect that needs its Authorization header); sets "
            "the same cookie",
            "content": {"application/json": {"model": AuthorizeUrlOut}},
        },
        **error_responses(400, 401, 422),
    },
)
def connect(  # type: ignore[no-untyped-def]  # a redirect, or JSON for the web UI
    region: Annotated[
        Literal["us", "ca", "eu", "au"] | None,
        Query(description="Clio data region (default us)"),
    ] = None,
):
    services = api_services()
    start = services.connect.authorize(firm_id_of(router), user_of(router), parse_region(region))
    cookie = _connect_cookie(services, start.browser_secret, int(STATE_TTL.total_seconds()))
    if "application/json" in (router.current_event.headers.get("Accept") or ""):
        return Response(
            status_code=200,
            content_type=content_types.APPLICATION_JSON,
            body={"authorize_url": start.authorize_url},
            headers={"Cache-Control": "no-store"},
            cookies=[cookie],
        )
    return Response(
        status_code=302,
        headers={"Location": start.authorize_url, "Cache-Control": "no-store"},
        cookies=[cookie],
    )


def _browser_secret() -> str | None:
    """The connect cookie the browser sent, if any."""
    event = router.current_event
    headers = [event.headers.get("Cookie") or event.headers.get("cookie") or ""]
    headers += list((event.multi_value_headers or {}).get("Cookie") or [])
    for header in headers:
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(header)
        except CookieError:
            continue
        if CONNECT_COOKIE in jar:
            return jar[CONNECT_COOKIE].value
    return None


@router.get(
    "/clio/callback",
    summary="Clio's OAuth redirect back to us",
    tags=["clio"],
    responses={
        302: {"description": "Redirect to the web UI, connected", "content": {}},
        **error_responses(400, 401, 422, 502, 503),
    },
    # Public: Clio redirects the browser here with no token; the signed state names the firm.
    security=[{}],
)
def callback(
    state: Annotated[
        str, Query(min_length=1, max_length=2000, description="The state connect signed")
    ],
    code: Annotated[str | None, Query(max_length=2000)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> Response[None]:
    services = api_services()
    connection = services.connect.complete(
        code=code, state=state, error=error, browser_secret=_browser_secret()
    )
    target = services.web_base_url
    query = urlencode({"clio": "connected", "region": connection.region.value})
    location = f"{target}{'&' if '?' in target else '?'}{query}"
    return Response(
        status_code=302,
        headers={"Location": location, "Cache-Control": "no-store"},
        cookies=[_connect_cookie(services, "", 0)],  # used up: the browser forgets it
    )
