"""The local API Gateway: HTTP requests on 127.0.0.1 become REST API proxy events for the same
handler code that runs in Lambda, routed by the Api events declared in template.yaml.

It emulates the Cognito authorizer the template puts on the firm API (local/authorizer.py):
`Authorization: Bearer <IdToken>` of the emulated user pool is verified as API Gateway verifies
it (signature against the pool's JWKS, issuer, audience, token_use, expiry) and its claims reach
the handler under `requestContext.authorizer.claims`. `Bearer dev-<firm_id>` (an admin of that
firm, for tests and scripts) is accepted here and nowhere else. Routes with `Auth: Authorizer:
NONE` take no token. Anything not routed is served from
`web/` (GET) or by the local extra routes (outbox and the like) given to the server. Its own
refusals (no token, no route) are the API's `GatewayResponses` from the template, as deployed.
"""

from __future__ import annotations

import base64
import json
import mimetypes
import os
import re
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from local.authorizer import DEV_TOKEN, CognitoAuthorizer, dev_claims
from local.aws_template import load_template
from local.lambdas import FunctionSpec, LocalLambdas
from local.pool import THROTTLED

ROOT = Path(__file__).resolve().parent.parent
WEB_DIR = ROOT / "web"
STAGE = "local"
# API Gateway gives up on an integration after 29 s.
INTEGRATION_TIMEOUT = 29
# Routes whose callers time out quickly and retry on their own: Clio retries a delivery that
# fails or is not answered in time (its timeout is "short"; the sandbox's is 5 s). A request on
# one that finds every worker of its function busy, the pool at its concurrency, waits at most
# LOCAL_WEBHOOK_QUEUE_SECONDS for one, then is throttled as Lambda throttles an invocation
# beyond a function's concurrency, and answered at once with the API's THROTTLED gateway
# response (429): an answer the sender retries, where a longer wait would be none at all.
# Every other route waits for a worker (docs/local-stack.md, "Where it differs").
RETRYING_SENDERS = frozenset({"/webhooks/clio"})
DEFAULT_WEBHOOK_QUEUE_SECONDS = 1.0

LocalRoute = Callable[[str, str, dict[str, str], bytes], tuple[int, dict[str, str], bytes]]


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # as in the template: /sync/{id}
    pattern: re.Pattern[str]
    function: FunctionSpec
    authorized: bool


def _compile(path: str) -> re.Pattern[str]:
    regex = re.sub(r"\{([A-Za-z0-9_]+)\+?\}", r"(?P<\1>[^/]+)", path)
    return re.compile(f"^{regex}$")


# API Gateway's status for each gateway response type the local gateway answers, where the
# template's GatewayResponses entry gives no StatusCode.
GATEWAY_RESPONSE_STATUS = {
    "UNAUTHORIZED": 401,
    "MISSING_AUTHENTICATION_TOKEN": 403,
    "THROTTLED": 429,
}
GATEWAY_MESSAGES = {
    "THROTTLED": "Too Many Requests",
    "UNAUTHORIZED": "Unauthorized",
    "MISSING_AUTHENTICATION_TOKEN": "Missing Authentication Token",
}


def gateway_responses_from_template() -> dict[str, tuple[int | None, str]]:
    """The API's GatewayResponses: response type -> (status code or None, JSON body template)."""
    declared: dict[str, tuple[int | None, str]] = {}
    for resource in load_template()["Resources"].values():
        if resource.get("Type") != "AWS::Serverless::Api":
            continue
        for kind, spec in (resource.get("Properties", {}).get("GatewayResponses") or {}).items():
            templates = spec.get("ResponseTemplates") or {}
            status = spec.get("StatusCode")
            declared[kind] = (
                int(status) if status else None,
                str(templates.get("application/json", "")),
            )
    return declared


def render_gateway_response(
    declared: dict[str, tuple[int | None, str]], kind: str
) -> tuple[int, dict[str, str], bytes]:
    """What API Gateway answers for a gateway response of this type: the type's own entry, else
    DEFAULT_4XX, with the `$context.error` variables filled in as API Gateway fills them."""
    status, template = declared.get(kind) or (None, "")
    if not template:
        template = (declared.get("DEFAULT_4XX") or (None, ""))[1]
    message = GATEWAY_MESSAGES[kind]
    body = template.replace("$context.error.responseType", kind).replace(
        "$context.error.messageString", json.dumps(message)
    ) or json.dumps({"message": message})
    return (
        status or GATEWAY_RESPONSE_STATUS[kind],
        {"Content-Type": "application/json"},
        body.encode(),
    )


