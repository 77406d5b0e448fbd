"""The client's pay page (P2, P3): public, found by the unguessable token in the emailed link.

`GET /pay/{token}` is HTML (JSON with `Accept: application/json`); `POST /pay/{token}/checkout`
starts Stripe Checkout, one session per account when trust and operating bills are paid
together. The token is the only credential: pages are never cached and never leak it in a
Referer header.
"""

from __future__ import annotations

from datetime import UTC, datetime
from http import HTTPStatus
from typing import Annotated, Any, Literal
from urllib.parse import quote

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from formats import client_locale
from page import confirmation_html, not_found_page, pay_page_html
from pay_http import PRIVATE_HEADERS, Token, private_json
from pay_schemas import (
    CheckoutIn,
    CheckoutOut,
    CheckoutSessionOut,
    ConfirmationOut,
    PayLinkOut,
    confirmation_out,
    pay_link_out,
)
from plan_routes import router as plans_router
from plan_section import plan_section
from saved_routes import router as saved_router
from surcharge_routes import router as surcharge_router

from billbridge.api_errors import (
    ErrorOut,
    error_response,
    error_responses,
    refuse_other_methods,
    register_error_handlers,
)
from billbridge.bootstrap import pay_page, pay_saved
from billbridge.domain.errors import NotFound
from billbridge.domain.payments import Method

logger = Logger()
tracer = Tracer()

app = APIGatewayRestResolver(enable_validation=True)
register_error_handlers(app)
refuse_other_methods(app, "/pay/<token>", ["GET"])
refuse_other_methods(app, "/pay/<token>/checkout", ["POST"])
refuse_other_methods(app, "/pay/<token>/confirmation", ["GET"])
refuse_other_methods(app, "/pay/<token>/bills/<bill_file>", ["GET"])
app.include_router(plans_router)  # payment plans (plan_routes.py)
refuse_other_methods(app, "/pay/<token>/payment-plans", ["GET", "POST"])
refuse_other_methods(app, "/pay/<token>/payment-plans/<plan_id>/method", ["POST"])
app.include_router(saved_router)  # saved cards and bank accounts (saved_routes.py)
refuse_other_methods(app, "/pay/<token>/saved-methods", ["GET"])
refuse_other_methods(app, "/pay/<token>/saved-methods/<method_id>/pay", ["POST"])
refuse_other_methods(app, "/pay/<token>/saved-methods/<method_id>/forget", ["POST"])
app.include_router(surcharge_router)  # the card surcharge, before paying (surcharge_routes.py)
refuse_other_methods(app, "/pay/<token>/surcharge", ["GET"])

NO_SUCH_LINK = "This payment link does not exist or has expired."
SESSION_PATTERN = r"^cs_[A-Za-z0-9_]{1,250}$"
HTML_HEADERS = {
    **PRIVATE_HEADERS,
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}


def wants_json() -> bool:
    accept = app.current_event.headers.get("Accept")  # Powertools' headers ignore case
    return "application/json" in (accept or "")


@app.not_found
def no_such_route(exc: NotFoundError) -> Response[Any]:
    # Powertools' path pattern does not match every character (a symbol, an emoji): such a
    # token is no link either, and a browser opening it gets the page that says so.
    # Only the page itself answers HTML; its JSON sub-resources (plans, surcharge) answer JSON.
    page_path = (app.current_event.path or "").rstrip("/").count("/") <= 2
    if app.current_event.http_method == "GET" and not wants_json() and page_path:
        return Response(404, content_types.TEXT_HTML, not_found_page(), HTML_HEADERS)
    return error_response(HTTPStatus.NOT_FOUND, "not_found", NO_SUCH_LINK, "token")


PAGE_OR_JSON = {
    "text/html": {"schema": {"type": "string"}},
    content_types.APPLICATION_JSON: {"model": PayLinkOut},
}


@app.get(
    "/pay/<token>",
    summary="The client's pay page (HTML; JSON with Accept: application/json)",
    tags=["pay"],
    responses={
        200: {"description": "The link's bills and what can be paid", "content": PAGE_OR_JSON},
        303: {
            "description": "With `paid` (older Stripe returns): to the confirmation",
            "headers": {"Location": {"schema": {"type": "string"}}},
            "content": {"text/html": {"schema": {"type": "string", "maxLength": 0}}},
        },
        404: {
            "description": "No such link: a page saying so, or the error shape as JSON",
            "content": {
                "text/html": {"schema": {"type": "string"}},
                content_types.APPLICATION_JSON: {"model": ErrorOut},
            },
        },
        **error_responses(400, 422),
    },
)
def show(
    token: Token,
    paid: Annotated[
        str | None,
        Query(
            max_length=300,
            pattern=SESSION_PATTERN,
            description="Older Stripe returns: the session just paid (redirected to the "
            "confirmation)",
        ),
    ] = None,
) -> Response[Any]:
    if paid and not wants_json():
        where = f"/pay/{quote(token, safe='')}/confirmation?session_id={quote(paid, safe='')}"
        return Response(303, content_types.TEXT_HTML, "", {**HTML_HEADERS, "Location": where})
    locale = locale_of_request()
    try:
        view = pay_page().view(token)
    except NotFound:
        if wants_json():
            raise
        return Response(404, content_types.TEXT_HTML, not_found_page(locale), HTML_HEADERS)
    if wants_json():
        body = pay_link_out(view, token)
        return Response(200, content_types.APPLICATION_JSON, body.model_dump(), PRIVATE_HEADERS)
    today = datetime.now(UTC).date()
    # Issue 12's own section (plan_section.py): the surcharge note and Pay in installments.
    saved = pay_saved()
    # The link's client's saved methods (None: its bills are not one client's, nothing saves).
    methods = saved.methods(view.link) if saved.client_of(view.link) is not None else None
    html = pay_page_html(
        view, token, locale, today, extra_sections=(plan_section(token),), saved=methods
    )
    return Response(200, content_types.TEXT_HTML, html, HTML_HEADERS)


