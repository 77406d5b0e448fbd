"""Saved cards and bank accounts on the pay page (issue 12): the client ticks "Save this card
or bank account" next to the pay button, Checkout is made for their Stripe Customer with
`setup_future_usage=off_session`, the webhook keeps the method for that client of that firm,
and a later visit to any of that client's pay links pays with it (an off-session
PaymentIntent per account, through the same holds, trust/operating split and ledger as a
checkout), or forgets it (detached in Stripe). Rules: domain/saved_methods.py."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from billbridge.domain.bills import Client
from billbridge.domain.envelopes import money
from billbridge.domain.errors import Contended, NotFound, PaymentProviderError, RuleViolation
from billbridge.domain.fees import application_fee_cents
from billbridge.domain.ledger import CheckoutHolds, guards_of
from billbridge.domain.payment_links import PaymentLink, refuse_off_link
from billbridge.domain.payments import (
    Account,
    Hold,
    TxnStatus,
    decode_allocations,
    encode_allocations,
)
from billbridge.domain.plans import OPEN_PLAN
from billbridge.domain.saved_methods import StoredMethod, save_consent_text, saved_method_id
from billbridge.domain.sync import utcnow
from billbridge.services.payments import (
    MAX_REPLANS,
    allot,
    currency_of,
    link_bills,
    link_of_token,
)
from billbridge.services.plans import PART_EVENT_TARGETS, record_intent_payment
from billbridge.services.ports import (
    BillRepository,
    ChargeResult,
    OffSessionCharge,
    PaymentGateway,
    PaymentLinkRepository,
    PaymentStore,
    PlanStore,
    SavedAttempt,
    SavedMethodGateway,
    SettingsRepository,
    StaleTransaction,
)

log = logging.getLogger(__name__)

# How long a payment on a saved method holds its bills while Stripe answers: the client waits
# for that answer, so a request that died leaves the bill blocked on other links briefly only.
SAVED_HOLD = timedelta(minutes=15)
Clock = Callable[[], datetime]


def saved_hold_link(link: PaymentLink) -> str:
    """The `link_id` the holds of a saved-method payment carry: never the link's own id, so a
    checkout on the link never tries to expire it as one of its own sessions."""
    return f"saved:{link.id}"


def saved_attempt_id(link: PaymentLink, attempt: str) -> str:
    """The client's attempt (link, Idempotency-Key) as our id: never the key itself."""
    return hashlib.sha256(f"{link.firm_id}|{link.id}|{attempt}".encode()).hexdigest()[:24]


def saved_txn_id(link: PaymentLink, attempt: str, account: Account) -> str:
    """One payment per (link, client's attempt, account): a retried request (same
    Idempotency-Key) finds it and answers it again instead of charging twice."""
    return f"pay_sv{saved_attempt_id(link, attempt)}_{account.value}"


def same_method(a: StoredMethod, b: StoredMethod) -> bool:
    """The same card or bank account as the client sees it (kind, brand or bank, last four)
    on the same Customer: Stripe makes a new PaymentMethod each time details are entered."""
    return (
        a.customer_id == b.customer_id
        and a.method.method is b.method.method
        and a.method.label == b.method.label
    )


# How a recorded payment is answered again to a retried request.
REPLAYED = {
    TxnStatus.SUCCEEDED: "succeeded",
    TxnStatus.PENDING: "processing",
    TxnStatus.FAILED: "failed",
}


@dataclass(frozen=True)
class SavedPart:
    account: Account
    txn_id: str
    amount_cents: int
    bill_ids: tuple[int, ...]
    status: str  # succeeded | processing | failed
    failure_code: str | None = None


