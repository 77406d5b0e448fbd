"""Saved payment methods in the Stripe sandbox: Customers, PaymentMethods (cards and US bank
accounts), SetupIntents with their ACH mandates, Checkout in `mode=setup` and with
`payment_intent_data[setup_future_usage]`, and PaymentIntents confirmed off-session on a saved
method (`off_session=true, confirm=true`), as Stripe's API answers them.

Test payment methods decide how a later charge ends, as Stripe's test cards do
(docs.stripe.com/testing): a card ending 4242 (`pm_card_visa`) succeeds; 0341
(`pm_card_chargeCustomerFail`) attaches but every charge is declined (`card_declined`); 3184
(`pm_card_authenticationRequired`) needs authentication on every charge, so an off-session
charge fails with `authentication_required`. A bank account ending 6789 is debited: the
PaymentIntent goes `processing` and settles or fails by the sandbox's controls.
"""

from __future__ import annotations

import copy
from typing import Any

from local.stripe_sandbox.accounts import transfers_active
from local.stripe_sandbox.params import (
    METHODS,
    MINIMUM_CHARGE,
    ControlError,
    Obj,
    StripeApiError,
    as_bool,
    as_int,
    as_metadata,
    check_params,
    dollars,
    missing,
    new_id,
)

CUSTOMER_PARAMS = dict.fromkeys("email name description metadata phone expand".split())
PAYMENT_INTENT_PARAMS = {
    **dict.fromkeys(
        "amount currency customer payment_method payment_method_types off_session confirm "
        "metadata description receipt_email statement_descriptor_suffix expand "
        "setup_future_usage mandate error_on_requires_action application_fee_amount".split()
    ),
    "transfer_data": {"destination": None},
}

# Stripe's test cards by token: (brand, last4, how a charge on it ends)
TEST_CARDS = {
    "pm_card_visa": ("visa", "4242", "succeeds"),
    "pm_card_mastercard": ("mastercard", "4444", "succeeds"),
    "pm_card_chargeCustomerFail": ("visa", "0341", "declined"),
    "pm_card_authenticationRequired": ("visa", "3184", "authentication_required"),
}
TEST_BANK = {"pm_usBankAccount": ("STRIPE TEST BANK", "6789")}
BEHAVIOUR = {last4: how for _, last4, how in TEST_CARDS.values()}


