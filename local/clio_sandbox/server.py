"""The Clio sandbox's HTTP face: a stdlib threading server speaking Clio Manage API v4 for bills,
OAuth, cursor paging, rate limits and webhooks, plus the `/_sandbox` controls tests and the
local stack use to shape its data.

Wire behaviour follows docs/clio-api-facts.md: success envelopes `{"data": ...}`, API errors
`{"error": {"type", "message"}}`, OAuth errors `{"error", "error_description"}`, `X-RateLimit-*`
headers on every API answer, `meta.paging.next` as a full URL omitted on the last page.
"""

from __future__ import annotations

import base64
import binascii
import re
import socket
import time
from collections.abc import Callable
from datetime import datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode

from local.background_server import BackgroundServer
from local.clio_sandbox import controls
from local.clio_sandbox.fields import BILL, WEBHOOK, FieldsError, parse_fields
from local.clio_sandbox.preview import NC_PAGE, bill_preview_html
from local.clio_sandbox.state import (
    BILL_STATES,
    TYPE_FILTER_TO_KIND,
    ApiError,
    BillFilter,
    OAuthError,
    SandboxState,
    Token,
    parse_date,
    parse_timestamp,
)
from local.clio_sandbox.webhooks import WebhookDispatcher
from local.clio_sandbox.wire import Request, Response, json_response

DEFAULT_API_VERSION = "4.0.9"
# Minor versions the sandbox accepts; anything else is "invalid or retired" (410), as in Clio.
SUPPORTED_API_VERSIONS = frozenset(f"4.0.{n}" for n in range(14))
MAX_LIMIT = 200
ORDERS = frozenset(
    f"{name}({direction})"
    for name in (
        "id",
        "due_at",
        "issued_at",
        "paid_at",
        "last_sent_at",
        "client_name",
        "matter_display_number",
        "balance",
        "number",
    )
    for direction in ("asc", "desc")
)
MAX_BODY_BYTES = 1_000_000


Route = Callable[["ClioSandbox", Request, re.Match[str]], Response]
ApiRoute = Callable[["ClioSandbox", Request, re.Match[str], Token], Response]


# -- OAuth ------------------------------------------------------------------------------------


def oauth_authorize(sb: ClioSandbox, req: Request, _: re.Match[str]) -> Response:
    problems = []
    if req.arg("response_type") != "code":
        problems.append("response_type must be code")
    for name in ("client_id", "redirect_uri"):
        if not req.arg(name):
            problems.append(f"{name} is required")
    if problems:
        body = {"error": "invalid_request", "error_description": "; ".join(problems)}
        return json_response(400, body)
    redirect_uri = req.arg("redirect_uri") or ""
    separator = "&" if "?" in redirect_uri else "?"
    params: dict[str, str] = {}
    if req.arg("sandbox_deny"):
        # Lets tests walk the "user clicked Deny" path of the callback.
        params["error"] = "access_denied"
    else:
        account = req.arg("sandbox_account") or "demo"
        params["code"] = sb.state.issue_code(account, req.arg("client_id") or "", redirect_uri)
    state = req.arg("state")
    if state is not None:
        params["state"] = state
    return Response(302, headers={"Location": f"{redirect_uri}{separator}{urlencode(params)}"})


def oauth_token(sb: ClioSandbox, req: Request, _: re.Match[str]) -> Response:
    form = req.form()
    grant = form.get("grant_type")
    try:
        if grant == "authorization_code":
            answer = sb.state.exchange_code(
                form.get("code"),
                form.get("client_id"),
                form.get("client_secret"),
                form.get("redirect_uri"),
            )
        elif grant == "refresh_token":
            answer = sb.state.refresh(
                form.get("refresh_token"), form.get("client_id"), form.get("client_secret")
            )
        else:
            message = f"grant_type {grant!r} is not supported"
            raise OAuthError(400, "unsupported_grant_type", message)
    except OAuthError as exc:
        return json_response(exc.status, exc.body())
    return json_response(200, answer, {"Cache-Control": "no-store", "Pragma": "no-cache"})


def nc_page(sb: ClioSandbox, req: Request, _: re.Match[str]) -> Response:
    return Response(200, NC_PAGE.encode(), "text/html; charset=utf-8")


# -- API: users and bills ---------------------------------------------------------------------


def who_am_i(sb: ClioSandbox, req: Request, _: re.Match[str], token: Token) -> Response:
    return json_response(200, {"data": sb.state.who_am_i(token.account, req.arg("fields"))})