def locale_of_request() -> str:
    return client_locale(app.current_event.headers.get("Accept-Language"))


@app.get(
    "/pay/<token>/confirmation",
    summary="After paying: the confirmation (HTML; JSON with Accept: application/json)",
    tags=["pay"],
    responses={
        200: {
            "description": "The payment just made: amount, date, method, bills, account, "
            "reference; or that it was not made",
            "content": {
                "text/html": {"schema": {"type": "string"}},
                content_types.APPLICATION_JSON: {"model": ConfirmationOut},
            },
        },
        404: {
            "description": "No such link, or no such payment on it",
            "content": {
                "text/html": {"schema": {"type": "string"}},
                content_types.APPLICATION_JSON: {"model": ErrorOut},
            },
        },
        **error_responses(400, 422, 502),
    },
)
def confirmation(
    token: Token,
    session_id: Annotated[
        str,
        Query(
            max_length=300,
            pattern=SESSION_PATTERN,
            description="The Checkout Session Stripe returned from",
        ),
    ],
) -> Response[Any]:
    locale = locale_of_request()
    try:
        done = pay_page().confirmation(token, session_id)
    except NotFound:
        if wants_json():
            raise
        return Response(404, content_types.TEXT_HTML, not_found_page(locale), HTML_HEADERS)
    if wants_json():
        return Response(
            200,
            content_types.APPLICATION_JSON,
            confirmation_out(done).model_dump(),
            PRIVATE_HEADERS,
        )
    html = confirmation_html(done, token, locale)
    return Response(200, content_types.TEXT_HTML, html, HTML_HEADERS)


@app.get(
    "/pay/<token>/bills/<bill_file>",
    summary="The PDF of a bill of this pay link ({bill_id}.pdf)",
    tags=["pay"],
    responses={
        200: {
            "description": "The bill's PDF (inline; ?download=1 as an attachment)",
            "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
        },
        404: {
            "description": "Not a bill of this link (JSON), or no such address (a browser "
            "gets the page that says so)",
            "content": {
                "text/html": {"schema": {"type": "string"}},
                content_types.APPLICATION_JSON: {"model": ErrorOut},
            },
        },
        **error_responses(422, 502, 503),
    },
)
def bill_pdf(  # type: ignore[no-untyped-def]
    token: Token,
    bill_file: Annotated[str, Path(pattern=r"^[0-9]{1,18}\.pdf$", description="<bill_id>.pdf")],
    download: Annotated[
        Literal["1"] | None, Query(description="1: download instead of showing it")
    ] = None,
):
    # No return annotation: Powertools would try to read the PDF's bytes as UTF-8 to validate.
    name, pdf = pay_page().bill_pdf(token, int(bill_file.removesuffix(".pdf")))
    disposition = "attachment" if download else "inline"
    return Response(
        status_code=200,
        content_type="application/pdf",
        body=pdf,
        headers={**PRIVATE_HEADERS, "Content-Disposition": f'{disposition}; filename="{name}"'},
    )


@app.post(
    "/pay/<token>/checkout",
    summary="Start paying some or all bills of the link (Stripe Checkout)",
    tags=["pay"],
    responses={
        201: {"description": "One Checkout Session per account paid into"},
        **error_responses(400, 404, 409, 415, 422, 502),
    },
)
def checkout(
    token: Token,
    request: Annotated[CheckoutIn, Body()],
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=100)] = None,
) -> Response[CheckoutOut]:
    bill_ids = [int(i) for i in request.bill_ids]  # digits, by CheckoutIn's pattern
    sessions = pay_page().checkout(
        token,
        bill_ids,
        request.amount_cents,
        Method(request.method),
        idempotency_key,
        save_method=request.save_method,
        mandate_accepted=request.mandate_accepted,
    )
    body = CheckoutOut(
        checkout_sessions=[
            CheckoutSessionOut(
                id=s.id,
                url=s.url,
                account=account.value,
                amount_cents=s.amount_cents,
                surcharge_cents=s.surcharge_cents,
            )
            for account, s in sessions
        ]
    )
    return private_json(201, body)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
