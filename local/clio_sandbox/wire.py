"""Plumbing shared by the sandbox's routes: one parsed request and one answer to send."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

from local.clio_sandbox.state import ApiError


class Response:
    def __init__(
        self,
        status: int,
        body: bytes = b"",
        content_type: str | None = "application/json; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type if body else None
        self.headers = headers or {}


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status, json.dumps(payload, separators=(",", ":")).encode(), headers=headers)


class Request:
    """What a route needs of one HTTP request, parsed once."""

    def __init__(self, handler: BaseHTTPRequestHandler, method: str, body: bytes) -> None:
        parts = urlsplit(handler.path)
        self.method = method
        self.path = parts.path
        self.raw_query = parts.query
        self.query = parse_qs(parts.query, keep_blank_values=True)
        self.headers = handler.headers
        self.body = body
        # HTTP/1.1 clients always send Host; it names the address the client reached us by.
        host = handler.headers.get("Host") or "127.0.0.1"
        self.origin = f"http://{host}"

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None

    def json(self) -> Any:
        if not self.body:
            raise ApiError(400, "BadRequest", "a JSON body is required", "body")
        try:
            return json.loads(self.body)
        except ValueError:
            raise ApiError(400, "BadRequest", "the body is not valid JSON", "body") from None

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True))
