"""The one mapping from failures to the HTTP error shape of api.md, for every API function.

`{"error": {"code", "message", "field"}}`: 400 for malformed input, 422 for a well-formed
request that breaks a rule, 404 for anything not the caller's, 401 for a failed signature.
Status codes come from exception classes and pydantic error types, never from message text.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver, Router
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent
from pydantic import BaseModel, Field

from billbridge.domain.errors import (
    ClioAuthorizationLost,
    ClioUnreachable,
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotConnected,
    NotFound,
    PaymentProviderError,
    ReceiptDelayed,
    RuleViolation,
    Unauthenticated,
)

logger = Logger(child=True)

# Ordered: the first class an exception is an instance of decides its status.
STATUS_BY_ERROR: tuple[tuple[type[DomainError], HTTPStatus], ...] = (
    (NotFound, HTTPStatus.NOT_FOUND),
    (Unauthenticated, HTTPStatus.UNAUTHORIZED),
    (Forbidden, HTTPStatus.FORBIDDEN),
    (InvalidInput, HTTPStatus.BAD_REQUEST),
    (NotConnected, HTTPStatus.UNPROCESSABLE_ENTITY),
    (RuleViolation, HTTPStatus.UNPROCESSABLE_ENTITY),
    (Conflict, HTTPStatus.CONFLICT),
    (ClioAuthorizationLost, HTTPStatus.BAD_GATEWAY),
    (PaymentProviderError, HTTPStatus.BAD_GATEWAY),
    (ClioUnreachable, HTTPStatus.SERVICE_UNAVAILABLE),
    (ReceiptDelayed, HTTPStatus.SERVICE_UNAVAILABLE),
)

# pydantic error types that mean "this is not even the right shape" (400); the rest are
# values of the right shape that break a rule (422).
MALFORMED_TYPES = (
    "missing",
    "json_invalid",
    "extra_forbidden",
    "model_type",
    "model_attributes_type",
)


class ErrorBody(BaseModel):
    code: str = Field(description="A stable machine code, such as not_found or invalid_input")
    message: str = Field(description="What went wrong, in a sentence for people")
    field: str | None = Field(description="The input at fault, when one is")


class ErrorOut(BaseModel):
    """The api.md error shape: every 4xx of every function (and API Gateway's own refusals)."""

    error: ErrorBody


ERROR_MEANINGS: dict[int, str] = {
    400: "Malformed input: a wrong type, an unparsable value, a missing field, a body that is "
    "not UTF-8 JSON",
    401: "No valid credentials: a missing or bad token or signature",
    403: "Signed in, but the caller's role may not do this (code forbidden)",
    404: "Not found, or not the caller's",
    409: "The request conflicts with the object's current state",
    415: "The body is not JSON (Content-Type)",
    422: "Well-formed input that breaks a rule",
    502: "Clio or Stripe refused or failed the request",
    503: "Clio (or SES, for a receipt) is unavailable for now; try again later",
}


def error_responses(*statuses: int) -> dict[int, OpenAPIResponse]:
    """Per-route `responses=` entries for the errors a route can answer, in the api.md shape,
    so the OpenAPI document tells the truth about failures."""
    return {
        status: {
            "description": ERROR_MEANINGS[status],
            "content": {content_types.APPLICATION_JSON: {"model": ErrorOut}},
        }
        for status in statuses
    }


def error_response(status: HTTPStatus, code: str, message: str, field: str | None) -> Response[Any]:
    return Response(
        status_code=status.value,
        content_type=content_types.APPLICATION_JSON,
        body={"error": {"code": code, "message": message, "field": field}},
    )


def status_for(exc: DomainError) -> HTTPStatus:
    for cls, status in STATUS_BY_ERROR:
        if isinstance(exc, cls):
            return status
    return HTTPStatus.BAD_REQUEST


def _field_of(loc: tuple[Any, ...]) -> str | None:
    parts = [str(p) for p in loc if p not in ("query", "body", "path", "header")]
    return ".".join(parts) or None


def _is_malformed(error_type: str) -> bool:
    return error_type in MALFORMED_TYPES or error_type.endswith(("_parsing", "_type"))


# Every method a client can send; API Gateway hands a path's undeclared ones to its ANY method.
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "QUERY")


