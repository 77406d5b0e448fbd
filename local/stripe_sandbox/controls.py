"""What no real Stripe endpoint does: the `/_sandbox` test controls (pay, settle, fail; complete a
connected account's onboarding or ask it for more; open, move and close disputes: inquiries
and chargebacks, every Stripe status; finish refunds, list and resend events, pause delivery,
reset), the hosted checkout page and the hosted Connect onboarding (Account Links' URLs).

Controls and page POSTs deliver the events they cause before answering, so a test that drives
the sandbox sees every webhook already received when the call returns. Control errors are
`{"error": "<message>"}` with 404 (unknown id), 409 (wrong state) or 422 (bad input).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from local.stripe_sandbox.onboarding_page import onboarding_page
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
    test = body.get("test_method")
    return _changing(sb, lambda: sb.state.pay(m[1], method, outcome, _amount(body), test))


def clock(sb: StripeSandbox, req: Request, m: re.Match[str]) -> Response:
    """`GET` the sandbox's time; `POST {"now": unix seconds}` moves it (the local clock)."""
    if req.method == "POST":
        with sb.state.lock:
            return json_response(200, sb.state.set_clock(req.json().get("now")))
    return json_response(200, {"now": sb.state.now()})


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


def account_complete(sb: StripeSandbox, req: Request, m: re.Match[str]) -> Response:
    return _changing(sb, lambda: sb.state.complete_account(m[1]))


def account_requirements(sb: StripeSandbox, req: Request, m: re.Match[str]) -> Response:
    body = req.json()
    return _changing(sb, lambda: sb.state.require(m[1], body))


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
    if sb.deliverer.endpoint(event)[0] is None:
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
    if "connect_webhook_url" in body:
        url = body["connect_webhook_url"]
        if url is not None and not isinstance(url, str):
            raise ControlError(422, "connect_webhook_url must be a string or null")
        sb.state.connect_webhook_url = url
    return json_response(
        200,
        {
            "paused": sb.state.paused,
            "webhook_url": sb.webhook_url,
            "connect_webhook_url": sb.state.connect_webhook_url,
        },
    )


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
    test = form.get("test_method") or None
    with sb.state.lock:
        session = sb.state.find("checkout.session", m[1])
        if session is None:
            return html_response(*message_page(404, "No such checkout session"))
        if session["status"] != "open":
            return html_response(*closed_page(session))
        try:
            with sb.state.txn() as tx:
                sb.state.pay(m[1], method, outcome, None, test)
        except ControlError as exc:
            return html_response(*message_page(exc.status, str(exc)))
        success_url = session["success_url"].replace("{CHECKOUT_SESSION_ID}", m[1])
    sb.deliverer.deliver_new(tx.events)
    if outcome == "failed":
        kind = "card" if method == "card" else "bank"
        return Response(303, headers={"Location": f"/c/pay/{m[1]}?declined={kind}"})
    return Response(303, headers={"Location": success_url})


# -- the hosted Connect onboarding (an Account Link's URL) --------------------------------------


def _onboarding(sb: StripeSandbox, m: re.Match[str]) -> tuple[Obj | None, Obj | None]:
    link = sb.state.link(m[1], m[2])
    account = sb.state.find("account", m[1]) if link is not None else None
    return link, account


def onboarding(sb: StripeSandbox, req: Request, m: re.Match[str]) -> Response:
    with sb.state.lock:
        link, account = _onboarding(sb, m)
        if link is None or account is None:
            return html_response(*message_page(404, "This onboarding link is not valid"))
        step = sb.state.next_step(account)
        if step is None:  # nothing left to collect: back to the platform
            return Response(303, headers={"Location": link["return_url"]})
        if sb.state.link_expired(link):  # Stripe sends the person to refresh_url for a new one
            return Response(303, headers={"Location": link["refresh_url"]})
        html = onboarding_page(account, link, step, req.path)
    return html_response(200, html)


def onboarding_submit(sb: StripeSandbox, req: Request, m: re.Match[str]) -> Response:
    form = dict(parse_qsl(req.body.decode("utf-8", "replace")))
    with sb.state.lock:
        link, account = _onboarding(sb, m)
        if link is None or account is None:
            return html_response(*message_page(404, "This onboarding link is not valid"))
        if sb.state.link_expired(link):
            return Response(303, headers={"Location": link["refresh_url"]})
        raw = form.get("step", "")
        step = int(raw) if raw.isdigit() else -1
        try:
            with sb.state.txn() as tx:
                sb.state.submit_step(m[1], step)
        except ControlError as exc:
            if exc.status != 409:  # a step submitted twice (back button): just go on
                return html_response(*message_page(exc.status, str(exc)))
            tx = None
        done = sb.state.next_step(account) is None
    if tx is not None:
        sb.deliverer.deliver_new(tx.events)
    location = link["return_url"] if done else req.path
    return Response(303, headers={"Location": location})


_ID = r"([A-Za-z0-9_]+)"
ROUTES: list[tuple[str, re.Pattern[str], Route]] = [
    (method, re.compile(pattern), route)
    for method, pattern, route in [
        ("GET", rf"/c/pay/{_ID}", page),
        ("POST", rf"/c/pay/{_ID}", page_submit),
        ("GET", rf"/setup/s/{_ID}/([A-Za-z0-9_-]+)", onboarding),
        ("POST", rf"/setup/s/{_ID}/([A-Za-z0-9_-]+)", onboarding_submit),
        ("POST", rf"/_sandbox/accounts/{_ID}/complete", account_complete),
        ("POST", rf"/_sandbox/accounts/{_ID}/requirements", account_requirements),
        ("GET", r"/_sandbox/health", health),
        ("GET", r"/_sandbox/idle", idle),
        ("POST", r"/_sandbox/reset", reset),
        ("GET", r"/_sandbox/clock", clock),
        ("POST", r"/_sandbox/clock", clock),
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
