"""Plumbing shared by the sandbox's routes: one parsed request, one answer to send, and the
events to deliver once that answer has left."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from email.message import Message
from typing import Any
from urllib.parse import parse_qs, urlsplit

from local.stripe_sandbox.params import ControlError
from local.stripe_sandbox.state import Event

JSON = "application/json; charset=utf-8"
HTML = "text/html; charset=utf-8"


@dataclass
class Request:
    method: str
    target: str
    headers: Message
    body: bytes = b""
    path: str = field(init=False)
    raw_query: str = field(init=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.target)
        self.path, self.raw_query = parts.path, parts.query

    def arg(self, name: str) -> str | None:
        values = parse_qs(self.raw_query, keep_blank_values=True).get(name)
        return values[-1] if values else None

    def json(self) -> dict[str, Any]:
        """A control's JSON body; an empty body is `{}`."""
        if not self.body.strip():
            return {}
        try:
            value = json.loads(self.body)
        except ValueError:
            raise ControlError(400, "the body is not valid JSON") from None
        if not isinstance(value, dict):
            raise ControlError(400, "the body must be a JSON object")
        return value


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str | None = JSON
    headers: dict[str, str] = field(default_factory=dict)
    deliver_after: list[Event] = field(default_factory=list)


def json_response(
    status: int, payload: Any, headers: dict[str, str] | None = None, pretty: bool = False
) -> Response:
    text = json.dumps(payload, indent=2) if pretty else json.dumps(payload, separators=(",", ":"))
    return Response(status, text.encode(), headers=headers or {})


def html_response(status: int, html: str, headers: dict[str, str] | None = None) -> Response:
    return Response(status, html.encode(), HTML, headers or {})
