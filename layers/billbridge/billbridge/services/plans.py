"""Payment plans (issue 12): made by staff or chosen by the client on the pay page, a saved card
or bank account (Stripe Customer + Checkout in `mode=setup`), installments charged off-session
on their dates by the scheduled tick, exactly once per installment attempt whatever duplicate
ticks happen, and recorded in the ledger as any payment is. Rules: domain/plans.py."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from billbridge.domain.bills import StoredBill
from billbridge.domain.envelopes import money
from billbridge.domain.errors import Contended, NotFound, PaymentProviderError, RuleViolation
from billbridge.domain.fees import application_fee_cents
from billbridge.domain.ledger import (
    CheckoutHolds,
    PaymentChange,
    guards_of,
    payment_change,
    session_holds,
)
from billbridge.domain.payment_links import (
    PaymentLink,
    link_token,
    link_url,
    new_link_id,
    refuse_off_link,
    token_hash,
)
from billbridge.domain.payments import (
    Account,
    Hold,
    Method,
    PayableBill,
    TxnStatus,
    encode_allocations,
    not_payable_reason,
    payment_of_metadata,
)
from billbridge.domain.plans import (
    OPEN_PLAN,
    Every,
    Installment,
    InstallmentStatus,
    Part,
    Plan,
    PlanSettings,
    PlanStatus,
    cancel,
    check_plan_request,
    end_paid,
    idempotency_key,
    installment_allocations,
    mandate_text,
    part_txn_id,
    schedule,
    settle_installment,
    unclaimed,
)
from billbridge.domain.surcharge import SurchargeSettings
from billbridge.domain.surcharge import applies as surcharge_applies
from billbridge.domain.sync import utcnow
from billbridge.services.payments import MAX_REPLANS, link_of_token, payable_now
from billbridge.services.ports import (
    BillRepository,
    DuplicateEvent,
    Mailer,
    OffSessionCharge,
    PaymentLinkRepository,
    PaymentStore,
    PlanStore,
    SavedMethodGateway,
    SettingsRepository,
    SetupRequest,
    StaleTransaction,
)

log = logging.getLogger(__name__)

# How long an installment holds its bills while Stripe answers (seconds, as a rule): long
# enough for a tick that died mid-charge to be finished by the next hourly tick.
INSTALLMENT_HOLD = timedelta(hours=2)
Clock = Callable[[], datetime]

PART_EVENT_TARGETS = {
    "payment_intent.succeeded": TxnStatus.SUCCEEDED,
    "payment_intent.payment_failed": TxnStatus.FAILED,
    "payment_intent.processing": TxnStatus.PENDING,
}
CHARGE_STATUSES = {
    "succeeded": TxnStatus.SUCCEEDED,
    "processing": TxnStatus.PENDING,
    "failed": TxnStatus.FAILED,
}
FAILURE_WORDS = {
    "card_declined": "the card was declined",
    "authentication_required": (
        "the card's bank asked for the client's confirmation, which cannot be given while the "
        "client is away"
    ),
    "insufficient_funds": "the account had insufficient funds",
}


@dataclass(frozen=True)
class PlanView:
    plan: Plan
    setup_url: str | None = None  # where the client saves the plan's card or bank account


def summary(plan: Plan) -> str:
    """The plan in words: "4 installments of $250.00 every month from 2026-01-05"."""
    first = plan.installments[0]
    count = len(plan.installments)
    every = "week" if plan.every is Every.WEEK else "month"
    plural = "s" if count > 1 else ""
    words = f"{count} installment{plural} of {money(first.amount_cents, plan.currency)}"
    last = plan.installments[-1]
    if count > 1 and last.amount_cents != first.amount_cents:
        words += f" (the last {money(last.amount_cents, plan.currency)})"
    return f"{words} every {every} from {plan.start_on.isoformat()}"


class PaymentPlans:
    def __init__(
        self,
        plans: PlanStore,
        bills: BillRepository,
        links: PaymentLinkRepository,
        store: PaymentStore,
        gateway: Callable[[], SavedMethodGateway],
        settings: SettingsRepository,
        mailer: Callable[[], Mailer],
        pay_link_key: Callable[[], bytes],
        pay_base_url: str,
        firm_notice_address: str | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self._plans = plans
        self._bills = bills
        self._links = links
        self._store = store
        self._gateway = gateway
        self._settings = settings
        self._mailer = mailer
        self._pay_link_key = pay_link_key
        self._pay_base_url = pay_base_url.rstrip("/")
        self._firm_notice_address = firm_notice_address
        self._clock = clock

    # -- making plans ---------------------------------------------------------------------------

    def link_url(self, link: PaymentLink) -> str:
        return link_url(self._pay_base_url, link_token(self._pay_link_key(), link.firm_id, link.id))

    def create(
        self,
        firm_id: str,
        bill_ids: Sequence[int],
        installment_cents: int,
        every: Every,
        start_on: date,
        *,
        link: PaymentLink | None = None,
        limits: PlanSettings | None = None,
        created_by: str = "staff",
    ) -> Plan:
        """A plan over these bills (one client's, payable now). Staff plans keep only the
        product's own rules; a client's keeps the firm's `limits` too. The plan uses the
        client's saved method when there is one, else waits for it (`awaiting_method`)."""
        chosen_ids = list(dict.fromkeys(bill_ids))
        if not chosen_ids:
            raise RuleViolation("Choose at least one bill.", field="bill_ids", code="no_bills")
        stored = self._bills.get_many(firm_id, chosen_ids)
        missing = [i for i in chosen_ids if i not in stored]
        if missing:
            raise NotFound(f"Bill {missing[0]} was not found.", field="bill_ids")
        chosen = [stored[i] for i in chosen_ids]
        clients = {b.bill.client.id for b in chosen}
        if len(clients) > 1:
            raise RuleViolation(
                "A payment plan covers one client's bills.", field="bill_ids", code="mixed_clients"
            )
        if len({b.bill.currency for b in chosen}) > 1:
            raise RuleViolation(
                "Bills in different currencies need separate plans.",
                field="bill_ids",
                code="mixed_currencies",
            )
        for bill in chosen:
            if not bill.money.payable_state:
                raise RuleViolation(
                    f"Bill {bill.bill.number} cannot be paid: "
                    f"{not_payable_reason(bill.bill.state)}.",
                    field="bill_ids",
                    code="bill_not_payable",
                )
        covered = self._plans.covering(firm_id, chosen_ids, active_only=False)
        if covered:
            bill_id = next(iter(covered))
            raise RuleViolation(
                f"Bill {stored[bill_id].bill.number} is already in payment plan "
                f"{covered[bill_id]}.",
                field="bill_ids",
                code="bill_in_plan",
            )
        client = chosen[0].bill.client
        if not client.email:
            raise RuleViolation(
                "The client has no email address in Clio: a plan's notices could not reach them.",
                field="bill_ids",
                code="client_without_email",
            )
        now = self._clock()
        today = now.date()
        total = sum(b.payable_cents for b in chosen)
        check_plan_request(total, installment_cents, start_on, today, limits)
        link = link or self._link_for(firm_id, tuple(chosen_ids), now)
        customer_id = self._plans.customer(firm_id, client.id)
        plan = Plan(
            id=f"plan_{secrets.token_urlsafe(9).replace('-', 'x').replace('_', 'y')}",
            firm_id=firm_id,
            link_id=link.id,
            client_id=client.id,
            client_email=client.email,
            bill_ids=tuple(chosen_ids),
            every=every,
            start_on=start_on,
            installment_cents=installment_cents,
            installments=schedule(total, installment_cents, every, start_on),
            status=PlanStatus.AWAITING_METHOD,
            created_at=now,
            created_by=created_by,
            currency=chosen[0].bill.currency,
            customer_id=customer_id,
        )
        return self._plans.save(plan, now)

    def _link_for(self, firm_id: str, bill_ids: tuple[int, ...], now: datetime) -> PaymentLink:
        existing = self._links.for_bills(firm_id, bill_ids)
        if existing is not None:
            return existing
        link = PaymentLink(id=new_link_id(), firm_id=firm_id, bill_ids=bill_ids, created_at=now)
        token = link_token(self._pay_link_key(), firm_id, link.id)
        return self._links.create(link, token_hash(token))

    def link_for_plan(self, plan: Plan) -> PaymentLink | None:
        return self._links.get(plan.firm_id, plan.link_id)

    def get(self, firm_id: str, plan_id: str) -> Plan:
        plan = self._plans.get(firm_id, plan_id)
        if plan is None:
            raise NotFound(f"Payment plan {plan_id} was not found.", field="plan_id")
        return plan

    def cancel(self, firm_id: str, plan_id: str) -> Plan:
        for _ in range(MAX_REPLANS):
            plan = self.get(firm_id, plan_id)
            try:
                return self._plans.save(cancel(plan), self._clock())
            except StaleTransaction:
                continue
        raise Contended(
            "The plan changed while this was being saved, so nothing changed. Please try again."
        )

    def covering(self, firm_id: str, bill_ids: Sequence[int]) -> dict[int, str]:
        """Bills an active plan covers: reminders leave them alone."""
        return self._plans.covering(firm_id, bill_ids)

    # -- the client's side (the pay page) -------------------------------------------------------

    def link_of(self, token: str) -> PaymentLink:
        return link_of_token(self._links, token)

    def client_view(self, token: str) -> tuple[PaymentLink, PlanSettings, list[Plan]]:
        """What the pay page shows: the firm's limits and this link's plans."""
        link = self.link_of(token)
        limits = self._settings.get(link.firm_id).payment_plans
        return link, limits, self._plans.for_link(link.firm_id, link.id)

    def client_create(
        self,
        token: str,
        bill_ids: Sequence[int],
        installment_cents: int,
        every: Every,
        start_on: date,
        method: Method,
        mandate_accepted: bool,
    ) -> PlanView:
        """The client chooses a plan within the firm's limits and goes to save its method.
        An earlier plan of theirs on this link still waiting for its method is replaced."""
        link = self.link_of(token)
        refuse_off_link(link, bill_ids)
        if method is Method.ACH and not mandate_accepted:
            raise RuleViolation(
                "To pay the plan from a bank account, accept the debit authorization.",
                field="mandate_accepted",
                code="mandate_not_accepted",
            )
        settings = self._settings.get(link.firm_id)
        for waiting in self._plans.for_link(link.firm_id, link.id):
            if waiting.status is PlanStatus.AWAITING_METHOD and waiting.created_by == "client":
                self.cancel(link.firm_id, waiting.id)
        plan = self.create(
            link.firm_id,
            bill_ids,
            installment_cents,
            every,
            start_on,
            link=link,
            limits=settings.payment_plans,
            created_by="client",
        )
        reused = self._use_saved(plan, method, settings.firm_name)
        if reused is not None:
            return PlanView(reused)  # nothing to save: no second SetupIntent
        client_name = self._client_name(plan)
        return self.start_setup(
            plan, method, token, settings.firm_name, client_name, mandate_accepted
        )

    def _use_saved(self, plan: Plan, method: Method, firm_name: str) -> Plan | None:
        """The client's plan, active at once on the card or bank account (of the method
        chosen) they saved on the pay page, newest first: its consent covered a payment plan's
        installments they set up, and a bank account's plan mandate was accepted for this plan
        (client_create checks it). None when they saved none of that kind."""
        saved = [
            m
            for m in self._plans.saved_methods(plan.firm_id, plan.client_id)
            if m.live and m.method.method is method
        ]
        if not saved:
            return None
        chosen = saved[-1]
        now = self._clock()
        text = mandate_text(firm_name, summary(plan)) if method is Method.ACH else None
        for _ in range(MAX_REPLANS):
            current = self.get(plan.firm_id, plan.id)
            if current.status is not PlanStatus.AWAITING_METHOD:
                return current
            updated = replace(
                current,
                method=chosen.method,
                customer_id=chosen.customer_id,
                status=PlanStatus.ACTIVE,
                mandate_text=text or current.mandate_text,
                mandate_accepted_at=now if text else current.mandate_accepted_at,
            )
            try:
                return self._plans.save(updated, now)
            except StaleTransaction:
                continue
        raise Contended(
            "The plan changed while this was being saved, so nothing changed. Please try again."
        )

    def client_change_method(
        self, token: str, plan_id: str, method: Method, mandate_accepted: bool
    ) -> PlanView:
        """The client saves another card or bank account for an open plan of this link (after
        a declined installment, say); its next attempts use it."""
        link = self.link_of(token)
        plan = self._plans.get(link.firm_id, plan_id)
        if plan is None or plan.link_id != link.id:
            raise NotFound(f"Payment plan {plan_id} was not found on this link.", field="plan_id")
        settings = self._settings.get(link.firm_id)
        return self.start_setup(
            plan, method, token, settings.firm_name, self._client_name(plan), mandate_accepted
        )

    def surcharge_of(self, token: str) -> tuple[SurchargeSettings, bool]:
        """The firm's surcharge settings and whether they apply to this link's client (the
        pay page shows it before the client pays: card payments of invoices only)."""
        link = self.link_of(token)
        settings = self._settings.get(link.firm_id).surcharge
        stored = self._bills.get_many(link.firm_id, list(link.bill_ids))
        states = {b.bill.client.state for b in stored.values()}
        state = next(iter(states)) if len(states) == 1 else None
        return settings, surcharge_applies(settings, Account.OPERATING, Method.CARD, state)

    def firm_name(self, firm_id: str) -> str:
        return self._settings.get(firm_id).firm_name

    def _client_name(self, plan: Plan) -> str:
        stored = self._bills.get(plan.firm_id, plan.bill_ids[0])
        return stored.bill.client.name if stored else ""

    # -- the client's saved method ----------------------------------------------------------------

    def start_setup(
        self,
        plan: Plan,
        method: Method,
        token: str,
        firm_name: str,
        client_name: str,
        mandate_accepted: bool,
    ) -> PlanView:
        """A Checkout Session in `mode=setup` where the client saves the plan's card or bank
        account. A bank account needs the client's acceptance of the debit authorization shown
        on the pay page (mandate_text), recorded on the plan."""
        if plan.status not in OPEN_PLAN:
            raise RuleViolation(
                f"This plan is {plan.status.value}: it takes no payment method now.",
                code="plan_not_open",
            )
        now = self._clock()
        text = None
        if method is Method.ACH:
            if not mandate_accepted:
                raise RuleViolation(
                    "To pay the plan from a bank account, accept the debit authorization.",
                    field="mandate_accepted",
                    code="mandate_not_accepted",
                )
            text = mandate_text(firm_name, summary(plan))
        gateway = self._gateway()
        customer_id = plan.customer_id or self._plans.customer(plan.firm_id, plan.client_id)
        if customer_id is None:
            made = gateway.create_customer(
                plan.client_email,
                client_name,
                {"firm_id": plan.firm_id, "client_id": str(plan.client_id)},
                key=f"customer-{plan.firm_id}-{plan.client_id}",
            )
            customer_id = self._plans.save_customer(plan.firm_id, plan.client_id, made)
        back = f"{self._pay_base_url}/pay/{token}"
        session = gateway.create_setup_session(
            SetupRequest(
                customer_id=customer_id,
                method=method,
                metadata={
                    "firm_id": plan.firm_id,
                    "plan_id": plan.id,
                    "client_id": str(plan.client_id),
                },
                success_url=f"{back}?plan={plan.id}",
                cancel_url=back,
                idempotency_key=f"setup-{plan.id}-{method.value}-{secrets.token_hex(6)}",
            )
        )
        for _ in range(MAX_REPLANS):
            current = self.get(plan.firm_id, plan.id)
            updated = replace(
                current,
                customer_id=customer_id,
                mandate_text=text or current.mandate_text,
                mandate_accepted_at=now if text else current.mandate_accepted_at,
            )
            try:
                saved = self._plans.save(updated, now)
                return PlanView(saved, session.url)
            except StaleTransaction:
                continue
        raise Contended(
            "The plan changed while this was being saved, so nothing changed. Please try again."
        )

    def setup_completed(self, session: dict[str, Any]) -> str:
        """Stripe says a `mode=setup` session completed: the saved method is the plan's, and
        the plan starts. Answers applied | duplicate | ignored."""
        metadata = session.get("metadata") or {}
        firm_id, plan_id = metadata.get("firm_id"), metadata.get("plan_id")
        setup_id = session.get("setup_intent")
        if not firm_id or not plan_id or not setup_id:
            return "ignored"
        result = self._gateway().retrieve_setup_intent(str(setup_id))
        if result.status != "succeeded" or result.method is None:
            return "ignored"
        for _ in range(MAX_REPLANS):
            plan = self._plans.get(str(firm_id), str(plan_id))
            if plan is None:
                return "ignored"
            if plan.method is not None and plan.method.payment_method_id == (
                result.method.payment_method_id
            ):
                return "duplicate"
            if plan.status not in OPEN_PLAN:
                return "ignored"
            updated = replace(
                plan,
                method=result.method,
                customer_id=result.customer_id or plan.customer_id,
                status=PlanStatus.ACTIVE,
            )
            try:
                self._plans.save(updated, self._clock())
                return "applied"
            except StaleTransaction:
                continue
        raise RuntimeError("the plan kept changing; Stripe will deliver the event again")

    # -- the schedule -----------------------------------------------------------------------------

    def run_due(self, today: date | None = None) -> dict[str, int]:
        """The scheduled tick: every active plan with an installment (or a retry) due."""
        today = today or self._clock().date()
        counts = {"plans": 0, "charged": 0}
        for firm_id, plan_id in self._plans.due(today):
            counts["plans"] += 1
            try:
                if self.charge_due(firm_id, plan_id, today):
                    counts["charged"] += 1
            except Exception:  # one plan's trouble must not stop the others; the next tick retries
                log.exception("installment of plan %s failed to run", plan_id)
        return counts

    def charge_due(self, firm_id: str, plan_id: str, today: date) -> bool:
        """Charge the plan's due installment, once: the attempt is claimed on the plan first
        (conditional on its version) with its allocation, so every tick that finds it
        `charging` asks Stripe with the same idempotency keys and parameters."""
        for _ in range(MAX_REPLANS):
            plan = self._plans.get(firm_id, plan_id)
            if plan is None or plan.status is not PlanStatus.ACTIVE or plan.method is None:
                return False
            installment = plan.current(today)
            if installment is None:
                return False
            if installment.status is not InstallmentStatus.CHARGING:
                claimed = self._claim(plan, installment, today)
                if claimed is None:
                    return False
                try:
                    plan = self._plans.save(claimed, self._clock())
                except StaleTransaction:
                    continue  # another tick claimed it: read again (and finish its charge)
                installment = plan.current(today)
                if installment is None or installment.status is not InstallmentStatus.CHARGING:
                    return False  # the plan ended: its bills need nothing more
            held = self._hold(plan, installment)
            if held is None:
                # A checkout took the money after the claim: give the claim up (Stripe was not
                # asked) and claim again over what the bills may pay now.
                try:
                    self._plans.save(unclaimed(plan, installment, today), self._clock())
                except StaleTransaction:
                    pass
                continue
            if not held:
                return False  # answered parts and an unheld rest: the next tick
            self._charge(plan, installment, today)
            return True
        raise RuntimeError(f"plan {plan_id} kept changing")

    def _hold(self, plan: Plan, installment: Installment) -> bool | None:
        """Hold the attempt's unanswered parts on their bills before Stripe is asked, as a
        checkout holds its sessions' (services/payments.py): in one write conditional on each
        bill's `money_version`, state and Clio balance being what was read, so an installment
        and a one-off checkout can never both take the same payable money. Answers True when
        held (now or by an earlier tick), None when the claimed allocation no longer fits what
        the bills may pay beside other holds (give the claim up), False when it does not fit
        but part of the attempt was already answered (leave it to the next tick)."""
        todo = [
            p
            for p in installment.parts
            if p.status is TxnStatus.PENDING and not p.payment_intent_id
        ]
        if not todo:
            return True
        wanted = [(p.txn_id, a) for p in todo for a in p.allocations]
        bill_ids = sorted({a.bill_id for _, a in wanted})
        for _ in range(MAX_REPLANS):
            now = self._clock()
            stored = self._bills.get_many(plan.firm_id, bill_ids)
            holds = self._store.holds(plan.firm_id, bill_ids, now)
            mine = {(h.bill_id, h.session_id) for h in holds if _of_plan(h, plan)}
            if all((a.bill_id, txn_id) in mine for txn_id, a in wanted):
                return True  # held by the tick that claimed it
            others = [h for h in holds if not _of_plan(h, plan)]
            fits = all(
                a.bill_id in stored
                and a.amount_cents <= payable_now(stored[a.bill_id], others).payable_cents
                for _, a in wanted
            )
            if not fits:
                answered = len(todo) < len(installment.parts)
                return False if answered else None
            expires = now + INSTALLMENT_HOLD
            change = CheckoutHolds(
                firm_id=plan.firm_id,
                guards=guards_of(stored[i] for i in bill_ids),
                holds=tuple(
                    Hold(a.bill_id, plan_hold_link(plan), txn_id, a.amount_cents, expires)
                    for txn_id, a in wanted
                ),
            )
            try:
                self._store.hold_checkout(change, now)
            except StaleTransaction:
                continue  # a checkout or a payment moved a bill: read again
            return True
        raise RuntimeError(f"the bills of plan {plan.id} kept changing")

    def _claim(self, plan: Plan, installment: Installment, today: date) -> Plan | None:
        """The plan with this installment's next attempt claimed and allocated, or with the
        plan ended when its bills need nothing more."""
        owed, payable = self._payable(plan)
        if owed <= 0 and not self._pending(plan):
            return end_paid(plan)  # paid (not merely held by a checkout): the plan is done
        parts = installment_allocations(plan, installment, payable)
        if not parts:
            return None  # nothing chargeable now (another checkout holds it): next tick
        attempt = installment.attempts + 1
        claimed = replace(
            installment,
            status=InstallmentStatus.CHARGING,
            attempts=attempt,
            next_attempt_on=None,
            attempted_on=today,
            parts=tuple(
                Part(
                    account=account,
                    allocations=allocations,
                    txn_id=part_txn_id(plan.id, installment.number, attempt, account),
                )
                for account, allocations in parts.items()
            ),
        )
        return plan.with_installment(claimed)

    def _payable(self, plan: Plan) -> tuple[int, list[PayableBill]]:
        """What the plan's bills still owe, and what they may pay now beside other checkouts'
        and installments' holds (the plan's own, of an attempt given up, do not count). A
        bill another checkout holds is not paid: the plan waits, it does not end."""
        stored = self._bills.get_many(plan.firm_id, list(plan.bill_ids))
        holds = self._store.holds(plan.firm_id, list(plan.bill_ids), self._clock())
        others = [h for h in holds if not _of_plan(h, plan)]
        found = [stored[i] for i in plan.bill_ids if i in stored]
        return sum(b.payable_cents for b in found), [payable_now(b, others) for b in found]

    def _pending(self, plan: Plan) -> bool:
        return any(i.status is InstallmentStatus.PROCESSING for i in plan.installments)

    def _charge(self, plan: Plan, installment: Installment, today: date) -> None:
        accounts = self._store.payment_accounts(plan.firm_id)
        if accounts is None or plan.method is None or plan.customer_id is None:
            return
        gateway = self._gateway()
        for part in installment.parts:
            if part.status is not TxnStatus.PENDING or part.payment_intent_id:
                continue  # answered already
            metadata = {
                "firm_id": plan.firm_id,
                "link_id": plan.link_id,
                "plan_id": plan.id,
                "installment": str(installment.number),
                "attempt": str(installment.attempts),
                "account": part.account.value,
                "method": plan.method.method.value,
                "allocations": encode_allocations(part.allocations),
                "txn_id": part.txn_id,
                "currency": plan.currency,
            }
            try:
                result = gateway.charge_off_session(
                    OffSessionCharge(
                        customer_id=plan.customer_id,
                        payment_method_id=plan.method.payment_method_id,
                        method=plan.method.method,
                        amount_cents=part.amount_cents,
                        currency=plan.currency,
                        destination_account_id=accounts.for_account(part.account),
                        metadata=metadata,
                        description=(
                            f"Installment {installment.number} of {len(plan.installments)} "
                            f"({part.account.value})"
                        ),
                        idempotency_key=idempotency_key(
                            plan.id, installment.number, installment.attempts, part.account
                        ),
                        receipt_email=plan.client_email,
                        application_fee_cents=application_fee_cents(
                            part.account, plan.method.method, part.amount_cents
                        ),
                    )
                )
            except PaymentProviderError as exc:
                if exc.definitive:
                    self.record_part(metadata, TxnStatus.FAILED, None, "refused")
                # Otherwise Stripe may have charged: the next tick asks again with the same key.
                continue
            target = CHARGE_STATUSES.get(result.status, TxnStatus.PENDING)
            self.record_part(metadata, target, result.payment_intent_id, result.failure_code)

    # -- what Stripe says about a part ----------------------------------------------------------

    def handle_event(self, event_id: str, kind: str, obj: dict[str, Any]) -> str | None:
        """Stripe events about plans: a `mode=setup` session completed (the plan's method is
        saved), and the PaymentIntents of installments. None for any other event."""
        if kind == "checkout.session.completed" and obj.get("mode") == "setup":
            return self.setup_completed(obj)
        if kind in PART_EVENT_TARGETS and (obj.get("metadata") or {}).get("plan_id"):
            return self.intent_event(obj, kind, event_id)
        return None

    def intent_event(self, intent: dict[str, Any], kind: str, event_id: str) -> str:
        """`payment_intent.*` events about an installment part (metadata carries the plan)."""
        metadata = intent.get("metadata") or {}
        target = PART_EVENT_TARGETS.get(kind)
        if target is None or not metadata.get("plan_id") or not metadata.get("txn_id"):
            return "ignored"
        keys = ("firm_id", "link_id", "account", "allocations")
        if not all(metadata.get(k) for k in keys):
            return "ignored"
        error = intent.get("last_payment_error") or {}
        return self.record_part(
            {str(k): str(v) for k, v in metadata.items()},
            target,
            str(intent.get("id") or "") or None,
            error.get("code") if target is TxnStatus.FAILED else None,
            event_id=event_id,
        )

    def record_part(
        self,
        metadata: dict[str, str],
        target: TxnStatus,
        payment_intent_id: str | None,
        failure: str | None,
        event_id: str | None = None,
    ) -> str:
        """One part moved (Stripe's answer to the tick, or its event, in any order). The
        payment goes into the ledger as any payment does, from the PaymentIntent's metadata
        alone (so money is recorded whatever became of the plan); then the installment
        follows. Each only moves forward: a duplicate or late report changes nothing."""
        firm_id, plan_id, txn_id = metadata["firm_id"], metadata["plan_id"], metadata["txn_id"]
        outcome = self._ledger(metadata, target, payment_intent_id, event_id)
        for _ in range(MAX_REPLANS):
            plan = self._plans.get(firm_id, plan_id)
            found = _part(plan, txn_id) if plan is not None else None
            if plan is None or found is None:
                return outcome  # an earlier attempt's part, or no plan: the ledger has it
            installment, part = found
            moved_part = _moved(part, target, payment_intent_id, failure)
            if moved_part is part:
                return outcome
            moved = replace(
                installment,
                parts=tuple(moved_part if p.txn_id == txn_id else p for p in installment.parts),
            )
            just_failed = False
            if installment.status not in (
                InstallmentStatus.CHARGING,
                InstallmentStatus.PROCESSING,
            ) or not all(
                p.payment_intent_id or p.status is not TxnStatus.PENDING for p in moved.parts
            ):
                updated = plan.with_installment(moved)  # parts still to ask, or settled already
            else:
                updated, just_failed = settle_installment(plan, moved, self._clock().date())
            try:
                saved = self._plans.save(updated, self._clock())
            except StaleTransaction:
                continue
            if just_failed:
                self._tell_failed(saved, txn_id)
            return "applied"
        raise RuntimeError(f"plan {plan_id} kept changing")

    def _ledger(
        self,
        metadata: dict[str, str],
        target: TxnStatus,
        payment_intent_id: str | None,
        event_id: str | None,
    ) -> str:
        return record_intent_payment(
            self._store, self._clock(), metadata, target, payment_intent_id, event_id
        )

    # -- telling people ------------------------------------------------------------------------

    def _tell_failed(self, plan: Plan, txn_id: str) -> None:
        found = _part(plan, txn_id)
        if found is None:
            return
        installment, part = found
        settings = self._settings.get(plan.firm_id)
        amount = money(part.amount_cents, plan.currency)
        why = FAILURE_WORDS.get(part.failure or "", "the payment was refused")
        if installment.status is InstallmentStatus.RETRY_SCHEDULED and installment.next_attempt_on:
            next_step = f"We will try again on {installment.next_attempt_on.isoformat()}."
        else:
            next_step = "We will not try this installment again."
        method = plan.method.label if plan.method else "your saved payment method"
        client_text = (
            f"Dear client,\n\nInstallment {installment.number} of your payment plan with "
            f"{settings.firm_name} ({amount}, due {installment.due_on.isoformat()}) could not be "
            f"charged to {method}: {why}. {next_step}\n\nTo use another card or bank account, "
            "save it from the payment link you received (Pay in installments); for any "
            f"question, please contact {settings.firm_name}.\n"
        )
        firm_text = (
            f"Installment {installment.number} of payment plan {plan.id} ({amount}, due "
            f"{installment.due_on.isoformat()}, client {plan.client_email}) failed: {why}. "
            f"{next_step}\n"
        )
        mailer = self._mailer()
        subject = f"A payment plan installment of {amount} could not be charged"
        for to, text in (
            ([plan.client_email], client_text),
            ([self._firm_address(settings)], firm_text),
        ):
            if not to[0]:
                continue
            try:
                mailer.send(
                    to=to,
                    subject=subject,
                    text=text,
                    html="",
                    reply_to=str(settings.reply_to) if settings.reply_to else None,
                    sender_name=settings.sender_name or settings.firm_name,
                    attachments=[],
                    tags={"kind": "plan_installment_failed", "firm": plan.firm_id},
                )
            except Exception:  # the failure is recorded; a lost notice must not undo it
                log.exception("could not email the failed installment of plan %s", plan.id)

    def _firm_address(self, settings: Any) -> str:
        return str(settings.reply_to or self._firm_notice_address or "")


def plan_hold_link(plan: Plan) -> str:
    """The `link_id` an installment's holds carry: never a payment link's id, so a checkout
    on the plan's link never tries to close an installment as one of its own sessions."""
    return f"plan:{plan.id}"


def _of_plan(hold: Hold, plan: Plan) -> bool:
    return hold.link_id == plan_hold_link(plan)


def _part(plan: Plan, txn_id: str) -> tuple[Installment, Part] | None:
    for installment in plan.installments:
        for part in installment.parts:
            if part.txn_id == txn_id:
                return installment, part
    return None


def _moved(
    part: Part, target: TxnStatus, payment_intent_id: str | None, failure: str | None
) -> Part:
    """The part after a report, or the same part when the report is old news."""
    intent = part.payment_intent_id or payment_intent_id
    if part.status is target or part.status is not TxnStatus.PENDING:
        if intent != part.payment_intent_id:
            return replace(part, payment_intent_id=intent)
        return part
    if target is TxnStatus.PENDING:
        # Processing (ACH): still pending, now with its PaymentIntent.
        return replace(part, payment_intent_id=intent) if intent != part.payment_intent_id else part
    return replace(part, status=target, payment_intent_id=intent, failure=failure)


def plan_bills(bills: BillRepository, plan: Plan) -> list[StoredBill]:
    stored = bills.get_many(plan.firm_id, list(plan.bill_ids))
    return [stored[i] for i in plan.bill_ids if i in stored]


def account_label(account: Account) -> str:
    return "trust" if account is Account.TRUST else "operating"


def record_intent_payment(
    store: PaymentStore,
    now: datetime,
    metadata: dict[str, str],
    target: TxnStatus,
    payment_intent_id: str | None,
    event_id: str | None,
    failure_code: str | None = None,
) -> str:
    """A PaymentIntent of ours (an installment's part, or a payment on a saved method) moved:
    the payment goes into the ledger as any payment does, from its metadata alone (`firm_id`,
    `link_id`, `txn_id`, `account`, `method`, `allocations`, `currency`), and its holds end.
    Only forward, once per event: applied | duplicate | stale."""
    firm_id, link_id = metadata["firm_id"], metadata["link_id"]
    proposed = payment_of_metadata(
        metadata["txn_id"],
        metadata,
        target,
        metadata.get("currency") or "USD",
        now,
        payment_intent_id=payment_intent_id,
        failure_reason=failure_code if target is TxnStatus.FAILED else None,
    )
    for _ in range(MAX_REPLANS):
        existing = store.get_transaction(firm_id, link_id, proposed.id)
        change: PaymentChange | None = payment_change(existing, proposed, target, now, event_id)
        if change is not None:
            # The part's money is now pending, paid or failed: its hold has done its job.
            change = replace(
                change, released_holds=session_holds(proposed.id, proposed.allocations)
            )
        try:
            if change is None:
                if event_id is not None and not store.record_event(firm_id, event_id, now):
                    return "duplicate"
                return "stale"
            store.apply(change, now)
            return "applied"
        except DuplicateEvent:
            return "duplicate"
        except StaleTransaction:
            continue
    raise RuntimeError("the payment kept changing")
