"""What every route of the pay page shares: the link's token in the path (its only
credential), and answers that are private (never cached, never indexed, never leaking the
token in a Referer header). The services read the token and raise the domain's errors, which
api_errors maps to the api.md error shape."""

from __future__ import annotations

from typing import Annotated, TypeVar

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path

PRIVATE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    "X-Content-Type-Options": "nosniff",
}

Token = Annotated[str, Path(description="The token of the emailed link")]

Body = TypeVar("Body")


def private_json(status: int, body: Body) -> Response[Body]:
    """A JSON answer with the private headers."""
    return Response(status, content_types.APPLICATION_JSON, body, PRIVATE_HEADERS)