def _bill_spec(req: Request) -> Any:
    try:
        return parse_fields(req.arg("fields"), BILL)
    except FieldsError as exc:
        raise ApiError(400, "BadRequest", str(exc), "fields") from None


def _int_arg(req: Request, name: str) -> int | None:
    raw = req.arg(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise ApiError(400, "BadRequest", f"{name} must be an integer", name) from None


def _bill_filter(sb: ClioSandbox, req: Request) -> BillFilter:
    state = req.arg("state")
    if state is not None and state not in BILL_STATES:
        raise ApiError(400, "BadRequest", f"state must be one of {', '.join(BILL_STATES)}", "state")
    type_ = req.arg("type")
    if type_ is not None and type_ not in TYPE_FILTER_TO_KIND:
        raise ApiError(400, "BadRequest", "type must be revenue or trust", "type")
    matter_raw = req.arg("matter_id")
    ids_raw = req.query.get("ids[]", []) + req.query.get("ids", [])
    try:
        ids = frozenset(int(v) for raw in ids_raw for v in raw.split(",") if v) if ids_raw else None
    except ValueError:
        raise ApiError(400, "BadRequest", "ids[] must be integers", "ids[]") from None
    status = req.arg("status")
    if status not in (None, "all", "overdue"):
        raise ApiError(400, "BadRequest", "status must be all or overdue", "status")
    overdue = status == "overdue" or req.arg("overdue_only") == "true"

    def stamp(name: str) -> datetime | None:
        raw = req.arg(name)
        return parse_timestamp(raw, name) if raw else None

    def day(name: str) -> Any:
        raw = req.arg(name)
        return parse_date(raw, name) if raw else None

    if req.arg("client_id") == "null":
        raise ApiError(400, "BadRequest", "client_id cannot be null", "client_id")
    return BillFilter(
        state=state,
        kind=TYPE_FILTER_TO_KIND[type_] if type_ else None,
        updated_since=stamp("updated_since"),
        created_since=stamp("created_since"),
        client_id=_int_arg(req, "client_id"),
        matter_id=None if matter_raw == "null" else _int_arg(req, "matter_id"),
        matter_is_null=matter_raw == "null",
        ids=ids,
        query=req.arg("query") or None,
        issued_after=day("issued_after"),
        issued_before=day("issued_before"),
        due_after=day("due_after"),
        due_before=day("due_before"),
        overdue_on=sb.state.today() if overdue else None,
        include_deleted=sb.state.list_includes_deleted,
    )


def _encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"bills:{last_id}".encode()).decode().rstrip("=")


