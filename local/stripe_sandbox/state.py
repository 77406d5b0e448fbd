"""The Stripe sandbox's memory and rules: every object in Stripe's JSON shape, keyed by id, the
events each change emits, and the idempotency cache, all behind one re-entrant lock.

Changes run inside `txn()`: the lock is held and each event emitted is collected on the Txn, so
the caller can deliver them once the lock is released (a webhook receiver may call back in).
An event's bytes are serialized once, at creation; every delivery sends those same bytes.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from local.stripe_sandbox.accounts import ConnectAccounts, transfers_active
from local.stripe_sandbox.params import (
    API_VERSION,
    METHODS,
    MINIMUM_CHARGE,
    REFUND_FAILURE_REASONS,
    REFUND_PARAMS,
    REFUND_REASONS,
    SESSION_MIN_TTL_SECONDS,
    SESSION_PARAMS,
    SESSION_TTL_SECONDS,
    ControlError,
    Obj,
    StripeApiError,
    as_bool,
    as_int,
    as_metadata,
    as_url,
    check_params,
    dollars,
    missing,
    new_id,
)
from local.stripe_sandbox.saved import TEST_CARDS, SavedMethods


@dataclass
class Event:
    id: str
    type: str
    body: bytes  # fixed at creation; resends deliver these bytes again
    deliveries: list[Obj] = field(default_factory=list)

    @property
    def connect(self) -> bool:
        """A Connect event: about a connected account (Stripe sets a top-level `account`)."""
        return bool(json.loads(self.body).get("account"))

    def as_dict(self) -> Obj:
        return dict(json.loads(self.body))


@dataclass
class Txn:
    request_id: str | None = None
    idempotency_key: str | None = None
    events: list[Event] = field(default_factory=list)


@dataclass
class Replay:
    route: str
    params: Obj
    status: int
    body: bytes
    request_id: str


class SandboxState(ConnectAccounts, SavedMethods):
    def __init__(self, base_url: str = "", clock: Callable[[], float] = time.time) -> None:
        self.lock = threading.RLock()
        self.base_url = base_url
        self.real_clock = clock
        self.clock_offset = 0.0  # the local clock control moves the sandbox's time
        self.webhook_url: str | None = None
        self.webhook_secret = ""
        # Connect events (`account.updated`) go to the Connect endpoint: its own URL (None:
        # the webhook URL) and signing secret ("": the webhook secret).
        self.connect_webhook_url: str | None = None
        self.connect_webhook_secret = ""
        self.paused = False
        self._tx: Txn | None = None
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.objects: dict[str, Obj] = {}
            self.line_items: dict[str, list[Obj]] = {}  # session id -> items, for the page
            self.intent_data: dict[str, Obj] = {}  # session id -> payment_intent_data
            self.session_of: dict[str, str] = {}  # payment intent id -> session id
            self.account_links: dict[str, Obj] = {}  # onboarding token -> its Account Link
            self.events: list[Event] = []
            self.idempotency: dict[str, Replay] = {}
            self.paused = False

    def clock(self) -> float:
        return self.real_clock() + self.clock_offset

    def now(self) -> int:
        return int(self.clock())

    @contextmanager
    def txn(self, request_id: str | None = None, key: str | None = None) -> Iterator[Txn]:
        with self.lock:
            tx = Txn(request_id, key)
            self._tx = tx
            try:
                yield tx
            finally:
                self._tx = None

    def _emit(
        self, type_: str, obj: Obj, previous: Obj | None = None, account: str | None = None
    ) -> None:
        """Record an event; `account` makes it a Connect event (about a connected account)."""
        tx = self._tx or Txn()
        data: Obj = {"object": copy.deepcopy(obj)}
        if previous is not None:
            data["previous_attributes"] = previous
        event_id = new_id("evt_")
        event = {
            **{"id": event_id, "object": "event", "api_version": API_VERSION},
            **({"account": account} if account is not None else {}),
            **{"created": self.now(), "data": data, "livemode": False, "pending_webhooks": 1},
            "request": {"id": tx.request_id, "idempotency_key": tx.idempotency_key},
            "type": type_,
        }
        record = Event(event_id, type_, json.dumps(event, indent=2).encode())
        self.events.append(record)
        tx.events.append(record)

    def _new(self, prefix: str, kind: str, nulls: str, **fields: Any) -> Obj:
        """Store a new object: id and Stripe's common fields, `nulls` (names) as null, `fields`."""
        obj: Obj = {"id": new_id(prefix), "object": kind, "created": self.now(), "livemode": False}
        obj.update(dict.fromkeys(nulls.split()), **fields)
        self.objects[obj["id"]] = obj
        return obj

    def find(self, kind: str, object_id: str) -> Obj | None:
        obj = self.objects.get(object_id)
        return obj if obj is not None and obj["object"] == kind else None

    def get(self, kind: str, object_id: str, param: str = "id") -> Obj:
        with self.lock:
            obj = self.find(kind, object_id)
            if obj is not None:
                return copy.deepcopy(obj)
            if kind == "account":
                message = (
                    f"The provided key does not have access to account '{object_id}' "
                    "(or that account does not exist). Application access may have been revoked."
                )
                raise StripeApiError(403, message, code="account_invalid")
            message = f"No such {kind}: '{object_id}'"
            raise StripeApiError(404, message, param=param, code="resource_missing")

    def _control_get(self, kind: str, object_id: str) -> Obj:
        obj = self.find(kind, object_id)
        if obj is None:
            raise ControlError(404, f"no {kind} {object_id}")
        return obj

    # -- idempotency --------------------------------------------------------------------------

    def replay(self, key: str, route: str, params: Obj) -> Replay | None:
        seen = self.idempotency.get(key)
        if seen is None:
            return None
        if seen.route != route:
            message = (
                "Keys for idempotent requests can only be used for the same endpoint they were "
                f"first used for ('{route}' vs '{seen.route}'). Try using a key other than "
                f"'{key}' if you meant to execute a different request."
            )
            raise StripeApiError(400, message, type_="idempotency_error")
        if seen.params != params:
            message = (
                "Keys for idempotent requests can only be used with the same parameters they "
                f"were first used with. Try using a key other than '{key}' if you meant to "
                "execute a different request."
            )
            raise StripeApiError(400, message, type_="idempotency_error")
        return seen

    # -- checkout sessions --------------------------------------------------------------------

    def create_session(self, p: Obj) -> Obj:
        check_params(p, SESSION_PARAMS)
        if not p.get("mode"):
            raise missing("mode")
        mode = p["mode"]
        if mode not in ("payment", "setup"):
            message = f"Invalid mode: the sandbox supports payment and setup, not {mode!r}"
            raise StripeApiError(400, message, param="mode")
        types = p.get("payment_method_types") or ["card"]
        if not isinstance(types, list):
            raise StripeApiError(400, "Invalid array", param="payment_method_types")
        for index, type_ in enumerate(types):
            if type_ not in METHODS.values():
                message = (
                    f"Invalid payment_method_types[{index}]: must be one of card or us_bank_account"
                )
                raise StripeApiError(400, message, param=f"payment_method_types[{index}]")
        if mode == "payment":
            items, currency, total = self._line_items(p.get("line_items"))
            if total < MINIMUM_CHARGE.get(currency, 50):
                minimum = MINIMUM_CHARGE.get(currency, 50)
                message = (
                    "The Checkout Session's total amount due must add up to at least "
                    f"{dollars(minimum)} {currency}"
                )
                raise StripeApiError(400, message, code="amount_too_small")
        else:
            if p.get("line_items"):
                message = "You can not pass `line_items` in `setup` mode."
                raise StripeApiError(400, message, param="line_items")
            items, currency, total = [], str(p.get("currency") or "usd").lower(), 0
        if not p.get("success_url"):
            raise missing("success_url")
        success_url = as_url(p["success_url"], "success_url")
        cancel_url = as_url(p["cancel_url"], "cancel_url") if p.get("cancel_url") else None
        email = p.get("customer_email") or None
        if email is not None and "@" not in email:
            raise StripeApiError(400, f"Invalid email address: {email}", param="customer_email")
        customer = None
        if p.get("customer"):
            if email is not None:
                message = "You may only specify one of these parameters: customer, customer_email."
                raise StripeApiError(400, message, param="customer")
            customer = self._customer(p["customer"])
        if mode == "setup" and customer is None:
            raise missing("customer")
        metadata = as_metadata(p.get("metadata"), "metadata")
        expires_at = self.now() + SESSION_TTL_SECONDS
        if p.get("expires_at") is not None:
            expires_at = as_int(p["expires_at"], "expires_at", 0)
            earliest, latest = (
                self.now() + SESSION_MIN_TTL_SECONDS,
                self.now() + SESSION_TTL_SECONDS,
            )
            if not earliest <= expires_at <= latest:
                message = (
                    "The `expires_at` timestamp must be at least 30 minutes and at most 24 hours "
                    "from Checkout Session creation."
                )
                raise StripeApiError(400, message, param="expires_at")
        intent = p.get("payment_intent_data") or {}
        if mode == "setup" and intent:
            message = "You can not pass `payment_intent_data` in `setup` mode."
            raise StripeApiError(400, message, param="payment_intent_data")
        intent_metadata = as_metadata(intent.get("metadata"), "payment_intent_data[metadata]")
        future = intent.get("setup_future_usage") or None
        if future is not None and future not in ("off_session", "on_session"):
            message = "Invalid setup_future_usage: must be one of off_session or on_session"
            raise StripeApiError(400, message, param="payment_intent_data[setup_future_usage]")
        transfer = intent.get("transfer_data")
        param = "payment_intent_data[transfer_data][destination]"
        if transfer is not None and not (transfer or {}).get("destination"):
            raise missing(param)
        destination = transfer["destination"] if transfer else None
        if destination is not None and self.find("account", str(destination)) is None:
            message = f"No such destination: '{destination}'"
            raise StripeApiError(400, message, param=param, code="resource_missing")
        if destination is not None and not transfers_active(self.objects[str(destination)]):
            message = (
                "Your destination account needs to have at least one of the following "
                "capabilities enabled: transfers, crypto_transfers, legacy_payments"
            )
            raise StripeApiError(
                400, message, param=param, code="insufficient_capabilities_for_transfer"
            )
        fee = intent.get("application_fee_amount")
        if fee is not None:
            fee_param = "payment_intent_data[application_fee_amount]"
            fee = as_int(fee, fee_param, 0)
            if destination is None:
                message = (
                    "Can only apply an application_fee_amount when the PaymentIntent is "
                    "attempting a direct payment (using an OAuth key or Stripe-Account header) "
                    "or destination payment (using `transfer_data[destination]`)."
                )
                raise StripeApiError(400, message, param=fee_param)
            if fee > total:
                message = "The application fee amount must be less than or equal to the amount."
                raise StripeApiError(400, message, param=fee_param)
        setup_data = p.get("setup_intent_data") or {}
        if mode == "payment" and setup_data:
            message = "You can only pass `setup_intent_data` in `setup` mode."
            raise StripeApiError(400, message, param="setup_intent_data")
        session = self._new(
            "cs_test_",
            "checkout.session",
            "payment_intent setup_intent",
            amount_subtotal=total if mode == "payment" else None,
            amount_total=total if mode == "payment" else None,
            cancel_url=cancel_url,
            client_reference_id=p.get("client_reference_id") or None,
            currency=currency,
            customer=customer["id"] if customer else None,
            customer_email=email,
            expires_at=expires_at,
            metadata=metadata,
            mode=mode,
            payment_method_types=types,
            payment_status="unpaid" if mode == "payment" else "no_payment_required",
            status="open",
            success_url=success_url,
        )
        session_id = session["id"]
        session["url"] = f"{self.base_url}/c/pay/{session_id}"
        self.line_items[session_id] = items
        if mode == "setup":
            setup = {
                "metadata": as_metadata(setup_data.get("metadata"), "setup_intent_data[metadata]"),
                "description": setup_data.get("description"),
            }
            session["setup_intent"] = self.new_setup_intent(session, setup)["id"]
            self.intent_data[session_id] = {}
        else:
            self.intent_data[session_id] = {
                "metadata": intent_metadata,
                "description": intent.get("description"),
                "destination": destination,
                "application_fee_amount": fee,
                "receipt_email": email or (customer or {}).get("email"),
                "setup_future_usage": future,
            }
        return copy.deepcopy(session)

    def _line_items(self, raw: Any) -> tuple[list[Obj], str, int]:
        if not raw:
            raise missing("line_items")
        if not isinstance(raw, list):
            raise StripeApiError(400, "Invalid array", param="line_items")
        items: list[Obj] = []
        currency = ""
        for index, item in enumerate(raw):
            where = f"line_items[{index}]"
            if item.get("quantity") is None:
                raise missing(f"{where}[quantity]")
            quantity = as_int(item["quantity"], f"{where}[quantity]", 1)
            price = item.get("price_data")
            if not isinstance(price, dict):
                raise missing(f"{where}[price_data]")
            if not price.get("currency"):
                raise missing(f"{where}[price_data][currency]")
            if price.get("unit_amount") is None:
                raise missing(f"{where}[price_data][unit_amount]")
            unit = as_int(price["unit_amount"], f"{where}[price_data][unit_amount]", 0)
            name = (price.get("product_data") or {}).get("name")
            if not name:
                raise missing(f"{where}[price_data][product_data][name]")
            item_currency = str(price["currency"]).lower()
            if currency and item_currency != currency:
                message = "All line items must have the same currency."
                raise StripeApiError(400, message, param=f"{where}[price_data][currency]")
            currency = item_currency
            items.append({"name": name, "quantity": quantity, "unit_amount": unit})
        return items, currency, sum(i["quantity"] * i["unit_amount"] for i in items)

    def expire_session(self, session_id: str) -> Obj:
        session = self.find("checkout.session", session_id)
        if session is None:
            raise self._no_session(session_id)
        if session["status"] != "open":
            message = (
                'Only Checkout Sessions with a status in ["open"] can be expired. This '
                f'Checkout Session has a status of "{session["status"]}".'
            )
            raise StripeApiError(400, message)
        intent = self.find("payment_intent", session["payment_intent"] or "")
        if intent is not None:
            intent.update(
                status="canceled", canceled_at=self.now(), cancellation_reason="abandoned"
            )
            self._emit("payment_intent.canceled", intent)
        session.update(status="expired", url=None)
        self._emit("checkout.session.expired", session)
        return copy.deepcopy(session)

    @staticmethod
    def _no_session(session_id: str) -> StripeApiError:
        message = f"No such checkout.session: '{session_id}'"
        return StripeApiError(404, message, param="session", code="resource_missing")

    # -- paying (controls and the checkout page) ----------------------------------------------

    def pay(
        self,
        session_id: str,
        method: Any,
        outcome: Any,
        amount_cents: Any = None,
        test_method: Any = None,
    ) -> Obj:
        """The client pays the session (or, in `mode=setup`, saves a card or bank account):
        `test_method` names one of Stripe's test cards (local/stripe_sandbox/saved.py)."""
        session = self._control_get("checkout.session", session_id)
        if session["status"] != "open":
            raise ControlError(409, f"checkout session {session_id} is {session['status']}")
        type_ = METHODS.get(method)
        if type_ is None or type_ not in session["payment_method_types"]:
            allowed = session["payment_method_types"]
            raise ControlError(
                422, f"method {method!r} is not allowed; the session allows {allowed}"
            )
        if outcome not in ("succeeded", "failed"):
            raise ControlError(422, "outcome must be succeeded or failed")
        if test_method is not None and test_method not in TEST_CARDS:
            raise ControlError(422, f"test_method must be one of {sorted(TEST_CARDS)}")
        if session["mode"] == "setup":
            first = len(self.events)
            if outcome == "failed":
                raise ControlError(422, "a setup session is not charged: it cannot be declined")
            setup = self.complete_setup(session, type_, test_method)
            return self._answer(first, checkout_session=session, setup_intent=setup)
        if amount_cents is not None and amount_cents != session["amount_total"]:
            total = session["amount_total"]
            raise ControlError(422, f"Checkout charges exactly the session's total ({total})")
        intent = self.find("payment_intent", session["payment_intent"] or "")
        if intent is None:
            intent = self._new_intent(session)
        first = len(self.events)
        charge = self._new_charge(intent, type_)
        if outcome != "failed" and session["customer"]:
            self._save_for_later(session, intent, type_, test_method)
        if outcome == "failed":
            self._decline(intent, charge, type_)
        elif type_ == "card":
            self._succeed(intent, charge)
            session.update(status="complete", payment_status="paid", url=None)
            self._emit("checkout.session.completed", session)
        else:
            charge["status"] = "pending"
            intent["status"] = "processing"
            self._emit("payment_intent.processing", intent)
            session.update(status="complete", url=None)
            self._emit("checkout.session.completed", session)
        return self._answer(first, checkout_session=session, payment_intent=intent)

    def _save_for_later(self, session: Obj, intent: Obj, type_: str, test: Any) -> None:
        """A session with a customer keeps the method the client paid with on the customer
        when `setup_future_usage` asked for it (an ACH one with its mandate)."""
        extra = self.intent_data[session["id"]]
        customer = self.find("customer", session["customer"])
        future = extra.get("setup_future_usage")
        pm = self.new_payment_method(type_, test, customer if future else None)
        intent.update(payment_method=pm["id"], customer=session["customer"])
        if future and type_ == "us_bank_account":
            self._mandate(pm)

    def _new_intent(self, session: Obj) -> Obj:
        extra = self.intent_data[session["id"]]
        destination = extra["destination"]
        intent = self._new(
            "pi_",
            "payment_intent",
            "canceled_at cancellation_reason customer last_payment_error latest_charge",
            amount=session["amount_total"],
            amount_capturable=0,
            amount_received=0,
            capture_method="automatic",
            currency=session["currency"],
            description=extra["description"],
            metadata=dict(extra["metadata"]),
            payment_method=None,
            payment_method_types=list(session["payment_method_types"]),
            receipt_email=extra["receipt_email"],
            setup_future_usage=extra.get("setup_future_usage"),
            status="requires_payment_method",
            application_fee_amount=extra.get("application_fee_amount"),
            transfer_data={"amount": None, "destination": destination} if destination else None,
        )
        self.session_of[intent["id"]] = session["id"]
        session["payment_intent"] = intent["id"]
        return intent

    def _new_charge(self, intent: Obj, type_: str) -> Obj:
        transfer = intent["transfer_data"]
        charge = self._new(
            "py_" if type_ == "us_bank_account" else "ch_",
            "charge",
            "application_fee dispute failure_code failure_message transfer",
            amount=intent["amount"],
            application_fee_amount=intent.get("application_fee_amount"),
            amount_captured=0,
            amount_refunded=0,
            currency=intent["currency"],
            destination=transfer["destination"] if transfer else None,
            disputed=False,
            metadata={},
            paid=False,
            payment_intent=intent["id"],
            payment_method_details={"type": type_},
            refunded=False,
            status="pending",
        )
        intent.update(latest_charge=charge["id"])
        if not intent.get("payment_method"):
            intent["payment_method"] = new_id("pm_")
        return charge

    def _succeed(self, intent: Obj, charge: Obj) -> None:
        charge.update(status="succeeded", paid=True, amount_captured=charge["amount"])
        if charge["destination"]:
            charge["transfer"] = new_id("tr_")
        if charge.get("application_fee_amount"):
            charge["application_fee"] = new_id("fee_")
        intent.update(status="succeeded", amount_received=intent["amount"], last_payment_error=None)
        self._emit("payment_intent.succeeded", intent)
        self._emit("charge.succeeded", charge)

    def _decline(self, intent: Obj, charge: Obj, type_: str) -> None:
        if type_ == "card":
            code, message = "card_declined", "Your card was declined."
        elif intent["status"] == "processing":
            code, message = "insufficient_funds", "The bank account has insufficient funds."
        else:
            code, message = "bank_account_unusable", "The bank account could not be verified."
        charge.update(status="failed", failure_code=code, failure_message=message)
        error = {"code": code, "message": message, "type": "card_error", "payment_method": None}
        if type_ == "card":
            error["decline_code"] = "generic_decline"
        intent.update(status="requires_payment_method", last_payment_error=error)
        self._emit("payment_intent.payment_failed", intent)

    def _answer(self, first: int, **objects: Obj) -> Obj:
        answer: Obj = {name: copy.deepcopy(obj) for name, obj in objects.items()}
        answer["events"] = [event.id for event in self.events[first:]]
        return answer

    def _processing_intent(self, intent_id: str) -> tuple[Obj, Obj, Obj | None]:
        """A processing (ACH) PaymentIntent, its charge, and its Checkout Session (None for an
        off-session PaymentIntent made through the API)."""
        intent = self._control_get("payment_intent", intent_id)
        if intent["status"] != "processing":
            raise ControlError(409, f"payment intent {intent_id} is {intent['status']}")
        session_id = self.session_of.get(intent_id)
        session = self.objects[session_id] if session_id else None
        return intent, self.objects[intent["latest_charge"]], session

    def settle(self, intent_id: str) -> Obj:
        intent, charge, session = self._processing_intent(intent_id)
        first = len(self.events)
        self._succeed(intent, charge)
        if session is None:
            return self._answer(first, payment_intent=intent)
        session["payment_status"] = "paid"
        self._emit("checkout.session.async_payment_succeeded", session)
        return self._answer(first, checkout_session=session, payment_intent=intent)

    def fail(self, intent_id: str) -> Obj:
        intent, charge, session = self._processing_intent(intent_id)
        first = len(self.events)
        self._decline(intent, charge, "us_bank_account")
        if session is None:
            self._emit("charge.failed", charge)
            return self._answer(first, payment_intent=intent)
        self._emit("checkout.session.async_payment_failed", session)
        return self._answer(first, checkout_session=session, payment_intent=intent)

    # Stripe's dispute statuses (docs.stripe.com/api/disputes/object): an inquiry moves no
    # money; a chargeback withdraws the disputed amount at once and reinstates it if won.
    INQUIRY = ("warning_needs_response", "warning_under_review")
    CHARGEBACK = ("needs_response", "under_review")
    DISPUTE_FEE = 1500

    def dispute(self, intent_id: str, amount_cents: Any = None, inquiry: Any = False) -> Obj:
        """The cardholder's bank opens an inquiry (`inquiry`: no money moves) or a chargeback
        (the amount is withdrawn: `charge.dispute.funds_withdrawn` follows the creation)."""
        intent = self._control_get("payment_intent", intent_id)
        if intent["status"] != "succeeded":
            raise ControlError(409, f"payment intent {intent_id} is {intent['status']}")
        if not isinstance(inquiry, bool):
            raise ControlError(422, "inquiry must be true or false")
        charge = self.objects[intent["latest_charge"]]
        if charge["disputed"]:
            raise ControlError(409, f"charge {charge['id']} is already disputed")
        amount = charge["amount"] if amount_cents is None else amount_cents
        if not isinstance(amount, int) or not 0 < amount <= charge["amount"]:
            raise ControlError(422, f"amount_cents must be 1..{charge['amount']}")
        first = len(self.events)
        dispute = self._new(
            "dp_",
            "dispute",
            "",
            amount=amount,
            balance_transactions=[],
            charge=charge["id"],
            currency=charge["currency"],
            is_charge_refundable=inquiry,
            metadata={},
            payment_intent=intent_id,
            reason="fraudulent",
            status="warning_needs_response" if inquiry else "needs_response",
        )
        charge.update(dispute=dispute["id"], disputed=True)
        self._emit("charge.dispute.created", dispute)
        if not inquiry:
            self._withdraw(dispute)
        return self._answer(first, dispute=dispute)

    def _withdraw(self, dispute: Obj) -> None:
        amount = dispute["amount"]
        dispute["balance_transactions"].append(
            self._balance_transaction(dispute, -amount, self.DISPUTE_FEE, "Chargeback withdrawal")
        )
        dispute["is_charge_refundable"] = False
        self._emit("charge.dispute.funds_withdrawn", dispute)

    def _balance_transaction(self, dispute: Obj, amount: int, fee: int, what: str) -> Obj:
        return {
            "id": new_id("txn_"),
            "object": "balance_transaction",
            "amount": amount,
            "created": self.now(),
            "currency": dispute["currency"],
            "description": f"{what} for {dispute['charge']}",
            "fee": fee,
            "net": amount - fee,
            "reporting_category": "dispute" if amount < 0 else "dispute_reversal",
            "type": "adjustment",
        }

    def update_dispute(self, dispute_id: str, status: Any) -> Obj:
        """The dispute moves on: an inquiry or a chargeback under review, or an inquiry that
        becomes a chargeback (`needs_response`: the money is withdrawn then)."""
        dispute = self._control_get("dispute", dispute_id)
        allowed = {
            "warning_under_review": ("warning_needs_response",),
            "needs_response": self.INQUIRY,
            "under_review": ("needs_response",),
        }
        if status not in allowed:
            raise ControlError(422, f"status must be one of {sorted(allowed)}")
        if dispute["status"] not in allowed[status]:
            raise ControlError(409, f"dispute {dispute_id} is {dispute['status']}")
        first = len(self.events)
        dispute["status"] = status
        self._emit("charge.dispute.updated", dispute)
        if status == "needs_response":
            self._withdraw(dispute)
        return self._answer(first, dispute=dispute)

    def close_dispute(self, dispute_id: str, status: Any) -> Obj:
        """The dispute ends: a chargeback `won` (the money is reinstated) or `lost`; an inquiry
        `warning_closed` (no chargeback followed) or `prevented` (dispute prevention resolved
        it before a chargeback)."""
        dispute = self._control_get("dispute", dispute_id)
        allowed = {
            "won": self.CHARGEBACK,
            "lost": self.CHARGEBACK,
            "warning_closed": self.INQUIRY,
            "prevented": self.INQUIRY,
        }
        if status not in allowed:
            raise ControlError(422, f"status must be one of {sorted(allowed)}")
        if dispute["status"] not in allowed[status]:
            raise ControlError(409, f"dispute {dispute_id} is {dispute['status']}")
        first = len(self.events)
        dispute["status"] = status
        if status in ("warning_closed", "prevented"):
            charge = self.objects[dispute["charge"]]
            charge["disputed"] = False
        self._emit("charge.dispute.closed", dispute)
        if status == "won":
            dispute["balance_transactions"].append(
                self._balance_transaction(dispute, dispute["amount"], 0, "Chargeback reversal")
            )
            self._emit("charge.dispute.funds_reinstated", dispute)
        return self._answer(first, dispute=dispute)

    # -- refunds ------------------------------------------------------------------------------

    def create_refund(self, p: Obj) -> Obj:
        check_params(p, REFUND_PARAMS)
        intent_id, charge_id = p.get("payment_intent"), p.get("charge")
        if not intent_id and not charge_id:
            message = (
                "One of the following params should be provided for this request: "
                "payment_intent or charge."
            )
            raise StripeApiError(400, message)
        if intent_id:
            intent = self.find("payment_intent", intent_id)
            if intent is None:
                message = f"No such payment_intent: '{intent_id}'"
                raise StripeApiError(400, message, param="payment_intent", code="resource_missing")
            charge = self.find("charge", intent["latest_charge"] or "")
        else:
            charge = self.find("charge", str(charge_id))
            if charge is None:
                message = f"No such charge: '{charge_id}'"
                raise StripeApiError(400, message, param="charge", code="resource_missing")
        if charge is None or charge["status"] != "succeeded":
            message = "This PaymentIntent does not have a successful charge to refund."
            raise StripeApiError(400, message, code="charge_not_refundable")
        dispute = self.find("dispute", charge["dispute"] or "")
        if dispute is not None and not dispute["is_charge_refundable"]:
            message = f"Charge {charge['id']} has been charged back; cannot issue a refund."
            raise StripeApiError(400, message, code="charge_disputed")
        unrefunded = charge["amount"] - charge["amount_refunded"]
        if unrefunded == 0:
            message = f"Charge {charge['id']} has already been refunded."
            raise StripeApiError(400, message, code="charge_already_refunded")
        amount = unrefunded if p.get("amount") is None else as_int(p["amount"], "amount", 1)
        if amount > unrefunded:
            message = (
                f"Refund amount ({dollars(amount)}) is greater than unrefunded amount on "
                f"charge ({dollars(unrefunded)})"
            )
            raise StripeApiError(400, message, param="amount", code="amount_too_large")
        reason = p.get("reason") or None
        if reason is not None and reason not in REFUND_REASONS:
            message = f"Invalid reason: must be one of {', '.join(REFUND_REASONS)}"
            raise StripeApiError(400, message, param="reason")
        reverse = p.get("reverse_transfer") is not None and as_bool(
            p["reverse_transfer"], "reverse_transfer"
        )
        if reverse and charge["transfer"] is None:
            message = f"Charge {charge['id']} has no transfer to reverse."
            raise StripeApiError(400, message, param="reverse_transfer")
        pending = charge["payment_method_details"]["type"] == "us_bank_account"
        refund = self._new(
            "re_",
            "refund",
            "failure_reason",
            amount=amount,
            charge=charge["id"],
            currency=charge["currency"],
            metadata=as_metadata(p.get("metadata"), "metadata"),
            payment_intent=charge["payment_intent"],
            reason=reason,
            status="pending" if pending else "succeeded",
            transfer_reversal=new_id("trr_") if reverse else None,
        )
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        self._emit("refund.created", refund)
        if not pending:
            self._emit("charge.refunded", charge)
        return copy.deepcopy(refund)

    def finish_refund(self, refund_id: str, succeeded: bool, failure_reason: Any = None) -> Obj:
        refund = self._control_get("refund", refund_id)
        allowed = ("pending",) if succeeded else ("pending", "succeeded")
        if refund["status"] not in allowed:
            raise ControlError(409, f"refund {refund_id} is {refund['status']}")
        reason = failure_reason or "unknown"
        if not succeeded and reason not in REFUND_FAILURE_REASONS:
            raise ControlError(
                422, f"failure_reason must be one of {sorted(REFUND_FAILURE_REASONS)}"
            )
        first = len(self.events)
        previous = {"status": refund["status"]}
        if succeeded:
            refund["status"] = "succeeded"
            self._emit("refund.updated", refund, previous)
        else:
            refund.update(status="failed", failure_reason=reason)
            previous["failure_reason"] = None
            charge = self.objects[refund["charge"]]
            charge["amount_refunded"] -= refund["amount"]
            charge["refunded"] = False
            self._emit("refund.updated", refund, previous)
            self._emit("refund.failed", refund)
        return self._answer(first, refund=refund)

    # -- events -------------------------------------------------------------------------------

    def event(self, event_id: str) -> Event | None:
        with self.lock:
            return next((e for e in self.events if e.id == event_id), None)

    def list_events(self, limit: int, type_: str | None, starting_after: str | None) -> Obj:
        with self.lock:
            newest = [e for e in reversed(self.events) if type_ is None or e.type == type_]
        if starting_after is not None:
            ids = [e.id for e in newest]
            newest = newest[ids.index(starting_after) + 1 :] if starting_after in ids else []
        page = newest[:limit]
        return {
            "object": "list",
            "data": [e.as_dict() for e in page],
            "has_more": len(newest) > limit,
            "url": "/v1/events",
        }