def routes_from_template(lambdas: LocalLambdas) -> list[Route]:
    template = load_template()
    api_auth = None
    for resource in template["Resources"].values():
        if resource.get("Type") == "AWS::Serverless::Api":
            api_auth = (resource.get("Properties", {}).get("Auth") or {}).get("DefaultAuthorizer")
    routes: list[Route] = []
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for event in (resource.get("Properties", {}).get("Events") or {}).values():
            if event.get("Type") != "Api":
                continue
            props = event["Properties"]
            auth = (props.get("Auth") or {}).get("Authorizer", api_auth)
            routes.append(
                Route(
                    method=str(props["Method"]).upper(),
                    path=str(props["Path"]),
                    pattern=_compile(str(props["Path"])),
                    function=lambdas.specs[logical_id],
                    authorized=bool(auth) and auth != "NONE",
                )
            )
    # Literal paths before templated ones, as API Gateway matches; a path's ANY method only
    # takes the methods the path does not declare.
    routes.sort(key=lambda r: ("{" in r.path, r.path, r.method == "ANY"))
    return routes


def proxy_event(
    route: Route,
    method: str,
    path: str,
    query: str,
    headers: dict[str, str],
    body: bytes,
    params: dict[str, str],
    claims: dict[str, str] | None,
) -> dict[str, Any]:
    multi_query = {k: v for k, v in parse_qs(query, keep_blank_values=True).items()}
    text_body: str | None = None
    is_b64 = False
    if body:
        try:
            text_body = body.decode("utf-8")
        except UnicodeDecodeError:
            text_body, is_b64 = base64.b64encode(body).decode(), True
    request_id = str(uuid.uuid4())
    return {
        "resource": route.path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": params or None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": route.path,
            "httpMethod": method,
            "path": f"/{STAGE}{path}",
            "stage": STAGE,
            "requestId": request_id,
            "extendedRequestId": request_id,
            "requestTimeEpoch": int(time.time() * 1000),
            "protocol": "HTTP/1.1",
            "accountId": "123456789012",
            "apiId": "local",
            "identity": {"sourceIp": "127.0.0.1", "userAgent": headers.get("User-Agent")},
            "authorizer": {"claims": claims} if claims else None,
        },
        "body": text_body,
        "isBase64Encoded": is_b64,
    }