def _decode_cursor(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        kind, _, last = text.partition(":")
        if kind != "bills":
            raise ValueError(kind)
        return int(last)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApiError(400, "BadRequest", "page_token is invalid", "page_token") from None


def list_bills(sb: ClioSandbox, req: Request, _: re.Match[str], token: Token) -> Response:
    spec = _bill_spec(req)
    limit = _int_arg(req, "limit")
    if limit is None:
        limit = MAX_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(400, "BadRequest", f"limit must be between 1 and {MAX_LIMIT}", "limit")
    order = req.arg("order") or "id(asc)"
    if order not in ORDERS:
        raise ApiError(400, "BadRequest", f"order {order!r} is not a valid order", "order")
    if order != "id(asc)":
        # Clio pages other orders with `offset` (capped at 10,000 rows); the sandbox models the
        # cursor mode only, which is the one a full sync can use.
        raise ApiError(
            400, "BadRequest", "the sandbox supports cursor paging only: order=id(asc)", "order"
        )
    if req.arg("offset") is not None:
        raise ApiError(400, "BadRequest", "offset paging is not supported for bills", "offset")
    page_token = req.arg("page_token")
    after_id = _decode_cursor(page_token) if page_token else 0
    flt = _bill_filter(sb, req)
    bills, more, records = sb.state.list_bills(token.account, flt, after_id, limit)
    paging: dict[str, str] = {}
    if more and bills:
        # The next URL carries the original query plus the cursor; clients follow it verbatim.
        params = [
            (k, v) for k, v in parse_qsl(req.raw_query, keep_blank_values=True) if k != "page_token"
        ]
        params.append(("page_token", _encode_cursor(bills[-1].id)))
        paging["next"] = f"{sb.public_origin(req)}{req.path}?{urlencode(params)}"
    data = [sb.state.render_bill(b, spec) for b in bills]
    return json_response(200, {"data": data, "meta": {"paging": paging, "records": records}})


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    candidates = [c.strip().removeprefix("W/") for c in header.split(",")]
    return etag in candidates


def show_bill(sb: ClioSandbox, req: Request, match: re.Match[str], token: Token) -> Response:
    spec = _bill_spec(req)
    bill = sb.state.bill_of(token.account, int(match["id"]))
    if _etag_matches(req.headers.get("If-None-Match"), bill.etag):
        return Response(304, headers={"ETag": bill.etag})
    since = req.headers.get("If-Modified-Since")
    if since and not req.headers.get("If-None-Match"):
        try:
            moment = parsedate_to_datetime(since)
        except (TypeError, ValueError):
            moment = None
        if moment is not None and bill.updated_at.replace(microsecond=0) <= moment:
            return Response(304, headers={"ETag": bill.etag})
    return json_response(200, {"data": sb.state.render_bill(bill, spec)}, {"ETag": bill.etag})


# Bill attributes an API PATCH may set (the sandbox's subset of Clio's settable keys).
_PATCHABLE_TEXT = ("memo", "subject", "number", "purchase_order")


def patch_bill(sb: ClioSandbox, req: Request, match: re.Match[str], token: Token) -> Response:
    spec = _bill_spec(req)
    bill = sb.state.bill_of(token.account, int(match["id"]))
    if_match = req.headers.get("If-Match")
    if if_match and not _etag_matches(if_match, bill.etag):
        raise ApiError(412, "PreconditionFailed", "the bill changed since that etag was read")
    body = req.json()
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        raise ApiError(400, "BadRequest", 'the body must be {"data": {...}}', "data")
    changes: dict[str, Any] = {}
    for key in _PATCHABLE_TEXT:
        if key in data:
            if key == "purchase_order":
                continue  # accepted and ignored: the sandbox does not store it
            changes[key] = None if data[key] is None else str(data[key])
    for key in ("issued_at", "due_at"):
        if key in data:
            changes[key] = None if data[key] is None else parse_date(data[key], key)
    state = data.get("state")
    if state is not None and state not in BILL_STATES:
        raise ApiError(422, "UnprocessableEntity", "state is not a bill state", "state")
    if state == "paid" and bill.state != "paid":
        # Clio lists "paid" in the enum, but a state change cannot record a payment.
        raise ApiError(422, "UnprocessableEntity", "a bill becomes paid by recording payments")
    updated = sb.state.update_bill(bill.id, state=state, changes=changes)
    return json_response(200, {"data": sb.state.render_bill(updated, spec)}, {"ETag": updated.etag})


def delete_bill(sb: ClioSandbox, req: Request, match: re.Match[str], token: Token) -> Response:
    bill = sb.state.bill_of(token.account, int(match["id"]))
    sb.state.delete_bill_as_clio(bill)
    return Response(204)


def preview_bill(sb: ClioSandbox, req: Request, match: re.Match[str], token: Token) -> Response:
    bill = sb.state.bill_of(token.account, int(match["id"]))
    return Response(200, bill_preview_html(sb.state, bill).encode(), "text/html; charset=utf-8")


# -- API: webhooks ----------------------------------------------------------------------------


def _webhook_spec(req: Request) -> Any:
    try:
        return parse_fields(req.arg("fields"), WEBHOOK)
    except FieldsError as exc:
        raise ApiError(400, "BadRequest", str(exc), "fields") from None


def _data_of(req: Request) -> Any:
    body = req.json()
    if not isinstance(body, dict) or "data" not in body:
        raise ApiError(400, "BadRequest", 'the body must be {"data": {...}}', "data")
    return body["data"]


def create_webhook(sb: ClioSandbox, req: Request, _: re.Match[str], token: Token) -> Response:
    spec = _webhook_spec(req)
    hook = sb.state.create_webhook(token.account, _data_of(req))
    return json_response(201, {"data": sb.state.render_webhook(hook, spec)})


def list_webhooks(sb: ClioSandbox, req: Request, _: re.Match[str], token: Token) -> Response:
    spec = _webhook_spec(req)
    hooks = sb.state.webhooks_of(token.account)
    data = [sb.state.render_webhook(h, spec) for h in hooks]
    return json_response(200, {"data": data, "meta": {"paging": {}, "records": len(data)}})


def show_webhook(sb: ClioSandbox, req: Request, match: re.Match[str], token: Token) -> Response:
    spec = _webhook_spec(req)
    hook = sb.state.webhook_of(token.account, int(match["id"]))
    return json_response(200, {"data": sb.state.render_webhook(hook, spec)})


def patch_webhook(sb: ClioSandbox, req: Request, match: re.Match[str], token: Token) -> Response:
    spec = _webhook_spec(req)
    hook = sb.state.update_webhook(token.account, int(match["id"]), _data_of(req))
    return json_response(200, {"data": sb.state.render_webhook(hook, spec)})


def delete_webhook(sb: ClioSandbox, req: Request, match: re.Match[str], token: Token) -> Response:
    sb.state.delete_webhook(token.account, int(match["id"]))
    return Response(204)


def activate_webhook(sb: ClioSandbox, req: Request, match: re.Match[str], token: Token) -> Response:
    spec = _webhook_spec(req)
    hook = sb.state.activate_webhook(
        token.account, int(match["id"]), req.headers.get("X-Hook-Secret")
    )
    return json_response(200, {"data": sb.state.render_webhook(hook, spec)})


# Paths are matched after the optional `.json` suffix is removed (Clio accepts both forms).
API_ROUTES: list[tuple[str, re.Pattern[str], ApiRoute]] = [
    ("GET", re.compile(r"/api/v4/users/who_am_i"), who_am_i),
    ("GET", re.compile(r"/api/v4/bills"), list_bills),
    ("GET", re.compile(r"/api/v4/bills/(?P<id>\d+)"), show_bill),
    ("PATCH", re.compile(r"/api/v4/bills/(?P<id>\d+)"), patch_bill),
    ("DELETE", re.compile(r"/api/v4/bills/(?P<id>\d+)"), delete_bill),
    ("GET", re.compile(r"/api/v4/bills/(?P<id>\d+)/preview"), preview_bill),
    ("GET", re.compile(r"/api/v4/webhooks"), list_webhooks),
    ("POST", re.compile(r"/api/v4/webhooks"), create_webhook),
    ("GET", re.compile(r"/api/v4/webhooks/(?P<id>\d+)"), show_webhook),
    ("PATCH", re.compile(r"/api/v4/webhooks/(?P<id>\d+)"), patch_webhook),
    ("DELETE", re.compile(r"/api/v4/webhooks/(?P<id>\d+)"), delete_webhook),
    ("PUT", re.compile(r"/api/v4/webhooks/(?P<id>\d+)/activate"), activate_webhook),
]

ROUTES: list[tuple[str, re.Pattern[str], Route]] = [
    ("GET", re.compile(r"/oauth/authorize"), oauth_authorize),
    ("POST", re.compile(r"/oauth/token"), oauth_token),
    ("GET", re.compile(r"/nc/?"), nc_page),
    *controls.ROUTES,
]


def _rate_headers(limit: int, remaining: int, reset: int) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": str(reset),
    }


