"""Fakes for saved methods and payment plans (part of tests/fakes.py's FakeWorld): the plan
store with DynamoPlanStore's rules (a save conditional on the version read, the due index and
the bills' plan markers moved with the plan), and Stripe's Customers, setup sessions and
off-session PaymentIntents with their idempotency keys and events."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from billbridge.domain.payments import Method
from billbridge.domain.plans import Plan, PlanStatus, SavedMethod
from billbridge.domain.saved_methods import StoredMethod
from billbridge.services.ports import (
    ChargeResult,
    CheckoutSession,
    OffSessionCharge,
    SetupRequest,
    SetupResult,
    StaleTransaction,
)


class FakePlanStore:
    def __init__(self) -> None:
        self.plans: dict[tuple[str, str], Plan] = {}
        self.customers: dict[tuple[str, int], str] = {}
        self.methods: dict[tuple[str, int, str], StoredMethod] = {}
        self.saves = 0
        # Bills a test says an active plan covers, beside those its plans cover.
        self.covered: set[tuple[str, int]] = set()

    def get(self, firm_id: str, plan_id: str) -> Plan | None:
        return self.plans.get((firm_id, plan_id))

    def save(self, plan: Plan, now: datetime) -> Plan:
        stored = self.plans.get((plan.firm_id, plan.id))
        if (stored.version if stored else 0) != plan.version:
            raise StaleTransaction(plan.id)
        saved = replace(plan, version=plan.version + 1)
        self.plans[(plan.firm_id, plan.id)] = saved
        self.saves += 1
        return saved

    def due(self, today: date) -> list[tuple[str, str]]:
        return sorted(
            key
            for key, plan in self.plans.items()
            if plan.next_action_on is not None and plan.next_action_on <= today
        )

    def for_link(self, firm_id: str, link_id: str) -> list[Plan]:
        return [p for (f, _), p in self.plans.items() if f == firm_id and p.link_id == link_id]

    def covering(
        self, firm_id: str, bill_ids: Sequence[int], active_only: bool = True
    ) -> dict[int, str]:
        covered: dict[int, str] = {}
        wanted = (
            {PlanStatus.ACTIVE} if active_only else {PlanStatus.ACTIVE, PlanStatus.AWAITING_METHOD}
        )
        for (f, _), plan in self.plans.items():
            if f == firm_id and plan.status in wanted:
                covered.update({b: plan.id for b in plan.bill_ids if b in bill_ids})
        return covered

    def covered_bill_ids(self, firm_id: str, bill_ids: Sequence[int]) -> set[int]:
        covered = set(self.covering(firm_id, bill_ids))
        return covered | {i for i in bill_ids if (firm_id, i) in self.covered}

    def customer(self, firm_id: str, client_id: int) -> str | None:
        return self.customers.get((firm_id, client_id))

    def save_customer(self, firm_id: str, client_id: int, customer_id: str) -> str:
        return self.customers.setdefault((firm_id, client_id), customer_id)

    def saved_methods(self, firm_id: str, client_id: int) -> list[StoredMethod]:
        found = [m for (f, c, _), m in self.methods.items() if (f, c) == (firm_id, client_id)]
        return sorted(found, key=lambda m: (m.saved_at, m.id))

    def save_method(self, method: StoredMethod) -> bool:
        key = (method.firm_id, method.client_id, method.id)
        if key in self.methods:
            return False
        self.methods[key] = method
        return True

    def forget_method(
        self, firm_id: str, client_id: int, method_id: str, at: datetime
    ) -> StoredMethod | None:
        found = self.methods.get((firm_id, client_id, method_id))
        if found is None or not found.live:
            return None
        self.methods[(firm_id, client_id, method_id)] = replace(found, forgotten_at=at)
        return found


class FakeSavedMethods:
    """Mixed into FakeStripe. `card_outcome` decides how the next off-session charges end
    ("succeeded", "card_declined", "authentication_required"); bank debits go processing."""

    keys: dict[str, str]

    def _init_saved(self) -> None:
        self.customers: dict[str, dict[str, Any]] = {}
        self.setups: dict[str, dict[str, Any]] = {}
        self.intents: dict[str, dict[str, Any]] = {}
        self.charge_answers: dict[str, ChargeResult] = {}
        self.charges: list[OffSessionCharge] = []  # every request, replays included
        self.card_outcome = "succeeded"
        self._saved_ids = itertools.count(1)
        # PaymentMethods saved by a Checkout payment with setup_future_usage: pm id ->
        # {"customer", "method", "label", "test"}; detached ones lose their customer.
        self.payment_methods: dict[str, dict[str, Any]] = {}
        self.intent_methods: dict[str, str] = {}
        self.detached: list[str] = []

    def _sid(self, prefix: str) -> str:
        return f"{prefix}{next(self._saved_ids)}"

    def _saved_event(self, type_: str, obj: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": self._sid("evt_s"),
            "object": "event",
            "type": type_,
            "data": {"object": copy.deepcopy(obj)},
        }

    def create_customer(self, email: str, name: str, metadata: dict[str, str], key: str) -> str:
        if key in self.keys:
            return self.keys[key]
        customer_id = self._sid("cus_")
        self.customers[customer_id] = {"id": customer_id, "email": email, "name": name}
        self.keys[key] = customer_id
        return customer_id

    def create_setup_session(self, request: SetupRequest) -> CheckoutSession:
        session_id = self._sid("cs_setup_")
        setup_id = self._sid("seti_")
        self.setups[setup_id] = {
            "id": setup_id,
            "customer": request.customer_id,
            "status": "requires_payment_method",
            "payment_method": None,
            "method": request.method,
        }
        self.setups[session_id] = {
            "id": session_id,
            "object": "checkout.session",
            "mode": "setup",
            "metadata": dict(request.metadata),
            "setup_intent": setup_id,
            "status": "open",
        }
        return CheckoutSession(session_id, f"https://checkout.stripe.test/{session_id}", 0)

    def save_method(self, session_id: str) -> list[dict[str, Any]]:
        """The client saves a card (or the session's bank account): the session completes."""
        session = self.setups[session_id]
        setup = self.setups[session["setup_intent"]]
        setup.update(status="succeeded", payment_method=self._sid("pm_"))
        session["status"] = "complete"
        return [self._saved_event("checkout.session.completed", session)]

    def retrieve_setup_intent(self, setup_intent_id: str) -> SetupResult:
        setup = self.setups[setup_intent_id]
        method = None
        if setup["payment_method"]:
            label = "Visa ending 4242" if setup["method"] is Method.CARD else "Bank ending 6789"
            method = SavedMethod(setup["payment_method"], setup["method"], label)
        return SetupResult(setup["status"], setup["customer"], method)

    def retrieve_intent_method(self, payment_intent_id: str) -> SetupResult:
        pm_id = self.intent_methods.get(payment_intent_id)
        if pm_id is None:
            return SetupResult("succeeded", None, None)
        pm = self.payment_methods[pm_id]
        return SetupResult(
            "succeeded", pm["customer"], SavedMethod(pm_id, pm["method"], pm["label"])
        )

    def detach_payment_method(self, payment_method_id: str) -> None:
        pm = self.payment_methods.get(payment_method_id)
        if pm is not None:
            pm["customer"] = None
        self.detached.append(payment_method_id)

    def saved_by_checkout(self, intent_id: str, customer: str, method: Method, test: str) -> str:
        """The PaymentMethod a Checkout payment with setup_future_usage attached to the
        Customer (FakeStripe.pay calls it): `test` "4242" succeeds later, "3184" needs
        authentication, "0341" is declined."""
        pm_id = self._sid("pm_saved_")
        label = f"Visa ending {test}" if method is Method.CARD else "Bank account ending 6789"
        self.payment_methods[pm_id] = {
            "customer": customer,
            "method": method,
            "label": label,
            "test": test,
        }
        self.intent_methods[intent_id] = pm_id
        return pm_id

    def charge_off_session(self, charge: OffSessionCharge) -> ChargeResult:
        self.charges.append(charge)
        if charge.idempotency_key in self.charge_answers:
            return self.charge_answers[charge.idempotency_key]
        intent_id = self._sid("pi_off_")
        saved = self.payment_methods.get(charge.payment_method_id)
        outcome = self.card_outcome
        if saved is not None:
            assert saved["customer"] == charge.customer_id, "a detached or another's method"
            outcome = {"3184": "authentication_required", "0341": "card_declined"}.get(
                saved["test"], outcome
            )
        if charge.method is Method.ACH:
            status, code = "processing", None
        elif outcome == "succeeded":
            status, code = "succeeded", None
        else:
            status, code = "failed", outcome
        self.intents[intent_id] = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": charge.amount_cents,
            "metadata": dict(charge.metadata),
            "status": "requires_payment_method" if status == "failed" else status,
            "last_payment_error": {"code": code} if code else None,
        }
        answer = ChargeResult(status, intent_id, code)
        self.charge_answers[charge.idempotency_key] = answer
        return answer

    def intent_events(self, intent_id: str) -> list[dict[str, Any]]:
        """The events Stripe sends about an off-session PaymentIntent as it stands now."""
        intent = self.intents[intent_id]
        kind = {
            "succeeded": "payment_intent.succeeded",
            "processing": "payment_intent.processing",
            "requires_payment_method": "payment_intent.payment_failed",
        }[intent["status"]]
        return [self._saved_event(kind, intent)]

    def settle_intent(self, intent_id: str, succeeded: bool = True) -> list[dict[str, Any]]:
        intent = self.intents[intent_id]
        if succeeded:
            intent.update(status="succeeded")
        else:
            intent.update(
                status="requires_payment_method",
                last_payment_error={"code": "insufficient_funds"},
            )
        return self.intent_events(intent_id)