def refuse_other_methods(
    app: ApiGatewayResolver | Router, rule: str, allowed: Sequence[str]
) -> None:
    """A 405 with `Allow` for the methods a public path does not take. template.yaml routes
    them here through the path's ANY method (elsewhere API Gateway refuses them itself); the
    OpenAPI document leaves them out."""
    allow = ", ".join(allowed)

    def method_not_allowed(**path_params: str) -> Response[Any]:
        method = app.current_event.http_method
        return Response(
            status_code=HTTPStatus.METHOD_NOT_ALLOWED.value,
            content_type=content_types.APPLICATION_JSON,
            body={
                "error": {
                    "code": "method_not_allowed",
                    "message": f"{method} is not allowed here; use {allow}.",
                    "field": None,
                }
            },
            headers={"Allow": allow},
        )

    others = [m for m in HTTP_METHODS if m not in allowed]
    # No validation: the route takes no input, whatever path parameters the rule has.
    app.route(rule, method=others, include_in_schema=False, enable_validation=False)(
        method_not_allowed
    )


def body_is_text(event: BaseProxyEvent) -> bool:
    """Whether the request's body is UTF-8 text. API Gateway hands a body that is not as base64
    (`isBase64Encoded`); Powertools' `decoded_body` then fails to decode it."""
    if not event.body or not event.is_base64_encoded:
        return True
    try:
        base64.b64decode(event.body).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return True


def is_json_request(event: BaseProxyEvent) -> bool:
    content_type = (event.headers.get("Content-Type") or "").strip().lower()
    return not content_type or content_type.startswith(content_types.APPLICATION_JSON)


def _not_json() -> Response[Any]:
    return error_response(
        HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "Send the body as JSON (Content-Type: application/json).",
        "Content-Type",
    )


def register_error_handlers(app: ApiGatewayResolver) -> None:
    @app.exception_handler(RequestUnsupportedContentType)
    def _unsupported(exc: RequestUnsupportedContentType) -> Response[Any]:
        return _not_json()

    @app.exception_handler(ValueError)
    def _unreadable(exc: ValueError) -> Response[Any]:
        # Powertools reads a multipart body it cannot split (no boundary) with a bare
        # ValueError. Our bodies are JSON only; any other ValueError is a real failure.
        if is_json_request(app.current_event):
            raise exc
        return _not_json()

    @app.exception_handler(UnicodeDecodeError)
    def _undecodable(exc: UnicodeDecodeError) -> Response[Any]:
        if body_is_text(app.current_event):
            raise exc  # not the caller's body: a real failure, left to be a 5xx
        return error_response(
            HTTPStatus.BAD_REQUEST,
            "invalid_encoding",
            "The request body is not UTF-8 text.",
            "body",
        )

    @app.exception_handler(DomainError)
    def _domain(exc: DomainError) -> Response[Any]:
        status = status_for(exc)
        if status >= 500:
            logger.warning("upstream failure", extra={"code": exc.code})
        return error_response(status, exc.code, exc.message, exc.field)

    @app.exception_handler(RequestValidationError)
    def _validation(exc: RequestValidationError) -> Response[Any]:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "type": "invalid", "msg": "invalid request"}
        field = _field_of(tuple(first.get("loc", ())))
        if tuple(first.get("loc", ()))[:1] == ("path",):
            # A path names a resource: a value that names none of them is not found, as an
            # unknown id is (a link that hands a value from one answer to the next, such as
            # the checklist's `current_step` "done", reaches nothing, it breaks no rule).
            return error_response(
                HTTPStatus.NOT_FOUND,
                "not_found",
                f"There is no {(field or 'resource').replace('_', ' ')} "
                f"{str(first.get('input', ''))[:80]!r} here.",
                field,
            )
        malformed = _is_malformed(str(first.get("type", "")))
        message = str(first.get("msg", "invalid value"))
        if field:
            message = f"{field}: {message}"
        status = HTTPStatus.BAD_REQUEST if malformed else HTTPStatus.UNPROCESSABLE_ENTITY
        return error_response(
            status, "invalid_input" if malformed else "invalid_value", message, field
        )

    @app.not_found
    def _not_found(exc: NotFoundError) -> Response[Any]:
        return error_response(HTTPStatus.NOT_FOUND, "not_found", "no such resource", None)
