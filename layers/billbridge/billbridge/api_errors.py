"""The one mapping from failures to the HTTP error shape of api.md, for every API function.

`{"error": {"code", "message", "field"}}`: 400 for malformed input, 422 for a well-formed
request that breaks a rule, 404 for anything not the caller's, 401 for a failed signature.
Status codes come from exception classes and pydantic error types, never from message text.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from billbridge.domain.errors import (
    ClioAuthorizationLost,
    ClioUnreachable,
    Conflict,
    DomainError,
    InvalidInput,
    NotConnected,
    NotFound,
    PaymentProviderError,
    RuleViolation,
    Unauthenticated,
)

logger = Logger(child=True)

# Ordered: the first class an exception is an instance of decides its status.
STATUS_BY_ERROR: tuple[tuple[type[DomainError], HTTPStatus], ...] = (
    (NotFound, HTTPStatus.NOT_FOUND),
    (Unauthenticated, HTTPStatus.UNAUTHORIZED),
    (InvalidInput, HTTPStatus.BAD_REQUEST),
    (NotConnected, HTTPStatus.UNPROCESSABLE_ENTITY),
    (RuleViolation, HTTPStatus.UNPROCESSABLE_ENTITY),
    (Conflict, HTTPStatus.CONFLICT),
    (ClioAuthorizationLost, HTTPStatus.BAD_GATEWAY),
    (PaymentProviderError, HTTPStatus.BAD_GATEWAY),
    (ClioUnreachable, HTTPStatus.SERVICE_UNAVAILABLE),
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


def register_error_handlers(app: ApiGatewayResolver) -> None:
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
