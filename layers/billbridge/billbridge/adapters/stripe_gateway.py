"""Stripe behind the PaymentGateway port, through the official `stripe` library.

Every POST carries an idempotency key derived from our own ids (the library's random key
would not survive a Lambda retry). Locally `api_base` points at the Stripe sandbox.

The stripe library is imported on first use: it is large, and the firm API's cold start should
not pay for it on requests that never reach Stripe.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from billbridge.adapters.stripe_saved import SavedMethodsMixin, stripe_error
from billbridge.domain.errors import PaymentProviderError, Unauthenticated
from billbridge.domain.payment_accounts import StripeAccountState, parse_stripe_account
from billbridge.domain.payments import Account, Method, encode_allocations
from billbridge.services.ports import (
    CheckoutRequest,
    CheckoutSession,
    CheckoutSessionState,
    ConnectedAccountRequest,
    RefundResult,
)

if TYPE_CHECKING:
    import stripe

PAYMENT_METHOD_TYPES = {Method.CARD: "card", Method.ACH: "us_bank_account"}
# Signatures older than this are refused (stripe-python's default tolerance).
SIGNATURE_TOLERANCE_SECONDS = 300
# Merchant category 8111: legal services and attorneys.
LEGAL_SERVICES_MCC = "8111"


def checkout_metadata(request: CheckoutRequest) -> dict[str, str]:
    """What every event about the session needs to record it, without a lookup."""
    return {
        "firm_id": request.firm_id,
        "link_id": request.link_id,
        "account": request.account.value,
        "method": request.method.value,
        "allocations": encode_allocations(request.allocations),
        **({"surcharge_cents": str(request.surcharge_cents)} if request.surcharge_cents else {}),
        # The client asked to save the method: the webhook keeps it for this client.
        **(
            {"save_method": "1", "client_id": str(request.client_id)}
            if request.save_method and request.client_id is not None
            else {}
        ),
    }


def checkout_intent_data(request: CheckoutRequest, metadata: dict[str, str]) -> dict[str, Any]:
    """The session's `payment_intent_data`: where the money goes and, on an operating charge
    only, the platform's application fee (domain/fees.py). A trust charge never carries one:
    the whole amount reaches the trust account."""
    data: dict[str, Any] = {
        "metadata": metadata,
        "transfer_data": {"destination": request.destination_account_id},
    }
    if request.account is Account.OPERATING and request.application_fee_cents > 0:
        data["application_fee_amount"] = request.application_fee_cents
    if request.save_method:
        # Stripe attaches the PaymentMethod to the session's Customer (and, for a bank
        # account, records the mandate) so later payments can be charged on it.
        data["setup_future_usage"] = "off_session"
    return data


def account_params(request: ConnectedAccountRequest) -> dict[str, Any]:
    """`POST /v1/accounts`: an Express account (Stripe hosts its onboarding and dashboard) for
    one of the firm's bank accounts; destination charges need its `transfers` capability."""
    return {
        "type": "express",
        "country": "US",
        "business_type": "company",
        "capabilities": {
            "card_payments": {"requested": True},
            "transfers": {"requested": True},
        },
        "business_profile": {
            "name": request.business_name,
            "mcc": LEGAL_SERVICES_MCC,
            "product_description": "Legal services",
        },
        "metadata": {"firm_id": request.firm_id, "account": request.account.value},
    }


