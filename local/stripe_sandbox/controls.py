"""What no real Stripe endpoint does: the `/_sandbox` test controls (pay, settle, fail; open,
move and close disputes: inquiries and chargebacks, every Stripe status; finish refunds, list
and resend events, pause delivery, reset) and the hosted checkout page.

Controls and page POSTs deliver the events they cause before answering, so a test that drives
the sandbox sees every webhook already received when the call returns. Control errors are
`{"error": "<message>"}` with 404 (unknown id), 409 (wrong state) or 422 (bad input).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from local.stripe_sandbox.page import checkout_page, closed_page, message_page
from local.stripe_sandbox.params import ControlError, Obj
from local.stripe_sandbox.wire import Request, Response, html_response, json_response

if TYPE_CHECKING:
    from local.stripe_sandbox.server import StripeSandbox

Route = Callable[["StripeSandbox", Request, re.Match[str]], Response]


def _amount(body: Obj) -> Any:
    amount = body.get("amount_cents")
    if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int)):
        raise ControlError(422, "amount_cents must be an integer")
    return amount


def _changing(sb: StripeSandbox, change: Callable[[], Obj]) -> Response:
    """Run a state change, deliver its events, answer 200 with its result."""
    with sb.state.txn() as tx:
        result = change()
    sb.deliverer.deliver_new(tx.events)
    return json_response(200, result)


def pay(sb: StripeSandbox, req: Request, m: re.Match[str]) -> Response:
    body = req.json()
    method, outcome = body.get("method"), body.get("outcome", "succeeded")
    return _changing(sb, lambda: sb.state.pay(m[1], method, outcome, _amount(body)))


def settle(sb: StripeSandbox, req: Request, m: re.Match[str]) -> Response:
    return _changing(sb, lambda: sb.state.settle(m[1]))


def fail(sb: StripeSandbox, req: Request, m: re.Match[str]) -> Response:
    return _changing(sb, lambda: sb.state.fail(m[1]))


def dispute(sb: StripeSandbox, req: Request, m: re.Match[str]) -> Response:
    body = req.json()
    amount, inquiry = _amount(body), body.get("inquiry", False)
    return _changing(sb, lambda: sb.state.dispute(m[1], amount, inquiry))


def dispute_update(sb: StripeSandbox, req: Request, m: re.Match[str]) -> Response:
    status = req.json().get("status")
    return _changing(sb, lambda: sb.state.update_dispute(m[1], status))


def dispute_close(sb: StripeSandbox, req: Request, m: re.Match[str]) -> Response:
    status = req.json().get("status")
    return _changing(sb, lambda: sb.state.close_dispute(m[1], status))


def refund_succeed(sb: StripeSandbox, req: Request, m: re.Match[str]) -> Response:
    return _changing(sb, lambda: sb.state.finish_refund(m[1], succeeded=True))


def refund_fail(sb: StripeSandbox, req: Request, m: re.Match[str]) -> Response:
    reason = req.json().get("failure_reason")
    return _changing(sb, lambda: sb.state.finish_refund(m[1], False, reason))


def events(sb: StripeSandbox, req: Request, m: re.Match[str]) -> Response:
    with sb.state.lock:
        listed = [event.as_dict() for event in sb.state.events]
    return json_response(200, listed)


def _stored_event(sb: StripeSandbox, event_id: str) -> Any:
    event = sb.state.event(event_id)
    if event is None:
        raise ControlError(404, f"no event {event_id}")
    return event


def deliveries(sb: StripeSandbox, req: Request, m: re.Match[str]) -> Response:
    event = _stored_event(sb, m[1])
    with sb.state.lock:
        attempts = [dict(record) for record in event.deliveries]
    return json_response(200, attempts)


def resend(sb: StripeSandbox, req: Request, m: re.Match[str]) -> Response:
    event = _stored_event(sb, m[1])
    if sb.state.webhook_url is None:
        raise ControlError(409, "no webhook_url is set")
    record = sb.deliverer.send(event)
    return json_response(200, {"status": record["status"], "error": record["error"]})


def delivery(sb: StripeSandbox, req: Request, m: re.Match[str]) -> Response:
    body = req.json()
    if "paused" in body:
        if not isinstance(body["paused"], bool):
            raise ControlError(422, "paused must be true or false")
        sb.state.paused = body["paused"]
    if "webhook_url" in body:
        url = body["webhook_url"]
        if url is not None and not isinstance(url, str):
            raise ControlError(422, "webhook_url must be a string or null")
        sb.webhook_url = url
    return json_response(200, {"paused": sb.state.paused, "webhook_url": sb.webhook_url})


def health(sb: StripeSandbox, req: Request, m: re.Match[str]) -> Response:
    return json_response(200, {"ok": True})


def idle(sb: StripeSandbox, req: Request, m: re.Match[str]) -> Response:
    """Wait (up to `?timeout=` seconds, 15 by default) for API-caused webhooks to go out."""
    try:
        timeout = min(float(req.arg("timeout") or 15), 60.0)
    except ValueError:
        raise ControlError(422, "timeout must be a number of seconds") from None
    return json_response(200, {"idle": sb.wait_idle(timeout)})


def reset(sb: StripeSandbox, req: Request, m: re.Match[str]) -> Response:
    sb.state.reset()
    return json_response(200, {"reset": True})


# -- the hosted checkout page ------------------------------------------------------------------


def page(sb: StripeSandbox, req: Request, m: re.Match[str]) -> Response:
    with sb.state.lock:
        session = sb.state.find("checkout.session", m[1])
        if session is None:
            return html_response(*message_page(404, "No such checkout session"))
        if session["status"] != "open":
            return html_response(*closed_page(session))
        html = checkout_page(session, sb.state.line_items[m[1]], req.arg("declined"))
    return html_response(200, html)


def page_submit(sb: StripeSandbox, req: Request, m: re.Match[str]) -> Response:
    form = dict(parse_qsl(req.body.decode("utf-8", "replace")))
    method, outcome = form.get("method", ""), form.get("outcome", "succeeded")
    with sb.state.lock:
        session = sb.state.find("checkout.session", m[1])
        if session is None:
            return html_response(*message_page(404, "No such checkout session"))
        if session["status"] != "open":
            return html_response(*closed_page(session))
        try:
            with sb.state.txn() as tx:
                sb.state.pay(m[1], method, outcome)
        except ControlError as exc:
            return html_response(*message_page(exc.status, str(exc)))
        success_url = session["success_url"].replace("{CHECKOUT_SESSION_ID}", m[1])
    sb.deliverer.deliver_new(tx.events)
    if outcome == "failed":
        kind = "card" if method == "card" else "bank"
        return Response(303, headers={"Location": f"/c/pay/{m[1]}?declined={kind}"})
    return Response(303, headers={"Location": success_url})


_ID = r"([A-Za-z0-9_]+)"
ROUTES: list[tuple[str, re.Pattern[str], Route]] = [
    (method, re.compile(pattern), route)
    for method, pattern, route in [
        ("GET", rf"/c/pay/{_ID}", page),
        ("POST", rf"/c/pay/{_ID}", page_submit),
        ("GET", r"/_sandbox/health", health),
        ("GET", r"/_sandbox/idle", idle),
        ("POST", r"/_sandbox/reset", reset),
        ("POST", r"/_sandbox/delivery", delivery),
        ("GET", r"/_sandbox/events", events),
        ("GET", rf"/_sandbox/events/{_ID}/deliveries", deliveries),
        ("POST", rf"/_sandbox/events/{_ID}/resend", resend),
        ("POST", rf"/_sandbox/checkout_sessions/{_ID}/pay", pay),
        ("POST", rf"/_sandbox/payment_intents/{_ID}/settle", settle),
        ("POST", rf"/_sandbox/payment_intents/{_ID}/fail", fail),
        ("POST", rf"/_sandbox/payment_intents/{_ID}/dispute", dispute),
        ("POST", rf"/_sandbox/disputes/{_ID}/update", dispute_update),
        ("POST", rf"/_sandbox/disputes/{_ID}/close", dispute_close),
        ("POST", rf"/_sandbox/refunds/{_ID}/succeed", refund_succeed),
        ("POST", rf"/_sandbox/refunds/{_ID}/fail", refund_fail),
    ]
]