class LocalApiGateway:
    def __init__(
        self,
        lambdas: LocalLambdas,
        *,
        host: str = "127.0.0.1",
        port: int = 3000,
        extra_routes: dict[str, LocalRoute] | None = None,
        region: str = "us-east-1",
        authorizer: CognitoAuthorizer | None = None,
        web_config: Callable[[], bytes] | None = None,
    ) -> None:
        self.lambdas = lambdas
        # None: only the dev tokens (tests that run no user pool).
        self.authorizer = authorizer
        # The web UI's config.js, when the stack makes it (the emulated pool's ids).
        self.web_config = web_config
        self.routes = routes_from_template(lambdas)
        self.extra_routes = extra_routes or {}
        self.gateway_responses = gateway_responses_from_template()
        self.region = region
        raw_queue = os.environ.get("LOCAL_WEBHOOK_QUEUE_SECONDS")
        self.webhook_queue_seconds = (
            float(raw_queue) if raw_queue else DEFAULT_WEBHOOK_QUEUE_SECONDS
        )
        # Open connections, so that stop() can end keep-alive ones instead of waiting on them.
        self._connections: set[Any] = set()
        self._connections_lock = threading.Lock()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Keep-alive plus Nagle's algorithm and delayed ACKs cost ~40 ms a request.
            disable_nagle_algorithm = True
            wbufsize = 64 * 1024

            def log_message(self, format: str, *args: Any) -> None:
                return  # quiet; the handlers log for themselves

            def setup(self) -> None:
                super().setup()
                with gateway._connections_lock:
                    gateway._connections.add(self.connection)

            def finish(self) -> None:
                with gateway._connections_lock:
                    gateway._connections.discard(self.connection)
                super().finish()

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, payload = gateway.handle(
                    self.command, self.path, {k: v for k, v in self.headers.items()}, body
                )
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve
            do_TRACE = do_QUERY = _serve  # answered as API Gateway would, never a 501

        self.server = _Server((host, port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        self.thread.start()

    def provision_retrying_senders(self) -> list[str]:
        """Keep the functions behind RETRYING_SENDERS' routes started (Lambda's provisioned
        concurrency), `LOCAL_WEBHOOK_PROVISIONED` workers each (default: the function's
        concurrency): a local cold start on busy cores takes longer than Clio waits for an
        answer, so no delivery may wait for one. Answers their names."""
        raw = os.environ.get("LOCAL_WEBHOOK_PROVISIONED")
        count = int(raw) if raw else None
        functions = {r.function.name: r.function for r in self.routes if r.path in RETRYING_SENDERS}
        for spec in functions.values():
            self.lambdas.provision(spec, count)
        return sorted(functions)

    def stop(self) -> None:
        """Stop accepting, then end the open connections (idle keep-alive ones included)."""
        self.server.shutdown()
        self.server.server_close()
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(raw_path)
        path = unquote(parts.path)
        for prefix, local_route in self.extra_routes.items():
            if path.startswith(prefix):
                return local_route(method, path, headers, body)
        for route in self.routes:
            match = route.pattern.match(path)
            if match and route.method in (method, "ANY"):
                return self._invoke(
                    route, method, path, parts.query, headers, body, match.groupdict()
                )
        if method in ("GET", "HEAD") and not any(r.pattern.match(path) for r in self.routes):
            return self._static(path)  # the web UI (CloudFront serves it in AWS)
        return render_gateway_response(self.gateway_responses, "MISSING_AUTHENTICATION_TOKEN")

    def _invoke(
        self,
        route: Route,
        method: str,
        path: str,
        query: str,
        headers: dict[str, str],
        body: bytes,
        params: dict[str, str],
    ) -> tuple[int, dict[str, str], bytes]:
        claims = None
        if route.authorized:
            token = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
            claims = self._claims(token)
            if claims is None:
                return render_gateway_response(self.gateway_responses, "UNAUTHORIZED")
        event = proxy_event(route, method, path, query, headers, body, params, claims)
        max_wait = self.webhook_queue_seconds if route.path in RETRYING_SENDERS else None
        outcome = self.lambdas.invoke_api(route.function, event, max_wait)
        if outcome.error == THROTTLED:
            sys.stderr.write(
                f"[apigw] 429 for {method} {path} ({route.function.name}): throttled, every "
                f"worker busy for {max_wait:g} s; the sender retries\n"
            )
            return render_gateway_response(self.gateway_responses, "THROTTLED")
        result = None if outcome.failed else _proxy_result(outcome.payload)
        if result is None:
            # A function error, crash or timeout, or an answer that is not a proxy response:
            # API Gateway answers 502 and keeps the details to its logs.
            sys.stderr.write(
                f"[apigw] 502 for {method} {path} ({route.function.name}): "
                f"{outcome.error or 'malformed proxy response'}\n"
            )
            if (
                outcome.error == "Sandbox.Timedout"
                and route.function.timeout >= INTEGRATION_TIMEOUT
            ):
                return _json(504, {"message": "Endpoint request timed out"})
            return _json(502, {"message": "Internal server error"})
        status = int(result["statusCode"])
        out_headers = {k: str(v) for k, v in (result.get("headers") or {}).items()}
        for name, values in (result.get("multiValueHeaders") or {}).items():
            out_headers[name] = ", ".join(str(v) for v in values)
        raw = result.get("body") or ""
        payload = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode()
        return status, out_headers, payload

    def _claims(self, token: str) -> dict[str, str] | None:
        found = DEV_TOKEN.match(token.strip())
        if found:
            return dev_claims(found.group(1))
        return self.authorizer.claims_for(token) if self.authorizer is not None else None

    def _static(self, path: str) -> tuple[int, dict[str, str], bytes]:
        if path == "/config.js" and self.web_config is not None:
            return (
                200,
                {"Content-Type": "text/javascript", "Cache-Control": "no-cache"},
                self.web_config(),
            )
        relative = path.lstrip("/") or "index.html"
        target = (WEB_DIR / relative).resolve()
        if not str(target).startswith(str(WEB_DIR.resolve())) or not target.is_file():
            target = WEB_DIR / "index.html"  # the web UI routes on the client side
            if not target.is_file():
                return _json(404, {"error": {"code": "not_found", "message": path, "field": None}})
        kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        return 200, {"Content-Type": kind, "Cache-Control": "no-cache"}, target.read_bytes()


class _Server(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5: under load (50 clients, both sandboxes'
    # webhooks, a GIL shared with the emulator) bursts of new connections overflow it.
    request_queue_size = socket.SOMAXCONN


def _proxy_result(payload: str) -> dict[str, Any] | None:
    """The function's answer when it is a proxy response API Gateway accepts."""
    try:
        result = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(result, dict):
        return None
    status = result.get("statusCode")
    if isinstance(status, bool) or not isinstance(status, (int, str)):
        return None
    try:
        if not 100 <= int(status) <= 599:
            return None
    except ValueError:
        return None
    return result


def _json(status: int, body: Any) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(body).encode()