class StripeGateway(SavedMethodsMixin):
    def __init__(self, api_key: str, api_base: str | None = None, timeout: float = 20.0) -> None:
        import stripe

        options: dict[str, Any] = {"max_network_retries": 2}
        if api_base:
            options["base_addresses"] = {"api": api_base}
        self._client = stripe.StripeClient(
            api_key, http_client=stripe.RequestsClient(timeout=timeout), **options
        )

    def create_checkout_session(self, request: CheckoutRequest) -> CheckoutSession:
        metadata = checkout_metadata(request)
        params: dict[str, Any] = {
            "mode": "payment",
            "payment_method_types": [PAYMENT_METHOD_TYPES[request.method]],
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": request.currency.lower(),
                        "unit_amount": cents,
                        "product_data": {"name": name},
                    },
                }
                for name, cents in request.line_items
            ],
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
            "client_reference_id": request.link_id,
            "expires_at": int(request.expires_at.timestamp()),
            "metadata": metadata,
            # A destination charge: the platform's balance, never the trust account's, pays
            # the fees, refunds and chargebacks (docs/payments.md).
            "payment_intent_data": checkout_intent_data(request, metadata),
        }
        if request.customer_id:
            # Stripe takes one of the two: the Customer already carries the email.
            params["customer"] = request.customer_id
        elif request.customer_email:
            params["customer_email"] = request.customer_email
        import stripe

        try:
            session = self._client.v1.checkout.sessions.create(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": request.idempotency_key},
            )
        except stripe.StripeError as exc:
            raise _provider_error("the checkout", exc) from exc
        return CheckoutSession(
            id=str(session.id), url=str(session.url), amount_cents=int(session.amount_total or 0)
        )

    def expire_checkout_session(self, session_id: str) -> bool:
        """True when the session can no longer be paid; False when it was completed."""
        import stripe

        try:
            self._client.v1.checkout.sessions.expire(session_id)
        except stripe.InvalidRequestError:
            # Only an open session can be expired: it is complete, or expired already.
            try:
                session = self._client.v1.checkout.sessions.retrieve(session_id)
            except stripe.StripeError as exc:
                raise _provider_error("closing an older checkout", exc) from exc
            return str(session.status) != "complete"
        except stripe.StripeError as exc:
            raise _provider_error("closing an older checkout", exc) from exc
        return True

    def checkout_session(self, session_id: str) -> CheckoutSessionState | None:
        import stripe

        try:
            session = self._client.v1.checkout.sessions.retrieve(session_id)
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 404:
                return None
            raise _provider_error("the checkout", exc) from exc
        except stripe.StripeError as exc:
            raise _provider_error("the checkout", exc) from exc
        return CheckoutSessionState(
            id=str(session.id),
            status=str(session.status),
            payment_status=str(session.payment_status),
            amount_cents=int(session.amount_total or 0),
            currency=str(session.currency or "usd").upper(),
            created_at=datetime.fromtimestamp(int(session.created or 0), UTC),
            # StripeObject is a dict; its `items` attribute would be a field called "items".
            metadata=_metadata(session.metadata),
        )

    def create_refund(
        self,
        payment_intent_id: str,
        amount_cents: int,
        metadata: dict[str, str],
        idempotency_key: str,
    ) -> RefundResult:
        import stripe

        try:
            refund = self._client.v1.refunds.create(
                params={
                    "payment_intent": payment_intent_id,
                    "amount": amount_cents,
                    # Take the money back from the connected account it was paid into.
                    "reverse_transfer": True,
                    "metadata": metadata,
                },
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as exc:
            raise _provider_error("the refund", exc) from exc
        return RefundResult(stripe_refund_id=str(refund.id), status=str(refund.status))

    # -- Connect: the firm's connected accounts -----------------------------------------------

    def create_connected_account(self, request: ConnectedAccountRequest) -> StripeAccountState:
        import stripe

        try:
            account = self._client.v1.accounts.create(
                params=account_params(request),  # type: ignore[arg-type]
                options={"idempotency_key": request.idempotency_key},
            )
        except stripe.StripeError as exc:
            raise _provider_error(f"the {request.account.value} account", exc) from exc
        return parse_stripe_account(account.to_dict())

    def create_account_link(self, stripe_account_id: str, refresh_url: str, return_url: str) -> str:
        import stripe

        try:
            link = self._client.v1.account_links.create(
                params={
                    "account": stripe_account_id,
                    "type": "account_onboarding",
                    "refresh_url": refresh_url,
                    "return_url": return_url,
                    "collect": "currently_due",
                }
            )
        except stripe.StripeError as exc:
            raise _provider_error("the onboarding link", exc) from exc
        return str(link.url)

    def retrieve_account(self, stripe_account_id: str) -> StripeAccountState:
        import stripe

        try:
            account = self._client.v1.accounts.retrieve(stripe_account_id)
        except stripe.StripeError as exc:
            raise _provider_error("the connected account", exc) from exc
        return parse_stripe_account(account.to_dict())


def _metadata(raw: Any) -> dict[str, str]:
    # A StripeObject, not a dict: its attributes are its fields (one may be named "items").
    data = raw.to_dict() if hasattr(raw, "to_dict") else dict(raw or {})
    return {str(k): str(v) for k, v in data.items()}


def _provider_error(what: str, exc: stripe.StripeError) -> PaymentProviderError:
    """One reading of Stripe's errors for every call (checkouts, refunds, accounts, saved
    methods): Stripe's ids left out of a message a client or clerk may read, and an error that
    says nothing about whether Stripe acted (no answer, a 5xx, an idempotency error) never read
    as "nothing was made"."""
    return stripe_error(what, exc)


def verify_event(
    payload: bytes, signature_header: str | None, secret: str, *more_secrets: str
) -> dict[str, Any]:
    """The event, once its Stripe-Signature is verified over the raw body with one of the
    endpoints' secrets (the platform's, the Connect endpoint's; Unauthenticated otherwise).
    Parsed as plain JSON: the services read Stripe's wire shape."""
    if not signature_header:
        raise Unauthenticated("missing Stripe-Signature header", code="invalid_signature")
    import stripe

    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    verified = False
    for candidate in (secret, *more_secrets):
        if text is None:
            break
        try:
            stripe.WebhookSignature.verify_header(
                text, signature_header, candidate, SIGNATURE_TOLERANCE_SECONDS
            )
        except stripe.SignatureVerificationError:
            continue
        verified = True
        break
    if not verified:
        raise Unauthenticated(
            "the Stripe-Signature does not match this body", code="invalid_signature"
        )
    try:
        event = json.loads(payload)
    except ValueError:
        raise Unauthenticated("the event is not JSON", code="invalid_event") from None
    if not isinstance(event, dict) or "id" not in event or "type" not in event:
        raise Unauthenticated("not a Stripe event", code="invalid_event")
    return event
