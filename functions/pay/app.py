"""The client's pay page (P2, P3): public, found by the unguessable token in the emailed link.

`GET /pay/{token}` is HTML (JSON with `Accept: application/json`); `POST /pay/{token}/checkout`
starts Stripe Checkout, one session per account when trust and operating bills are paid
together. The token is the only credential: pages are never cached and never leak it in a
Referer header.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated, Any, Literal

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from page import not_found_page, pay_page_html
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints

from billbridge.api_errors import (
    ErrorOut,
    error_response,
    error_responses,
    refuse_other_methods,
    register_error_handlers,
)
from billbridge.bootstrap import pay_page
from billbridge.domain.errors import NotFound
from billbridge.domain.payments import Method

logger = Logger()
tracer = Tracer()

app = APIGatewayRestResolver(enable_validation=True)
register_error_handlers(app)
refuse_other_methods(app, "/pay/<token>", ["GET"])
refuse_other_methods(app, "/pay/<token>/checkout", ["POST"])

NO_SUCH_LINK = "This payment link does not exist or has expired."
PRIVATE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    "X-Content-Type-Options": "nosniff",
}
HTML_HEADERS = {
    **PRIVATE_HEADERS,
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}


class PayBill(BaseModel):
    id: str
    number: str
    kind: Literal["invoice", "trust_request"]
    total_cents: int
    outstanding_cents: int = Field(
        description="What may be paid now: Outstanding (Clio) minus our payments Clio does not "
        "show yet and what other checkouts hold; 0 when the bill is not awaiting payment"
    )
    due_at: str | None
    note: str | None = Field(
        default=None, description="Why nothing can be paid now, in a sentence (else null)"
    )


class PayLinkOut(BaseModel):
    firm: str
    bills: list[PayBill]
    total_cents: int
    currency: str


class CheckoutIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bill_ids: list[Annotated[str, StringConstraints(pattern=r"^[0-9]{1,18}$")]] = Field(
        min_length=1, max_length=10, description="Bill ids of this link, as the page lists them"
    )
    # Strict: JSON true, "5000" and 1e2 are not amounts (pydantic's lax mode would take them).
    amount_cents: StrictInt | None = Field(
        default=None, gt=0, description="Leave out to pay all that is payable on the chosen bills"
    )
    method: Literal["card", "ach"] = "card"


class CheckoutSessionOut(BaseModel):
    id: str
    url: str
    account: Literal["trust", "operating"]
    amount_cents: int


class CheckoutOut(BaseModel):
    checkout_sessions: list[CheckoutSessionOut]


def wants_json() -> bool:
    accept = app.current_event.headers.get("Accept")  # Powertools' headers ignore case
    return "application/json" in (accept or "")


@app.not_found
def no_such_route(exc: NotFoundError) -> Response[Any]:
    # Powertools' path pattern does not match every character (a symbol, an emoji): such a
    # token is no link either, and a browser opening it gets the page that says so.
    if app.current_event.http_method == "GET" and not wants_json():
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
    token: Annotated[str, Path(description="The token of the emailed link")],
    paid: Annotated[
        str | None,
        Query(max_length=300, description="The Checkout Session just paid (Stripe's return)"),
    ] = None,
) -> Response[Any]:
    try:
        view = pay_page().view(token)
    except NotFound:
        if wants_json():
            raise
        return Response(404, content_types.TEXT_HTML, not_found_page(), HTML_HEADERS)
    if wants_json():
        body = PayLinkOut(
            firm=view.firm_name,
            bills=[
                PayBill(
                    id=str(b.bill.id),
                    number=b.bill.number,
                    kind=b.bill.kind.value,
                    total_cents=b.bill.total_cents,
                    outstanding_cents=b.payable_cents,
                    due_at=b.bill.due_at.isoformat() if b.bill.due_at else None,
                    note=b.note,
                )
                for b in view.bills
            ],
            total_cents=view.total_payable_cents,
            currency=view.currency,
        )
        return Response(200, content_types.APPLICATION_JSON, body.model_dump(), PRIVATE_HEADERS)
    return Response(200, content_types.TEXT_HTML, pay_page_html(view, token, paid), HTML_HEADERS)


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
    token: Annotated[str, Path(description="The token of the emailed link")],
    request: Annotated[CheckoutIn, Body()],
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=100)] = None,
) -> Response[CheckoutOut]:
    bill_ids = [int(i) for i in request.bill_ids]  # digits, by CheckoutIn's pattern
    sessions = pay_page().checkout(
        token, bill_ids, request.amount_cents, Method(request.method), idempotency_key
    )
    body = CheckoutOut(
        checkout_sessions=[
            CheckoutSessionOut(
                id=s.id, url=s.url, account=account.value, amount_cents=s.amount_cents
            )
            for account, s in sessions
        ]
    )
    return Response(201, content_types.APPLICATION_JSON, body, PRIVATE_HEADERS)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
