"""The `/v1` Stripe API the project calls: bearer-key auth, bracket-encoded params, idempotent
POSTs (same key and params replay the first answer byte for byte; other params are refused with
`idempotency_error`), JSON answers in Stripe's shapes and errors in Stripe's error envelope.

Successful answers and declined charges (402) are kept for replay: Stripe saves no result for
a request that failed validation. Events an API call causes are delivered after its answer has
been sent.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from local.stripe_sandbox.forms import FormError, parse_form
from local.stripe_sandbox.params import API_VERSION, Obj, StripeApiError, new_id
from local.stripe_sandbox.state import Replay
from local.stripe_sandbox.wire import Request, Response

if TYPE_CHECKING:
    from local.stripe_sandbox.server import StripeSandbox

Handler = Callable[["StripeSandbox", re.Match[str], Obj], Any]
_ID = r"([A-Za-z0-9_]+)"


def _retrieve(kind: str, param: str) -> Handler:
    return lambda sb, m, _: sb.state.get(kind, m[1], param)


def _event(sb: StripeSandbox, m: re.Match[str], _: Obj) -> Obj:
    event = sb.state.event(m[1])
    if event is None:
        message = f"No such event: '{m[1]}'"
        raise StripeApiError(404, message, param="id", code="resource_missing")
    return event.as_dict()


def _events(sb: StripeSandbox, _: re.Match[str], p: Obj) -> Obj:
    raw = p.get("limit", "10")
    if not str(raw).isdigit() or not 1 <= int(raw) <= 100:
        message = "This value must be less than or equal to 100 and greater than 0."
        raise StripeApiError(400, message, param="limit", code="parameter_invalid_integer")
    return sb.state.list_events(int(raw), p.get("type"), p.get("starting_after"))


ROUTES: list[tuple[str, re.Pattern[str], Handler]] = [
    (method, re.compile(pattern), handler)
    for method, pattern, handler in [
        ("POST", r"/v1/checkout/sessions", lambda sb, m, p: sb.state.create_session(p)),
        ("GET", rf"/v1/checkout/sessions/{_ID}", _retrieve("checkout.session", "session")),
        (
            "POST",
            rf"/v1/checkout/sessions/{_ID}/expire",
            lambda sb, m, p: sb.state.expire_session(m[1]),
        ),
        ("GET", rf"/v1/payment_intents/{_ID}", _retrieve("payment_intent", "intent")),
        ("GET", rf"/v1/charges/{_ID}", _retrieve("charge", "charge")),
        ("POST", r"/v1/refunds", lambda sb, m, p: sb.state.create_refund(p)),
        ("GET", rf"/v1/refunds/{_ID}", _retrieve("refund", "id")),
        ("GET", rf"/v1/disputes/{_ID}", _retrieve("dispute", "dispute")),
        ("POST", r"/v1/accounts", lambda sb, m, p: sb.state.create_account(p)),
        ("GET", rf"/v1/accounts/{_ID}", _retrieve("account", "account")),
        ("POST", r"/v1/account_links", lambda sb, m, p: sb.state.create_account_link(p)),
        ("POST", r"/v1/customers", lambda sb, m, p: sb.state.create_customer(p)),
        ("GET", rf"/v1/customers/{_ID}", _retrieve("customer", "customer")),
        (
            "GET",
            rf"/v1/customers/{_ID}/payment_methods",
            lambda sb, m, p: sb.state.customer_payment_methods(m[1], p),
        ),
        ("GET", rf"/v1/payment_methods/{_ID}", _retrieve("payment_method", "payment_method")),
        (
            "POST",
            rf"/v1/payment_methods/{_ID}/detach",
            lambda sb, m, p: sb.state.detach_payment_method(m[1]),
        ),
        ("GET", rf"/v1/setup_intents/{_ID}", _retrieve("setup_intent", "intent")),
        ("GET", rf"/v1/mandates/{_ID}", _retrieve("mandate", "mandate")),
        ("POST", r"/v1/payment_intents", lambda sb, m, p: sb.state.create_payment_intent(p)),
        ("GET", r"/v1/events", _events),
        ("GET", rf"/v1/events/{_ID}", _event),
    ]
]


def _api_key(req: Request) -> str | None:
    auth = req.headers.get("Authorization") or ""
    scheme, _, credentials = auth.partition(" ")
    if scheme.lower() == "bearer":
        return credentials.strip()
    if scheme.lower() == "basic":  # `curl -u sk_test_...:`
        try:
            return base64.b64decode(credentials).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            return None
    return None


def _answer(status: int, payload: Obj, headers: dict[str, str]) -> Response:
    return Response(status, json.dumps(payload, indent=2).encode(), headers=headers)


def handle_api(sb: StripeSandbox, req: Request) -> Response:
    request_id = new_id("req_")
    headers = {
        "Request-Id": request_id,
        "Stripe-Version": req.headers.get("Stripe-Version") or API_VERSION,
    }
    key = _api_key(req)
    if key != sb.api_key:
        if key:
            shown = f"{key[:8]}{'*' * (len(key) - 12)}{key[-4:]}" if len(key) > 12 else "****"
            message = f"Invalid API Key provided: {shown}"
        else:
            message = (
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                "YOUR_SECRET_KEY')."
            )
        headers["WWW-Authenticate"] = 'Basic realm="Stripe"'
        return _answer(401, StripeApiError(401, message).body(), headers)
    found = next(
        (
            (route, match)
            for method, pattern, route in ROUTES
            if method == req.method and (match := pattern.fullmatch(req.path))
        ),
        None,
    )
    if found is None:
        message = (
            f"Unrecognized request URL ({req.method}: {req.path}). Please see "
            "https://stripe.com/docs or we can help at https://support.stripe.com/."
        )
        return _answer(404, StripeApiError(404, message).body(), headers)
    handler, match = found
    try:
        params = parse_form(req.body if req.method == "POST" else req.raw_query)
    except FormError as exc:
        return _answer(400, StripeApiError(400, str(exc), param=exc.param).body(), headers)
    idem = req.headers.get("Idempotency-Key") if req.method == "POST" else None
    if idem:
        headers["Idempotency-Key"] = idem
    route = f"{req.method} {req.path}"
    state = sb.state
    with state.lock:
        try:
            seen = state.replay(idem, route, params) if idem else None
        except StripeApiError as exc:
            return _answer(exc.status, exc.body(), headers)
        if seen is not None:
            replayed = {"Idempotent-Replayed": "true", "Original-Request": seen.request_id}
            return Response(seen.status, seen.body, headers={**headers, **replayed})
        with state.txn(request_id, idem) as tx:
            status: int
            payload: Any
            try:
                answer = handler(sb, match, params)
                # A confirmation that was declined answers 402 with the PaymentIntent inside.
                status, payload = answer if isinstance(answer, tuple) else (200, answer)
            except StripeApiError as exc:
                status, payload = exc.status, exc.body()
        response = _answer(status, payload, headers)
        # Stripe saves the result of every request that began executing, a declined charge
        # (402) included; not one that failed validation (docs.stripe.com/idempotency).
        if idem and (status < 400 or status == 402):
            state.idempotency[idem] = Replay(route, params, status, response.body, request_id)
    response.deliver_after = tx.events
    return response
