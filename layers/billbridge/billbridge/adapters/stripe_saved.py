"""Stripe's Customers, Checkout in `mode=setup`, SetupIntents and off-session PaymentIntents
behind the SavedMethodGateway port (mixed into StripeGateway, which owns `_client`).

An off-session charge is `POST /v1/payment_intents` with `customer`, `payment_method`,
`off_session=true` and `confirm=true`: Stripe confirms it at once. A decline or a needed
authentication answers HTTP 402 (`stripe.CardError`, codes `card_declined`,
`authentication_required`, ...) with the PaymentIntent in the error: that is a failed charge,
not an error of ours. Every POST carries our deterministic idempotency key.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from billbridge.domain.errors import PaymentProviderError
from billbridge.domain.payments import Method
from billbridge.domain.plans import SavedMethod
from billbridge.services.ports import (
    ChargeResult,
    CheckoutSession,
    OffSessionCharge,
    SetupRequest,
    SetupResult,
)

if TYPE_CHECKING:
    import stripe

TYPES = {Method.CARD: "card", Method.ACH: "us_bank_account"}


def method_label(pm: Any) -> SavedMethod:
    """How the client would name a saved PaymentMethod: "Visa ending 4242"."""
    if pm.type == "us_bank_account" and pm.us_bank_account is not None:
        bank = pm.us_bank_account.bank_name or "Bank"
        return SavedMethod(
            str(pm.id), Method.ACH, f"{bank} account ending {pm.us_bank_account.last4}"
        )
    card = pm.card
    brand = str(card.brand or "card").title() if card is not None else "Card"
    last4 = card.last4 if card is not None else "????"
    return SavedMethod(str(pm.id), Method.CARD, f"{brand} ending {last4}")


class SavedMethodsMixin:
    _client: stripe.StripeClient

    def create_customer(self, email: str, name: str, metadata: dict[str, str], key: str) -> str:
        import stripe

        try:
            customer = self._client.v1.customers.create(
                params={"email": email, "name": name, "metadata": metadata},
                options={"idempotency_key": key},
            )
        except stripe.StripeError as exc:
            raise stripe_error("saving the client for later payments", exc) from exc
        return str(customer.id)

    def create_setup_session(self, request: SetupRequest) -> CheckoutSession:
        import stripe

        params: dict[str, Any] = {
            "mode": "setup",
            "customer": request.customer_id,
            "payment_method_types": [TYPES[request.method]],
            "currency": "usd",
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
            "metadata": request.metadata,
            "setup_intent_data": {"metadata": request.metadata},
        }
        try:
            session = self._client.v1.checkout.sessions.create(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": request.idempotency_key},
            )
        except stripe.StripeError as exc:
            raise stripe_error("saving the payment method", exc) from exc
        return CheckoutSession(id=str(session.id), url=str(session.url), amount_cents=0)

    def retrieve_setup_intent(self, setup_intent_id: str) -> SetupResult:
        return self._method_of(
            lambda: self._client.v1.setup_intents.retrieve(
                setup_intent_id, params={"expand": ["payment_method"]}
            )
        )

    def retrieve_intent_method(self, payment_intent_id: str) -> SetupResult:
        return self._method_of(lambda: self._client.v1.payment_intents.retrieve(payment_intent_id))

    def _method_of(self, retrieve: Callable[[], Any]) -> SetupResult:
        """The status, Customer and PaymentMethod of the SetupIntent or PaymentIntent that
        `retrieve` reads (its PaymentMethod read too when Stripe answered only its id)."""
        import stripe

        try:
            intent = retrieve()
            pm: Any = intent.payment_method
            if isinstance(pm, str):
                pm = self._client.v1.payment_methods.retrieve(pm)
        except stripe.StripeError as exc:
            raise stripe_error("reading the saved payment method", exc) from exc
        customer = intent.customer if isinstance(intent.customer, str) else None
        return SetupResult(
            status=str(intent.status),
            customer_id=customer,
            method=method_label(pm) if pm is not None else None,
        )

    def detach_payment_method(self, payment_method_id: str) -> None:
        import stripe

        try:
            self._client.v1.payment_methods.detach(payment_method_id)
        except stripe.InvalidRequestError as exc:
            # Detached before (by an earlier try, or in Stripe's dashboard): nothing to undo.
            if "not attached" in str(exc).lower() or exc.code == "resource_missing":
                return
            raise stripe_error("forgetting the payment method", exc) from exc
        except stripe.StripeError as exc:
            raise stripe_error("forgetting the payment method", exc) from exc

    def charge_off_session(self, charge: OffSessionCharge) -> ChargeResult:
        import stripe

        params: dict[str, Any] = {
            "amount": charge.amount_cents,
            "currency": charge.currency.lower(),
            "customer": charge.customer_id,
            "payment_method": charge.payment_method_id,
            "payment_method_types": [TYPES[charge.method]],
            "off_session": True,
            "confirm": True,
            "metadata": charge.metadata,
            "description": charge.description,
            # A destination charge, as checkout's: fees and disputes never touch trust money.
            "transfer_data": {"destination": charge.destination_account_id},
        }
        if charge.receipt_email:
            params["receipt_email"] = charge.receipt_email
        if charge.application_fee_cents > 0:  # operating parts only: trust is paid in full
            params["application_fee_amount"] = charge.application_fee_cents
        try:
            intent = self._client.v1.payment_intents.create(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": charge.idempotency_key},
            )
        except stripe.CardError as exc:
            error = exc.error
            failed = error.payment_intent if error is not None else None
            return ChargeResult(
                status="failed",
                payment_intent_id=str(failed.id) if failed is not None else None,
                failure_code=str(exc.code or "card_declined"),
                failure_message=str(exc.user_message or exc),
            )
        except stripe.StripeError as exc:
            raise stripe_error("the payment", exc) from exc
        if intent.status == "succeeded":
            return ChargeResult("succeeded", str(intent.id))
        if intent.status == "processing":
            return ChargeResult("processing", str(intent.id))
        error_obj = intent.last_payment_error
        code = str(error_obj.code) if error_obj is not None and error_obj.code else "failed"
        return ChargeResult("failed", str(intent.id), code)


# Stripe's object ids in its messages ("No such PaymentMethod: 'pm_1N…'"): never shown to a
# client (the pay page's answers name our ids only). With those a refund's reversal of the
# destination charge names (trr_ transfer reversals, pyr_ bank refunds, fee_/fr_ application
# fees and their refunds, du_/dp_ disputes), and key prefixes (sk_, rk_, whsec_), in case a
# message ever quotes one.
STRIPE_ID = re.compile(
    r"\b(?:pm|cus|pi|seti|setatt|src|card|ba|acct|ch|py|pyr|cs|req|mandate|re|txn|tr|trr"
    r"|evt|fee|fr|du|dp|po|tok|pmc|sk|rk|whsec)_[A-Za-z0-9_]+"
)


def stripe_error(what: str, exc: stripe.StripeError) -> PaymentProviderError:
    import stripe

    message = STRIPE_ID.sub("(a Stripe object)", str(getattr(exc, "user_message", None) or exc))
    # An idempotency error (the key reused with other parameters, or still in use by a request
    # Stripe is running) says nothing about the first request: it may well have charged.
    if (
        isinstance(exc, (stripe.APIConnectionError, stripe.IdempotencyError))
        or (exc.http_status or 500) >= 500
    ):
        return PaymentProviderError(
            f"Stripe did not answer about {what}: {message}", definitive=False
        )
    return PaymentProviderError(f"Stripe refused {what}: {message}")