def handle_api(sb: ClioSandbox, req: Request) -> Response:
    """Authenticate, apply faults and the rate limit, then run the API route."""
    path = req.path.removesuffix(".json")
    version = req.headers.get("X-API-VERSION") or DEFAULT_API_VERSION
    base = {"X-API-VERSION": version}
    sb.state.count_request(sb.state.token_account(req.headers.get("Authorization")), req.path)
    if version not in SUPPORTED_API_VERSIONS:
        message = f"API version {version} is invalid or no longer supported"
        return json_response(410, {"error": {"type": "Gone", "message": message}}, base)
    try:
        token = sb.state.authenticate(req.headers.get("Authorization"))
    except OAuthError as exc:
        headers = {**base, "WWW-Authenticate": f'Bearer error="{exc.error}"'}
        return json_response(exc.status, exc.body(), headers)
    fault = sb.state.take_fault(token.account, req.path)
    if fault is not None:
        peek = sb.state.peek_rate(token.access_token)
        headers = {**base, **_rate_headers(peek.limit, peek.remaining, peek.reset)}
        if fault.status == 429:
            headers["Retry-After"] = str(fault.retry_after)
            body = {"error": {"type": "RateLimited", "message": "Rate limit exceeded (injected)"}}
        else:
            phrase = HTTPStatus(fault.status).phrase
            body = {"error": {"type": phrase.replace(" ", ""), "message": f"{phrase} (injected)"}}
        return json_response(fault.status, body, headers)
    decision = sb.state.take_rate(token.access_token)
    headers = {**base, **_rate_headers(decision.limit, decision.remaining, decision.reset)}
    if not decision.allowed:
        sb.state.count_rate_limited(token.account)
        headers["Retry-After"] = str(decision.retry_after)
        message = f"Rate limit of {decision.limit} requests per window exceeded"
        return json_response(429, {"error": {"type": "RateLimited", "message": message}}, headers)
    known_path = False
    for method, pattern, route in API_ROUTES:
        match = pattern.fullmatch(path)
        if match is None:
            continue
        known_path = True
        if method == req.method:
            try:
                response = route(sb, req, match, token)
            except ApiError as exc:
                response = json_response(exc.status, exc.body())
            response.headers = {**headers, **response.headers}
            return response
    if known_path:
        return json_response(
            405,
            {"error": {"type": "MethodNotAllowed", "message": f"{req.method} not allowed"}},
            headers,
        )
    body = {"error": {"type": "NotFound", "message": "no such endpoint"}}
    return json_response(404, body, headers)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a paging client reuses its connection
    # Headers and body leave in one write, and without Nagle's delay: otherwise every answer on a
    # kept-alive connection waits ~40 ms for the client's delayed ACK.
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True
    server_version = "ClioSandbox/1.0"
    sandbox: ClioSandbox  # set on the subclass made per sandbox

    def log_message(self, format: str, *args: Any) -> None:
        if self.sandbox.verbose:
            super().log_message(format, *args)

    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            body_error = {"error": {"type": "PayloadTooLarge", "message": "body too large"}}
            self._send(json_response(413, body_error))
            return
        body = self.rfile.read(length) if length else b""
        req = Request(self, method, body)
        try:
            response = self.sandbox.handle(req)
        except ApiError as exc:
            response = json_response(exc.status, exc.body())
        except Exception as exc:  # a sandbox bug must answer, not hang the client
            response = json_response(
                500, {"error": {"type": "InternalServerError", "message": repr(exc)}}
            )
        self._send(response)

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.content_type:
            self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if response.body:
            self.wfile.write(response.body)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's backlog of 5 overflows under the load test's bursts of new connections.
    request_queue_size = socket.SOMAXCONN
    # Keep-alive connections of clients would otherwise hold stop() until they close.
    block_on_close = False