@dataclass(frozen=True)
class SavedPayment:
    method: StoredMethod
    currency: str
    parts: tuple[SavedPart, ...]

    @property
    def needs_checkout(self) -> SavedPart | None:
        """A card part whose bank asked for the client's confirmation: paid on Stripe's page."""
        return next((p for p in self.parts if p.failure_code == "authentication_required"), None)

    @property
    def message(self) -> str:
        label = self.method.method.label
        sentences = []
        for part in self.parts:
            amount = money(part.amount_cents, self.currency)
            if part.status == "succeeded":
                sentences.append(
                    f"Paid {amount} with {label}. A receipt is on its way to your email."
                )
            elif part.status == "processing":
                sentences.append(
                    f"Your bank payment of {amount} from {label} is processing: bank payments "
                    "take a few business days to clear. We emailed you that it started."
                )
            elif part.failure_code == "authentication_required":
                sentences.append(
                    f"Your card's bank wants you to confirm the payment of {amount}: nothing was "
                    "charged yet. Continue on Stripe's secure page to confirm it."
                )
            else:
                sentences.append(
                    f"The payment of {amount} with {label} was declined: nothing was charged. "
                    "Please pay with another card or bank account."
                )
        return " ".join(sentences)


class SavedMethods:
    def __init__(
        self,
        plans: PlanStore,
        links: PaymentLinkRepository,
        bills: BillRepository,
        store: PaymentStore,
        gateway: Callable[[], PaymentGateway],
        saved: Callable[[], SavedMethodGateway],
        settings: SettingsRepository,
        clock: Clock = utcnow,
    ) -> None:
        self._plans = plans
        self._links = links
        self._bills = bills
        self._store = store
        self._gateway = gateway
        self._saved = saved
        self._settings = settings
        self._clock = clock

    # -- whose methods --------------------------------------------------------------------------

    def _link(self, token: str) -> PaymentLink:
        return link_of_token(self._links, token)

    def client_of(self, link: PaymentLink) -> Client | None:
        """The link's client (its bills share one; None if they do not, then nothing is
        saved or offered)."""
        clients = {b.bill.client.id: b.bill.client for b in link_bills(self._bills, link)}
        return next(iter(clients.values())) if len(clients) == 1 else None

    def methods(self, link: PaymentLink) -> list[StoredMethod]:
        """The live methods of this link's client, of this firm only."""
        client = self.client_of(link)
        if client is None:
            return []
        return [m for m in self._plans.saved_methods(link.firm_id, client.id) if m.live]

    def for_token(self, token: str) -> tuple[PaymentLink, list[StoredMethod], str]:
        link = self._link(token)
        return link, self.methods(link), self._settings.get(link.firm_id).firm_name

    def _method(self, link: PaymentLink, method_id: str) -> StoredMethod:
        found = next((m for m in self.methods(link) if m.id == method_id), None)
        if found is None:
            raise NotFound(
                "This saved card or bank account is not available on this payment link.",
                field="method_id",
            )
        return found

    def customer_for(self, firm_id: str, client: Client) -> str:
        """The client's Stripe Customer on the platform (made once: the same idempotency key
        and store record as payment plans use). Every charge is a destination charge made on
        the platform, so one Customer serves the trust and the operating account."""
        found = self._plans.customer(firm_id, client.id)
        if found is not None:
            return found
        made = self._saved().create_customer(
            client.email or "",
            client.name,
            {"firm_id": firm_id, "client_id": str(client.id)},
            key=f"customer-{firm_id}-{client.id}",
        )
        return self._plans.save_customer(firm_id, client.id, made)

    # -- keeping what Checkout saved ------------------------------------------------------------

    def keep_from_session(self, session: dict[str, Any]) -> str | None:
        """`checkout.session.completed` of a session made to save the method: keep the
        PaymentMethod Stripe attached, for that client of that firm, once (a repeat, or one
        arriving after the client forgot it, changes nothing). None: not such a session."""
        metadata = session.get("metadata") or {}
        if metadata.get("save_method") != "1" or session.get("mode") == "setup":
            return None
        firm_id, client_raw = metadata.get("firm_id"), metadata.get("client_id")
        intent_id = session.get("payment_intent")
        if not firm_id or not str(client_raw or "").isdigit() or not intent_id:
            return "ignored"
        client_id = int(str(client_raw))
        ours = self._plans.customer(str(firm_id), client_id)
        result = self._saved().retrieve_intent_method(str(intent_id))
        if result.method is None or result.customer_id is None or result.customer_id != ours:
            log.warning("session %s saved no method of our customer", session.get("id"))
            return "ignored"
        firm_name = self._settings.get(str(firm_id)).firm_name
        kept = StoredMethod(
            id=saved_method_id(str(firm_id), client_id, result.method.payment_method_id),
            firm_id=str(firm_id),
            client_id=client_id,
            customer_id=result.customer_id,
            method=result.method,
            saved_at=self._clock(),
            consent_text=save_consent_text(firm_name, result.method.method),
        )
        twin = next(
            (
                m
                for m in self._plans.saved_methods(str(firm_id), client_id)
                if m.id != kept.id and m.live and same_method(m, kept)
            ),
            None,
        )
        if twin is not None:
            # The same card (or bank account) entered again on the checkout's other page (a
            # checkout of trust and operating bills has one page each): one is kept, so that
            # "Forget" on the pay page forgets it for good, and Stripe holds no spare.
            self._saved().detach_payment_method(result.method.payment_method_id)
            return "duplicate"
        return "applied" if self._plans.save_method(kept) else "duplicate"

    # -- paying with one --------------------------------------------------------------------------

    def pay(
        self,
        token: str,
        method_id: str,
        bill_ids: Sequence[int],
        amount_cents: int | None,
        attempt: str,
    ) -> SavedPayment:
        """Pay the chosen bills with a saved method: the same allocation, trust/operating
        split, holds and ledger as a checkout, one off-session PaymentIntent per account. The
        same `attempt` (the page's Idempotency-Key) answers the first result again: the
        requests are kept, exactly as sent to Stripe, before Stripe is called, so a retry
        after a request that died sends them again unchanged (Stripe answers the first
        charge) whatever the bills have become since."""
        link = self._link(token)
        stored_method = self._method(link, method_id)
        refuse_off_link(link, bill_ids)
        attempt_id = saved_attempt_id(link, attempt)
        kept = self._plans.saved_attempt(link.firm_id, attempt_id)
        if kept is None:
            # An attempt older than its kept requests (TTL): its payments are in the ledger.
            replay = self._replay(link, stored_method, attempt)
            if replay is not None:
                return replay
            try:
                fresh = self._new_attempt(link, stored_method, bill_ids, amount_cents, attempt)
            except RuleViolation:
                # The same attempt, running at the same moment, may have paid the bills: then
                # this one answers what that one sent, not "nothing to pay".
                kept = self._plans.saved_attempt(link.firm_id, attempt_id)
                if kept is None:
                    raise
            else:
                kept = self._plans.begin_saved_attempt(fresh)
        if kept.saved_method_id != stored_method.id:
            raise RuleViolation(
                "This payment was already made with another saved card or bank account: "
                "reload the page to see it.",
                field="Idempotency-Key",
                code="idempotency_key_reused",
            )
        return self._send(link, stored_method, kept)

    def _new_attempt(
        self,
        link: PaymentLink,
        stored_method: StoredMethod,
        bill_ids: Sequence[int],
        amount_cents: int | None,
        attempt: str,
    ) -> SavedAttempt:
        """Allocate and hold the bills (as a checkout does), and the requests to send."""
        chosen_ids = list(dict.fromkeys(bill_ids))
        connected = self._store.connected_accounts(link.firm_id)
        accounts = self._store.payment_accounts(link.firm_id)
        gateway = self._gateway()
        for _ in range(MAX_REPLANS):
            now = self._clock()
            # This link's own open checkout (another tab) is closed, as a new checkout does.
            # This attempt's own holds (its request died before it kept its requests) are
            # not another payment's: they are written again below.
            own = {saved_txn_id(link, attempt, a) for a in Account}
            allotted = allot(
                self._bills,
                self._store,
                gateway,
                link,
                chosen_ids,
                amount_cents,
                connected,
                now,
                own=own,
            )
            stored, chosen, parts = allotted.stored, allotted.chosen, allotted.parts
            if accounts is None:
                raise RuleViolation(
                    "Online payments are not set up for this firm yet.",
                    code="payments_not_set_up",
                )
            held_until = now + SAVED_HOLD
            change = CheckoutHolds(
                firm_id=link.firm_id,
                guards=guards_of(chosen),
                holds=tuple(
                    Hold(
                        a.bill_id,
                        saved_hold_link(link),
                        saved_txn_id(link, attempt, account),
                        a.amount_cents,
                        held_until,
                    )
                    for account, allocations in parts.items()
                    for a in allocations
                ),
                released=tuple(allotted.closed),
            )
            try:
                self._store.hold_checkout(change, now)
            except StaleTransaction:
                continue  # a checkout or a payment moved a bill: read again
            currency = currency_of(chosen)
            charges = []
            for account, allocations in parts.items():
                txn_id = saved_txn_id(link, attempt, account)
                amount = sum(a.amount_cents for a in allocations)
                numbers = ", ".join(stored[a.bill_id].bill.number for a in allocations)
                charges.append(
                    OffSessionCharge(
                        customer_id=stored_method.customer_id,
                        payment_method_id=stored_method.method.payment_method_id,
                        method=stored_method.method.method,
                        amount_cents=amount,
                        currency=currency,
                        destination_account_id=accounts.for_account(account),
                        metadata={
                            "firm_id": link.firm_id,
                            "link_id": link.id,
                            "txn_id": txn_id,
                            "account": account.value,
                            "method": stored_method.method.method.value,
                            "allocations": encode_allocations(allocations),
                            "currency": currency,
                            "saved_method_id": stored_method.id,
                            "client_id": str(stored_method.client_id),
                        },
                        description=f"Payment of {numbers} ({account.value})",
                        idempotency_key=f"saved-{txn_id}",
                        receipt_email=stored[allocations[0].bill_id].bill.client.email,
                        application_fee_cents=application_fee_cents(
                            account, stored_method.method.method, amount
                        ),
                    )
                )
            return SavedAttempt(
                firm_id=link.firm_id,
                attempt_id=saved_attempt_id(link, attempt),
                saved_method_id=stored_method.id,
                charges=tuple(charges),
                held_until=held_until,
            )
        raise Contended(
            "The bills changed while this payment was being prepared, so nothing was charged. "
            "Please try again."
        )

    def _send(
        self, link: PaymentLink, stored_method: StoredMethod, kept: SavedAttempt
    ) -> SavedPayment:
        """Each kept request: answered from the ledger when its payment is recorded, else
        sent to Stripe as it was kept (the same key and parameters: Stripe charges once)."""
        answered = []
        currency = kept.charges[0].currency
        for charge in kept.charges:
            metadata = charge.metadata
            account = Account(metadata["account"])
            bill_ids = tuple(a.bill_id for a in decode_allocations(metadata["allocations"]))
            recorded = self._store.get_transaction(link.firm_id, link.id, metadata["txn_id"])
            if recorded is not None:
                answered.append(
                    SavedPart(
                        account,
                        recorded.id,
                        recorded.amount_cents,
                        bill_ids,
                        REPLAYED[recorded.status],
                        recorded.failure_reason,
                    )
                )
                continue
            if self._clock() >= kept.held_until:
                # No hold keeps the bills any more: sent now, it might take money that is no
                # longer owed. What Stripe did take is recorded from its webhook.
                raise RuleViolation(
                    f"This payment of {money(charge.amount_cents, currency)} was started more "
                    "than 15 minutes ago and Stripe has not confirmed it: reload the page to "
                    "see what was paid before paying again.",
                    field="Idempotency-Key",
                    code="payment_attempt_expired",
                )
            try:
                result = self._saved().charge_off_session(charge)
            except PaymentProviderError as exc:
                if not exc.definitive:
                    raise  # Stripe may have charged: its webhook records it; the hold keeps it
                # Stripe made nothing: the hold ends with a failure.
                result = ChargeResult("failed", None, "refused")
            target = {
                "succeeded": TxnStatus.SUCCEEDED,
                "processing": TxnStatus.PENDING,
            }.get(result.status, TxnStatus.FAILED)
            record_intent_payment(
                self._store,
                self._clock(),
                metadata,
                target,
                result.payment_intent_id,
                None,
                failure_code=result.failure_code if target is TxnStatus.FAILED else None,
            )
            answered.append(
                SavedPart(
                    account,
                    metadata["txn_id"],
                    charge.amount_cents,
                    bill_ids,
                    result.status if result.status in ("succeeded", "processing") else "failed",
                    result.failure_code,
                )
            )
        return SavedPayment(stored_method, currency, tuple(answered))

    def _replay(
        self, link: PaymentLink, stored_method: StoredMethod, attempt: str
    ) -> SavedPayment | None:
        found = [
            t
            for t in (
                self._store.get_transaction(
                    link.firm_id, link.id, saved_txn_id(link, attempt, account)
                )
                for account in (Account.TRUST, Account.OPERATING)
            )
            if t is not None
        ]
        if not found:
            return None
        return SavedPayment(
            stored_method,
            found[0].currency,
            tuple(
                SavedPart(
                    t.account,
                    t.id,
                    t.amount_cents,
                    tuple(a.bill_id for a in t.allocations),
                    REPLAYED[t.status],
                    t.failure_reason,
                )
                for t in found
            ),
        )

    # -- forgetting one -------------------------------------------------------------------------

    def forget(self, token: str, method_id: str) -> StoredMethod:
        """Detach it in Stripe, then forget it here (a tombstone: a late webhook never brings
        it back), with any twin of it (the same card saved twice: on the trust and the
        operating page of one checkout, when both pages were kept at once). A method an open
        payment plan of the client charges, on this link or any other of theirs, is kept
        (422): the client forgets it after giving the plan another."""
        link = self._link(token)
        stored_method = self._method(link, method_id)
        twins = [m for m in self.methods(link) if same_method(m, stored_method)]
        charged = {m.method.payment_method_id for m in twins}
        for plan in self._plans.for_client(link.firm_id, stored_method.client_id):
            if (
                plan.status in OPEN_PLAN
                and plan.method is not None
                and plan.method.payment_method_id in charged
            ):
                where = (
                    "save another card or bank account for the plan first"
                    if plan.link_id == link.id
                    else "open that plan's payment link, from its email, to save another card "
                    "or bank account for the plan first"
                )
                raise RuleViolation(
                    f"The {stored_method.method.label} pays the installments of your payment "
                    f"plan ({plan.id}): {where}.",
                    field="method_id",
                    code="method_in_plan",
                )
        for twin in twins:
            self._saved().detach_payment_method(twin.method.payment_method_id)
            self._plans.forget_method(link.firm_id, twin.client_id, twin.id, self._clock())
        return stored_method

    # -- what Stripe says about a payment on a saved method -------------------------------------

    def handle_event(self, event_id: str, kind: str, obj: dict[str, Any]) -> str | None:
        """`payment_intent.*` of a payment on a saved method (metadata `saved_method_id`): into
        the ledger as any payment, in any order, once. None for any other event."""
        metadata = obj.get("metadata") or {}
        target = PART_EVENT_TARGETS.get(kind)
        if target is None or not metadata.get("saved_method_id") or metadata.get("plan_id"):
            return None
        keys = ("firm_id", "link_id", "txn_id", "account", "allocations")
        if not all(metadata.get(k) for k in keys):
            return "ignored"
        error = obj.get("last_payment_error") or {}
        return record_intent_payment(
            self._store,
            self._clock(),
            {str(k): str(v) for k, v in metadata.items()},
            target,
            str(obj.get("id") or "") or None,
            event_id,
            # Kept on the payment: a retried request answers the same (a card that needs
            # the client's confirmation is offered Stripe's page again).
            failure_code=str(error.get("code") or "failed") if target is TxnStatus.FAILED else None,
        )
