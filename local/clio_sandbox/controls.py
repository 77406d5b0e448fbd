"""The sandbox's `/_sandbox` control endpoints (no auth): create, change and seed bills, shape the
rate limit, inject faults, expire or revoke tokens, and read what happened (request statistics,
webhook deliveries, accounts).

These are not Clio's API: they stand in for a person working in Clio's UI and for the operator
of the test. A malformed body answers 400 naming the offending field.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Any

from local.clio_sandbox.fields import BILL, WEBHOOK, parse_fields
from local.clio_sandbox.seed import seed_demo, seed_many
from local.clio_sandbox.state import (
    BILL_STATES,
    KIND_TO_CLIO,
    ApiError,
    Bill,
    parse_date,
)
from local.clio_sandbox.wire import Request, Response, json_response

if TYPE_CHECKING:
    from local.clio_sandbox.server import ClioSandbox

# Every bill field, for answers of the controls (they show the whole bill, Clio-shaped).
FULL_BILL_SPEC = parse_fields(
    ",".join(sorted(BILL.scalars))
    + ",client{id,name,first_name,last_name,type,primary_email_address}"
    + ",matters{id,display_number,number,description,status}"
    + ",currency{id,code,sign}",
    BILL,
)
FAULT_STATUSES = (403, 404, 429, 500, 502, 503, 504)
MAX_SEED = 200_000


def _bad(message: str, field: str) -> ApiError:
    return ApiError(400, "BadRequest", message, field)


def _body(req: Request) -> dict[str, Any]:
    if not req.body:
        return {}
    body = req.json()
    if not isinstance(body, dict):
        raise _bad("the body must be a JSON object", "body")
    return body


def _str(body: dict[str, Any], name: str, *, required: bool = True, path: str = "") -> str | None:
    value = body.get(name)
    label = f"{path}{name}"
    if value is None:
        if required:
            raise _bad(f"{label} is required", label)
        return None
    if not isinstance(value, str) or not value.strip():
        raise _bad(f"{label} must be a non-empty string", label)
    return value


def _int(
    body: dict[str, Any],
    name: str,
    *,
    required: bool = True,
    low: int | None = None,
    high: int | None = None,
) -> int | None:
    value = body.get(name)
    if value is None:
        if required:
            raise _bad(f"{name} is required", name)
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"{name} must be an integer", name)
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise _bad(f"{name} must be {bounds}", name)
    return value


def _number(body: dict[str, Any], name: str, low: float) -> float:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(f"{name} must be a number", name)
    if value < low:
        raise _bad(f"{name} must be at least {low}", name)
    return float(value)


def _date(body: dict[str, Any], name: str) -> date | None:
    value = body.get(name)
    if value is None:
        return None
    try:
        return parse_date(value, name)
    except ApiError:
        raise _bad(f"{name} must be an ISO date (YYYY-MM-DD)", name) from None


def _bill_answer(sb: ClioSandbox, bill: Bill) -> dict[str, Any]:
    return {"account": bill.account, **sb.state.render_bill(bill, FULL_BILL_SPEC)}


ADDRESS_FIELDS = ("street", "city", "state", "postal_code", "country")


def _address(raw: Any) -> dict[str, str] | None:
    """`client.address`: {street, city, state, postal_code, country}, every one a string; the
    state a two-letter code (Clio keeps it as the address's `province`)."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) - set(ADDRESS_FIELDS):
        raise _bad(f"client.address must be an object {{{', '.join(ADDRESS_FIELDS)}}}", "client")
    for key, value in raw.items():
        if not isinstance(value, str) or len(value) > 200:
            raise _bad(f"client.address.{key} must be a string", f"client.address.{key}")
    state = raw.get("state")
    if state is not None and not re.fullmatch(r"[A-Za-z]{2}", state):
        raise _bad("client.address.state must be a two-letter code", "client.address.state")
    return {k: v for k, v in raw.items()}


def create_bill(sb: ClioSandbox, req: Request, _: re.Match[str]) -> Response:
    body = _body(req)
    account = _str(body, "account")
    kind = _str(body, "kind")
    if kind not in KIND_TO_CLIO:
        raise _bad("kind must be invoice or trust_request", "kind")
    total = _int(body, "total_cents", low=0)
    state = _str(body, "state")
    if state not in BILL_STATES:
        raise _bad(f"state must be one of {', '.join(BILL_STATES)}", "state")
    client = body.get("client")
    if not isinstance(client, dict):
        raise _bad("client must be an object {name, email}", "client")
    client_name = _str(client, "name", path="client.")
    client_email = _str(client, "email", required=False, path="client.")
    client_address = _address(client.get("address"))
    matter = body.get("matter")
    if matter is not None and not isinstance(matter, dict):
        raise _bad("matter must be an object {display_number, description}", "matter")
    matter_number = _str(matter, "display_number", path="matter.") if matter else None
    matter_description = (
        _str(matter, "description", required=False, path="matter.") if matter else None
    )
    balance = _int(body, "balance_cents", required=False, low=0)
    if balance is not None and total is not None and balance > total:
        raise _bad("balance_cents must not exceed total_cents", "balance_cents")
    bill = sb.state.create_bill(
        account=account or "",
        kind=kind or "",
        total_cents=total or 0,
        state=state or "",
        client_name=client_name or "",
        client_email=client_email,
        client_address=client_address,
        matter_display_number=matter_number,
        matter_description=matter_description,
        balance_cents=balance,
        issued_at=_date(body, "issued_at"),
        due_at=_date(body, "due_at"),
        number=_str(body, "number", required=False),
        subject=_str(body, "subject", required=False),
    )
    return json_response(201, _bill_answer(sb, bill))


def _bill_id(match: re.Match[str]) -> int:
    return int(match["id"])


def show_bill(sb: ClioSandbox, req: Request, match: re.Match[str]) -> Response:
    bill = sb.state.bills.get(_bill_id(match))
    if bill is None:
        raise ApiError(404, "NotFound", f"no bill with id {_bill_id(match)}")
    return json_response(200, _bill_answer(sb, bill))


def patch_bill(sb: ClioSandbox, req: Request, match: re.Match[str]) -> Response:
    body = _body(req)
    unknown = sorted(set(body) - {"state", "balance_cents", "client_name", "webhooks"})
    if unknown:
        message = (
            f"unknown field {unknown[0]}: only state, balance_cents and client_name can change"
        )
        raise _bad(message, unknown[0])
    state = _str(body, "state", required=False)
    if state is not None and state not in BILL_STATES:
        raise _bad(f"state must be one of {', '.join(BILL_STATES)}", "state")
    balance = _int(body, "balance_cents", required=False, low=0)
    client_name = _str(body, "client_name", required=False)
    if state is None and balance is None and not client_name:
        raise _bad("give state, balance_cents and/or client_name", "state")
    # `"webhooks": false` makes a change no webhook reports, as when a subscription lapsed:
    # only a sync can bring it.
    notify = body.get("webhooks", True)
    if not isinstance(notify, bool):
        raise _bad("webhooks must be true or false", "webhooks")
    changes = None
    if client_name:
        # The bill now bills another client (the account's contact of that name, made on
        # first use): a change of the bill, so a new version and its webhook.
        current = sb.state.bills.get(_bill_id(match))
        if current is not None:
            contact = sb.state.contact(current.account, client_name, None)
            changes = {"client_id": contact.id}
    bill = sb.state.update_bill(
        _bill_id(match), state=state, balance_cents=balance, changes=changes, notify=notify
    )
    return json_response(200, _bill_answer(sb, bill))


def seed(sb: ClioSandbox, req: Request, _: re.Match[str]) -> Response:
    body = _body(req)
    account = _str(body, "account") or ""
    count = _int(body, "count", low=1, high=MAX_SEED) or 0
    rng_seed = _int(body, "rng_seed", required=False) or 0
    ids = seed_many(sb.state, account, count, rng_seed)
    return json_response(
        201, {"account": account, "created": len(ids), "first_id": ids[0], "last_id": ids[-1]}
    )


def seed_demo_route(sb: ClioSandbox, req: Request, _: re.Match[str]) -> Response:
    body = _body(req)
    account = _str(body, "account", required=False) or "demo"
    ids = seed_demo(sb.state, account)
    return json_response(201, {"account": account, "created": len(ids)})


def rate_limit(sb: ClioSandbox, req: Request, _: re.Match[str]) -> Response:
    body = _body(req)
    limit = _int(body, "limit", low=1) or 1
    window = _number(body, "window_seconds", 0.001) if "window_seconds" in body else 60.0
    sb.state.set_rate_limit(limit, window)
    return json_response(200, {"limit": limit, "window_seconds": window})


def add_fault(sb: ClioSandbox, req: Request, _: re.Match[str]) -> Response:
    body = _body(req)
    account = _str(body, "account", required=False)
    status = _int(body, "status")
    if status not in FAULT_STATUSES:
        raise _bad(f"status must be one of {FAULT_STATUSES}", "status")
    count = _int(body, "count", required=False, low=1) or 1
    retry_after = _int(body, "retry_after", required=False, low=0)
    path = _str(body, "path", required=False)
    sb.state.add_fault(account, status, count, 1 if retry_after is None else retry_after, path)
    return json_response(
        201,
        {
            "account": account,
            "status": status,
            "count": count,
            "retry_after": retry_after,
            "path": path,
        },
    )


def clear_faults(sb: ClioSandbox, req: Request, _: re.Match[str]) -> Response:
    sb.state.clear_faults()
    return Response(204)


def expire_tokens(sb: ClioSandbox, req: Request, _: re.Match[str]) -> Response:
    account = _str(_body(req), "account") or ""
    return json_response(200, {"account": account, "expired": sb.state.expire_tokens(account)})


def revoke_tokens(sb: ClioSandbox, req: Request, _: re.Match[str]) -> Response:
    account = _str(_body(req), "account") or ""
    return json_response(200, {"account": account, "revoked": sb.state.revoke_tokens(account)})


def stats(sb: ClioSandbox, req: Request, _: re.Match[str]) -> Response:
    return json_response(200, sb.state.stats(req.arg("account") or None))


def reset_stats(sb: ClioSandbox, req: Request, _: re.Match[str]) -> Response:
    sb.state.reset_stats()
    return json_response(200, {"reset": True})


def deliveries(sb: ClioSandbox, req: Request, _: re.Match[str]) -> Response:
    return json_response(200, {"data": sb.state.delivery_log(req.arg("account") or None)})


def webhooks(sb: ClioSandbox, req: Request, _: re.Match[str]) -> Response:
    account = req.arg("account") or None
    with sb.state.lock:
        hooks = [h for h in sb.state.webhooks.values() if account is None or h.account == account]
        full = parse_fields(None, WEBHOOK)
        data = [{"account": h.account, **sb.state.render_webhook(h, full)} for h in hooks]
    return json_response(200, {"data": data})


def accounts(sb: ClioSandbox, req: Request, _: re.Match[str]) -> Response:
    return json_response(200, {"data": sb.state.account_summaries()})


ControlRoute = Callable[["ClioSandbox", Request, re.Match[str]], Response]

ROUTES: list[tuple[str, re.Pattern[str], ControlRoute]] = [
    ("POST", re.compile(r"/_sandbox/bills"), create_bill),
    ("GET", re.compile(r"/_sandbox/bills/(?P<id>\d+)"), show_bill),
    ("PATCH", re.compile(r"/_sandbox/bills/(?P<id>\d+)"), patch_bill),
    ("POST", re.compile(r"/_sandbox/seed"), seed),
    ("POST", re.compile(r"/_sandbox/seed_demo"), seed_demo_route),
    ("POST", re.compile(r"/_sandbox/rate_limit"), rate_limit),
    ("POST", re.compile(r"/_sandbox/faults"), add_fault),
    ("DELETE", re.compile(r"/_sandbox/faults"), clear_faults),
    ("POST", re.compile(r"/_sandbox/tokens/expire"), expire_tokens),
    ("POST", re.compile(r"/_sandbox/tokens/revoke"), revoke_tokens),
    ("GET", re.compile(r"/_sandbox/stats"), stats),
    ("POST", re.compile(r"/_sandbox/stats/reset"), reset_stats),
    ("GET", re.compile(r"/_sandbox/webhook_deliveries"), deliveries),
    ("GET", re.compile(r"/_sandbox/webhooks"), webhooks),
    ("GET", re.compile(r"/_sandbox/accounts"), accounts),
]