class ClioSandbox(BackgroundServer):
    """A Clio Manage API v4 stand-in on a real socket, serving from a background thread."""

    thread_name = "clio-sandbox"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        rate_limit: int = 50,
        rate_window_seconds: float = 60,
        token_ttl_seconds: int = 2592000,
        list_includes_deleted: bool = False,
        webhook_delay_seconds: float = 0.05,
        *,
        client_id: str = "sandbox-client-id",
        client_secret: str = "sandbox-client-secret",
        webhook_tries: int = 3,
        webhook_backoff_seconds: float = 0.2,
        public_url: str | None = None,
        clock: Callable[[], float] = time.time,
        verbose: bool = False,
    ) -> None:
        super().__init__(host, port)
        self.verbose = verbose
        self._public_url = public_url.rstrip("/") if public_url else None
        self.state = SandboxState(
            rate_limit=rate_limit,
            rate_window_seconds=rate_window_seconds,
            token_ttl_seconds=token_ttl_seconds,
            list_includes_deleted=list_includes_deleted,
            client_id=client_id,
            client_secret=client_secret,
            clock=clock,
        )
        self.dispatcher = WebhookDispatcher(
            self.state,
            delay_seconds=webhook_delay_seconds,
            tries=webhook_tries,
            backoff_seconds=webhook_backoff_seconds,
        )
        self.state.emit = self.dispatcher

    def public_origin(self, req: Request) -> str:
        return self._public_url or req.origin

    def handle(self, req: Request) -> Response:
        if req.path.startswith("/api/v4/"):
            return handle_api(self, req)
        known_path = False
        for method, pattern, route in ROUTES:
            match = pattern.fullmatch(req.path)
            if match is None:
                continue
            known_path = True
            if method == req.method:
                return route(self, req, match)
        if known_path:
            message = f"{req.method} not allowed"
            return json_response(405, {"error": {"type": "MethodNotAllowed", "message": message}})
        return json_response(404, {"error": {"type": "NotFound", "message": "no such endpoint"}})

    def _bind(self) -> _Server:
        handler = type("Handler", (_Handler,), {"sandbox": self})
        server = _Server((self.host, self.port), handler)
        self._server = server
        return server

    def start(self) -> ClioSandbox:
        self._serve_in_background()
        return self

    def __enter__(self) -> ClioSandbox:
        return self.start()