class SavedMethods:
    """Mixed into SandboxState: uses its `objects`, `_new`, `_emit`, `find`, `now`."""

    objects: dict[str, Obj]

    # -- customers ----------------------------------------------------------------------------

    def create_customer(self, p: Obj) -> Obj:
        check_params(p, CUSTOMER_PARAMS)
        email = p.get("email") or None
        if email is not None and "@" not in email:
            raise StripeApiError(400, f"Invalid email address: {email}", param="email")
        customer = self._new(  # type: ignore[attr-defined]
            "cus_",
            "customer",
            "address phone",
            description=p.get("description") or None,
            email=email,
            invoice_settings={"default_payment_method": None},
            metadata=as_metadata(p.get("metadata"), "metadata"),
            name=p.get("name") or None,
        )
        self._emit("customer.created", customer)  # type: ignore[attr-defined]
        return copy.deepcopy(customer)

    def _customer(self, customer_id: Any, param: str = "customer") -> Obj:
        customer = self.find("customer", str(customer_id or ""))  # type: ignore[attr-defined]
        if customer is None:
            message = f"No such customer: '{customer_id}'"
            raise StripeApiError(400, message, param=param, code="resource_missing")
        return customer

    def customer_payment_methods(self, customer_id: str, p: Obj) -> Obj:
        self._customer(customer_id)
        type_ = p.get("type")
        data = [
            copy.deepcopy(o)
            for o in self.objects.values()
            if o["object"] == "payment_method"
            and o["customer"] == customer_id
            and (not type_ or o["type"] == type_)
        ]
        data.sort(key=lambda o: -o["created"])
        url = f"/v1/customers/{customer_id}/payment_methods"
        return {"object": "list", "data": data, "has_more": False, "url": url}

    # -- payment methods ----------------------------------------------------------------------

    def new_payment_method(self, type_: str, test: str | None, customer: Obj | None) -> Obj:
        """A PaymentMethod as the client entered it on the checkout page (`test` names one of
        Stripe's test tokens; the default card is 4242, the default bank account 6789)."""
        fields: Obj = {"card": None, "us_bank_account": None}
        if type_ == "card":
            brand, last4, _ = TEST_CARDS.get(test or "pm_card_visa", TEST_CARDS["pm_card_visa"])
            fields["card"] = {
                "brand": brand,
                "country": "US",
                "exp_month": 12,
                "exp_year": 2034,
                "funding": "credit",
                "last4": last4,
            }
        else:
            bank, last4 = TEST_BANK["pm_usBankAccount"]
            fields["us_bank_account"] = {
                "account_holder_type": "individual",
                "account_type": "checking",
                "bank_name": bank,
                "last4": last4,
                "routing_number": "110000000",
            }
        pm = self._new(  # type: ignore[attr-defined]
            "pm_",
            "payment_method",
            "",
            billing_details={"address": None, "email": None, "name": None, "phone": None},
            customer=None,
            metadata={},
            type=type_,
            **fields,
        )
        if customer is not None:
            self._attach(pm, customer)
        return pm

    def detach_payment_method(self, pm_id: str) -> Obj:
        """POST /v1/payment_methods/{id}/detach: the method leaves its Customer and can never
        be used again (Stripe refuses a PaymentMethod without a Customer that was used before,
        as a detached one always was, on any later PaymentIntent)."""
        pm = self.find("payment_method", pm_id)  # type: ignore[attr-defined]
        if pm is None:
            message = f"No such PaymentMethod: '{pm_id}'"
            raise StripeApiError(404, message, param="payment_method", code="resource_missing")
        if not pm["customer"]:
            message = (
                "The payment method you provided is not attached to a customer so detachment "
                "is impossible."
            )
            raise StripeApiError(400, message, param="payment_method")
        pm["customer"] = None
        self._emit("payment_method.detached", pm)  # type: ignore[attr-defined]
        return copy.deepcopy(pm)

    def _attach(self, pm: Obj, customer: Obj) -> None:
        pm["customer"] = customer["id"]
        self._emit("payment_method.attached", pm)  # type: ignore[attr-defined]

    def _mandate(self, pm: Obj, acceptance: Obj | None = None) -> Obj:
        """A multi-use ACH mandate: the client accepted the debit authorization online."""
        return self._new(  # type: ignore[attr-defined]
            "mandate_",
            "mandate",
            "",
            customer_acceptance=acceptance
            or {
                "accepted_at": self.now(),  # type: ignore[attr-defined]
                "online": {"ip_address": "127.0.0.1", "user_agent": "sandbox checkout page"},
                "type": "online",
            },
            multi_use={},
            payment_method=pm["id"],
            payment_method_details={"type": "us_bank_account", "us_bank_account": {}},
            status="active",
            type="multi_use",
        )

    def _mandate_of(self, pm_id: str) -> Obj | None:
        return next(
            (
                o
                for o in self.objects.values()
                if o["object"] == "mandate" and o["payment_method"] == pm_id
            ),
            None,
        )

    # -- setup (Checkout mode=setup) ------------------------------------------------------------

    def new_setup_intent(self, session: Obj, setup_data: Obj) -> Obj:
        return self._new(  # type: ignore[attr-defined]
            "seti_",
            "setup_intent",
            "cancellation_reason last_setup_error latest_attempt mandate next_action "
            "payment_method",
            client_secret=f"seti_secret_{new_id('')}",
            customer=session["customer"],
            description=setup_data.get("description"),
            metadata=dict(setup_data.get("metadata") or {}),
            payment_method_types=list(session["payment_method_types"]),
            status="requires_payment_method",
            usage="off_session",
        )

    def complete_setup(self, session: Obj, type_: str, test: str | None) -> Obj:
        """The client entered a card or bank account on a `mode=setup` page and agreed."""
        intent = self.objects[session["setup_intent"]]
        customer = self.find("customer", session["customer"] or "")  # type: ignore[attr-defined]
        pm = self.new_payment_method(type_, test, customer)
        intent.update(payment_method=pm["id"], status="succeeded")
        if type_ == "us_bank_account":
            intent["mandate"] = self._mandate(pm)["id"]
        self._emit("setup_intent.succeeded", intent)  # type: ignore[attr-defined]
        session.update(status="complete", url=None)
        self._emit("checkout.session.completed", session)  # type: ignore[attr-defined]
        return intent

    # -- off-session PaymentIntents -----------------------------------------------------------

    def create_payment_intent(self, p: Obj) -> tuple[int, Obj]:
        """POST /v1/payment_intents. Confirmed at once when `confirm=true`; a declined or
        unauthenticated charge answers 402 with the PaymentIntent inside the error."""
        check_params(p, PAYMENT_INTENT_PARAMS)
        if p.get("amount") is None:
            raise missing("amount")
        if not p.get("currency"):
            raise missing("currency")
        amount = as_int(p["amount"], "amount", 1)
        currency = str(p["currency"]).lower()
        minimum = MINIMUM_CHARGE.get(currency, 50)
        if amount < minimum:
            message = f"Amount must be at least {dollars(minimum)} {currency}"
            raise StripeApiError(400, message, param="amount", code="amount_too_small")
        confirm = p.get("confirm") is not None and as_bool(p["confirm"], "confirm")
        off_session = p.get("off_session") is not None and as_bool(p["off_session"], "off_session")
        if off_session and not confirm:
            message = "You may only specify `off_session` when `confirm` is true."
            raise StripeApiError(400, message, param="off_session")
        customer = self._customer(p["customer"]) if p.get("customer") else None
        pm = self._payment_method_for(p.get("payment_method"), customer)
        types = p.get("payment_method_types") or ([pm["type"]] if pm else ["card"])
        if pm is not None and pm["type"] not in types:
            message = (
                f"The PaymentMethod provided ({pm['type']}) is not allowed for this "
                "PaymentIntent. Please attach a PaymentMethod of one of the following types: "
                f"{', '.join(types)}."
            )
            raise StripeApiError(400, message, param="payment_method")
        transfer = p.get("transfer_data")
        destination = (transfer or {}).get("destination") if transfer is not None else None
        if transfer is not None and not destination:
            raise missing("transfer_data[destination]")
        if destination and self.find("account", str(destination)) is None:  # type: ignore[attr-defined]
            message = f"No such destination: '{destination}'"
            raise StripeApiError(
                400, message, param="transfer_data[destination]", code="resource_missing"
            )
        if destination and not transfers_active(self.objects[str(destination)]):
            message = (
                "Your destination account needs to have at least one of the following "
                "capabilities enabled: transfers, crypto_transfers, legacy_payments"
            )
            raise StripeApiError(
                400,
                message,
                param="transfer_data[destination]",
                code="insufficient_capabilities_for_transfer",
            )
        fee = None
        if p.get("application_fee_amount") is not None:
            fee = as_int(p["application_fee_amount"], "application_fee_amount", 0)
            if not destination:
                message = (
                    "Can only apply an application_fee_amount when the PaymentIntent is "
                    "attempting a direct payment (using an OAuth key or Stripe-Account header) "
                    "or destination payment (using `transfer_data[destination]`)."
                )
                raise StripeApiError(400, message, param="application_fee_amount")
            if fee > amount:
                message = "The application fee amount must be less than or equal to the amount."
                raise StripeApiError(400, message, param="application_fee_amount")
        intent = self._new(  # type: ignore[attr-defined]
            "pi_",
            "payment_intent",
            "canceled_at cancellation_reason last_payment_error latest_charge next_action",
            amount=amount,
            amount_capturable=0,
            amount_received=0,
            application_fee_amount=fee,
            capture_method="automatic",
            currency=currency,
            customer=customer["id"] if customer else None,
            description=p.get("description") or None,
            metadata=as_metadata(p.get("metadata"), "metadata"),
            payment_method=pm["id"] if pm else None,
            payment_method_types=list(types),
            receipt_email=p.get("receipt_email") or None,
            setup_future_usage=p.get("setup_future_usage") or None,
            status="requires_payment_method" if pm is None else "requires_confirmation",
            transfer_data={"amount": None, "destination": destination} if destination else None,
        )
        self._emit("payment_intent.created", intent)  # type: ignore[attr-defined]
        if not confirm:
            return 200, copy.deepcopy(intent)
        if pm is None:
            message = "You cannot confirm this PaymentIntent because it's missing a payment method."
            raise StripeApiError(400, message, code="payment_intent_unexpected_state")
        return self._confirm(intent, pm, off_session)

    def _payment_method_for(self, raw: Any, customer: Obj | None) -> Obj | None:
        if not raw:
            return None
        pm_id = str(raw)
        if pm_id in TEST_CARDS:  # Stripe's test tokens make a fresh PaymentMethod
            return self.new_payment_method("card", pm_id, None)
        pm = self.find("payment_method", pm_id)  # type: ignore[attr-defined]
        if pm is None:
            message = f"No such PaymentMethod: '{pm_id}'"
            raise StripeApiError(400, message, param="payment_method", code="resource_missing")
        used = any(
            o["object"] in ("payment_intent", "setup_intent") and o.get("payment_method") == pm_id
            for o in self.objects.values()
        )
        if not pm["customer"] and used:  # detached, or used once without a Customer
            message = (
                f"The provided PaymentMethod {pm_id} was previously used with a PaymentIntent "
                "without Customer attachment, shared with a connected account without Customer "
                "attachment, or was detached from a Customer. It may not be used again. To use "
                "a PaymentMethod multiple times, you must attach it to a Customer first."
            )
            raise StripeApiError(400, message, param="payment_method")
        if pm["customer"] and (customer is None or pm["customer"] != customer["id"]):
            message = (
                f"The provided PaymentMethod {pm_id} belongs to another Customer; a "
                "PaymentMethod can only be used with the Customer it is attached to."
            )
            raise StripeApiError(400, message, param="payment_method")
        return pm

    def _confirm(self, intent: Obj, pm: Obj, off_session: bool) -> tuple[int, Obj]:
        type_ = pm["type"]
        if type_ == "us_bank_account":
            if self._mandate_of(pm["id"]) is None:
                message = (
                    "A mandate is required to confirm a us_bank_account PaymentIntent; set up "
                    "the PaymentMethod with the customer's authorization first."
                )
                raise StripeApiError(400, message, param="mandate")
            charge = self._new_charge(intent, type_)  # type: ignore[attr-defined]
            intent["payment_method"] = pm["id"]
            charge["status"] = "pending"
            intent["status"] = "processing"
            self._emit("payment_intent.processing", intent)  # type: ignore[attr-defined]
            return 200, copy.deepcopy(intent)
        how = BEHAVIOUR.get(pm["card"]["last4"], "succeeds")
        if how == "authentication_required":
            message = "Your card was declined. This transaction requires authentication."
            error = {
                "code": "authentication_required",
                "decline_code": "authentication_required",
                "message": message,
                "payment_method": copy.deepcopy(pm),
                "type": "card_error",
            }
            if off_session:
                intent.update(status="requires_payment_method", last_payment_error=error)
                self._emit("payment_intent.payment_failed", intent)  # type: ignore[attr-defined]
            else:
                intent.update(
                    status="requires_action",
                    next_action={"type": "use_stripe_sdk", "use_stripe_sdk": {}},
                )
                self._emit("payment_intent.requires_action", intent)  # type: ignore[attr-defined]
                return 200, copy.deepcopy(intent)
            return 402, {"error": {**error, "payment_intent": copy.deepcopy(intent)}}
        charge = self._new_charge(intent, type_)  # type: ignore[attr-defined]
        intent["payment_method"] = pm["id"]
        if how == "declined":
            self._decline(intent, charge, type_)  # type: ignore[attr-defined]
            error = dict(intent["last_payment_error"])
            error["payment_method"] = copy.deepcopy(pm)
            error["charge"] = charge["id"]
            intent["last_payment_error"] = error
            self._emit("charge.failed", charge)  # type: ignore[attr-defined]
            return 402, {"error": {**error, "payment_intent": copy.deepcopy(intent)}}
        self._succeed(intent, charge)  # type: ignore[attr-defined]
        return 200, copy.deepcopy(intent)

    # -- the sandbox's clock ------------------------------------------------------------------

    def set_clock(self, now: Any) -> Obj:
        """Move the sandbox's clock (object `created` stamps, session expiry) to `now`
        (Unix seconds), as the local stack's clock control does."""
        if isinstance(now, bool) or not isinstance(now, int | float):
            raise ControlError(422, "now must be a Unix time in seconds")
        self.clock_offset = float(now) - self.real_clock()  # type: ignore[attr-defined]
        return {"now": int(now)}


def methods_for(session: Obj) -> list[str]:
    """The `method` values of the controls and page that a session allows."""
    return [m for m, t in METHODS.items() if t in session["payment_method_types"]]
