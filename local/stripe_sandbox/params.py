"""Stripe's rules for request parameters and its error envelope: the parameters each endpoint
accepts, the coercion of form strings to integers, booleans, URLs and metadata (with Stripe's
limits of 50 keys, 40-character keys and 500-character values), and the errors they raise.
"""

from __future__ import annotations

import secrets
import string
from typing import Any

from local.stripe_sandbox.forms import FormError, Schema, check_known

Obj = dict[str, Any]

API_VERSION = "2024-10-28.acacia"
SESSION_TTL_SECONDS = 24 * 3600  # the default; `expires_at` may ask 30 minutes to 24 hours
SESSION_MIN_TTL_SECONDS = 30 * 60
MINIMUM_CHARGE = {"usd": 50}
METHODS = {"card": "card", "ach": "us_bank_account"}
REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")
REFUND_FAILURE_REASONS = frozenset(
    "charge_for_pending_refund_disputed declined expired_or_canceled_card insufficient_funds "
    "lost_or_stolen_card merchant_request unknown".split()
)
_ALNUM = string.ascii_letters + string.digits

SESSION_PARAMS: Schema = {
    **dict.fromkeys("mode payment_method_types success_url cancel_url customer_email".split()),
    **dict.fromkeys(("client_reference_id", "metadata", "expand", "expires_at")),
    **dict.fromkeys(("customer", "currency")),
    "setup_intent_data": dict.fromkeys(("metadata", "description")),
    "line_items": {
        "quantity": None,
        "price_data": {
            "currency": None,
            "unit_amount": None,
            "product_data": dict.fromkeys(("name", "description", "metadata")),
        },
    },
    "payment_intent_data": {
        **dict.fromkeys(
            ("metadata", "description", "application_fee_amount", "setup_future_usage")
        ),
        "transfer_data": {"destination": None},
    },
}
REFUND_PARAMS: Schema = dict.fromkeys(
    "payment_intent charge amount reason metadata reverse_transfer expand".split()
)
ACCOUNT_PARAMS: Schema = {
    **dict.fromkeys("type country email business_type metadata expand".split()),
    "capabilities": {
        name: {"requested": None}
        for name in ("card_payments", "transfers", "us_bank_account_ach_payments")
    },
    "tos_acceptance": None,
    "business_profile": dict.fromkeys(("name", "url", "mcc", "product_description")),
}
ACCOUNT_LINK_PARAMS: Schema = {
    **dict.fromkeys("account type refresh_url return_url collect expand".split()),
    "collection_options": dict.fromkeys(("fields", "future_requirements")),
}


def new_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(24))


def dollars(cents: int) -> str:
    return f"${cents / 100:,.2f}"


class StripeApiError(Exception):
    """An answer in Stripe's error shape; param and code are left out when None, as Stripe does."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type_: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error: Obj = {"type": type_, "message": message}
        if code is not None:
            self.error["code"] = code
            self.error["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
        if param is not None:
            self.error["param"] = param

    def body(self) -> Obj:
        return {"error": self.error}


class ControlError(Exception):
    """A refused `/_sandbox` control: an HTTP status and a plain message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def missing(param: str) -> StripeApiError:
    return StripeApiError(
        400, f"Missing required param: {param}.", param=param, code="parameter_missing"
    )


def as_int(raw: Any, param: str, minimum: int) -> int:
    try:
        value = int(str(raw))
    except ValueError:
        raise StripeApiError(
            400, f"Invalid integer: {raw}", param=param, code="parameter_invalid_integer"
        ) from None
    if value < minimum:
        message = f"This value must be greater than or equal to {minimum}."
        raise StripeApiError(400, message, param=param, code="parameter_invalid_integer")
    return value


def as_bool(raw: Any, param: str) -> bool:
    if raw in ("true", "false"):
        return bool(raw == "true")
    raise StripeApiError(400, f"Invalid boolean: {raw}", param=param)


def as_url(raw: Any, param: str) -> str:
    if not isinstance(raw, str) or not raw.startswith(("http://", "https://")):
        raise StripeApiError(400, "Not a valid URL", param=param, code="url_invalid")
    return raw


def as_metadata(raw: Any, param: str) -> dict[str, str]:
    if raw is None or raw == "":
        return {}
    if not isinstance(raw, dict):
        raise StripeApiError(400, f"Invalid hash: {param}", param=param)
    if len(raw) > 50:
        raise StripeApiError(400, "You can specify up to 50 keys in metadata.", param=param)
    for key, value in raw.items():
        if len(key) > 40:
            message = f"Metadata keys can have up to 40 characters, but '{key}' has {len(key)}."
            raise StripeApiError(400, message, param=f"{param}[{key}]")
        if not isinstance(value, str) or len(value) > 500:
            size = len(value) if isinstance(value, str) else "a hash"
            message = f"Metadata values can have up to 500 characters, but you passed in {size}."
            raise StripeApiError(400, message, param=f"{param}[{key}]")
    return {k: v for k, v in raw.items() if v != ""}


def check_params(params: Obj, schema: Schema) -> None:
    try:
        check_known(params, schema)
    except FormError as exc:
        raise StripeApiError(400, str(exc), param=exc.param, code="parameter_unknown") from None
