"""Payment use cases: the client's pay page and checkout (P2, P3), recording Stripe events
(P4, P5, X4), a payment link's transactions and refunds (P6, P7), and reconciliation (X2)."""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from billbridge.domain.bills import StoredBill
from billbridge.domain.errors import NotFound, PaymentProviderError, RuleViolation
from billbridge.domain.ledger import (
    PaymentChange,
    dispute_change,
    dispute_closed_change,
    payment_change,
    refund_change,
    refund_request_change,
)
from billbridge.domain.payment_links import PaymentLink, token_hash
from billbridge.domain.payments import (
    Account,
    Method,
    PayableBill,
    Transaction,
    TxnKind,
    TxnStatus,
    allocate,
    decode_allocations,
    payment_id_for_session,
    plan_refund,
    split_by_account,
)
from billbridge.services.ports import (
    BillRepository,
    CheckoutRequest,
    CheckoutSession,
    DuplicateEvent,
    PaymentGateway,
    PaymentLinkRepository,
    PaymentStore,
    SettingsRepository,
    StaleTransaction,
)

log = logging.getLogger(__name__)

# How often a write that lost a race is re-planned from a fresh read before giving up.
MAX_REPLANS = 8

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class LinkView:
    link: PaymentLink
    firm_name: str
    bills: list[StoredBill]  # in the link's order
    currency: str

    @property
    def total_payable_cents(self) -> int:
        return sum(b.payable_cents for b in self.bills)


class PayPage:
    """The client's side (no firm login): the link's bills and what is payable, and checkout."""

    def __init__(
        self,
        links: PaymentLinkRepository,
        bills: BillRepository,
        store: PaymentStore,
        gateway: Callable[[], PaymentGateway],
        pay_base_url: str,
        settings: SettingsRepository,
        clock: Clock = _utcnow,
    ) -> None:
        self._clock = clock
        self._links = links
        self._bills = bills
        self._store = store
        self._settings = settings
        self._gateway = gateway
        self._pay_base_url = pay_base_url.rstrip("/")

    def view(self, token: str) -> LinkView:
        found = self._links.by_token_hash(token_hash(token)) if token else None
        if found is None:
            raise NotFound("this payment link does not exist or has expired")
        firm_id, link_id = found
        link = self._links.get(firm_id, link_id)
        if link is None:
            raise NotFound("this payment link does not exist or has expired")
        bills = link_bills(self._bills, link)
        return LinkView(
            link=link,
            firm_name=self._settings.get(firm_id).firm_name,
            bills=bills,
            currency=currency_of(bills),
        )

    def checkout(
        self,
        token: str,
        bill_ids: list[int],
        amount_cents: int | None,
        method: Method,
        attempt: str | None = None,
    ) -> list[tuple[Account, CheckoutSession]]:
        """Checkout Sessions for the chosen bills: one per account (P3). `attempt` names the
        client's try (the page sends one per submit) so a repeated submit makes no new charge."""
        view = self.view(token)
        link = view.link
        by_id = {b.bill.id: b for b in view.bills}
        unknown = [i for i in bill_ids if i not in by_id]
        if unknown:
            raise RuleViolation(
                f"bill {unknown[0]} is not on this payment link",
                field="bill_ids",
                code="bill_not_on_link",
            )
        chosen = [by_id[i] for i in dict.fromkeys(bill_ids)]
        payable = [
            PayableBill(
                bill_id=b.bill.id,
                number=b.bill.number,
                kind=b.bill.kind,
                due_at=b.bill.due_at,
                issued_at=b.bill.issued_at,
                payable_cents=b.payable_cents,
                currency=b.bill.currency,
            )
            for b in chosen
        ]
        parts = split_by_account(allocate(payable, amount_cents))
        accounts = self._store.payment_accounts(link.firm_id)
        if accounts is None:
            raise RuleViolation(
                "this firm cannot take online payments yet", code="payments_not_set_up"
            )
        attempt = attempt or secrets.token_urlsafe(12)
        gateway = self._gateway()
        # One checkout at a time per link: sessions left open by an earlier try (another tab,
        # the back button) are closed first, so the same bills cannot be paid twice over.
        now = self._clock()
        earlier = self._store.open_checkouts(link.firm_id, link.id, now)
        for session_id in earlier:
            gateway.expire_checkout_session(session_id)
        sessions = []
        for account, allocations in parts.items():
            request = CheckoutRequest(
                firm_id=link.firm_id,
                link_id=link.id,
                account=account,
                destination_account_id=accounts.for_account(account),
                method=method,
                currency=view.currency,
                allocations=allocations,
                line_items=tuple(
                    (
                        f"{by_id[a.bill_id].bill.kind.label} {by_id[a.bill_id].bill.number}",
                        a.amount_cents,
                    )
                    for a in allocations
                ),
                success_url=f"{self._pay_base_url}/pay/{token}?paid={{CHECKOUT_SESSION_ID}}",
                cancel_url=f"{self._pay_base_url}/pay/{token}",
                customer_email=chosen[0].bill.client.email,
                idempotency_key=_checkout_key(link, account, allocations, method, attempt),
            )
            sessions.append((account, gateway.create_checkout_session(request)))
        opened = [s.id for _, s in sessions]
        self._store.replace_open_checkouts(
            link.firm_id, link.id, [i for i in earlier if i not in opened], opened, now
        )
        return sessions


def link_bills(bills: BillRepository, link: PaymentLink) -> list[StoredBill]:
    """The link's bills the store holds, in the link's order."""
    stored = bills.get_many(link.firm_id, link.bill_ids)
    return [stored[i] for i in link.bill_ids if i in stored]


def currency_of(bills: list[StoredBill]) -> str:
    """A link's currency (its bills share one: checkout refuses to mix them)."""
    return bills[0].bill.currency if bills else "USD"


def _checkout_key(
    link: PaymentLink, account: Account, allocations: Any, method: Method, attempt: str
) -> str:
    fingerprint = f"{link.firm_id}|{link.id}|{account.value}|{method.value}|{allocations}|{attempt}"
    return "checkout-" + hashlib.sha256(fingerprint.encode()).hexdigest()[:40]


# --- Stripe events -----------------------------------------------------------------------------

SESSION_TARGETS = {
    "checkout.session.async_payment_succeeded": TxnStatus.SUCCEEDED,
    "checkout.session.async_payment_failed": TxnStatus.FAILED,
}
REFUND_STATUSES = {
    "pending": TxnStatus.PENDING,
    "requires_action": TxnStatus.PENDING,
    "succeeded": TxnStatus.SUCCEEDED,
    "failed": TxnStatus.FAILED,
    "canceled": TxnStatus.FAILED,
}


@dataclass(frozen=True)
class EventOutcome:
    event_id: str
    type: str
    outcome: str  # applied | duplicate | stale | ignored


class StripeEvents:
    """Records verified Stripe events, each once, whatever their order (P4)."""

    def __init__(self, store: PaymentStore, clock: Clock = _utcnow) -> None:
        self._store = store
        self._clock = clock

    def handle(self, event: dict[str, Any]) -> EventOutcome:
        event_id, kind = str(event["id"]), str(event["type"])
        obj = (event.get("data") or {}).get("object") or {}
        if kind.startswith("checkout.session.") and kind != "checkout.session.expired":
            plan = self._session_plan(obj, kind, event_id)
        elif kind in ("refund.created", "refund.updated", "refund.failed"):
            plan = self._refund_plan(obj, event_id)
        elif kind in ("charge.dispute.created", "charge.dispute.closed"):
            plan = self._dispute_plan(obj, event_id, closed=kind == "charge.dispute.closed")
        else:
            return EventOutcome(event_id, kind, "ignored")
        if plan is None:
            return EventOutcome(event_id, kind, "ignored")
        return EventOutcome(event_id, kind, self._apply(plan, event_id))

    def _apply(self, plan: Callable[[], tuple[str, PaymentChange | None]], event_id: str) -> str:
        for _ in range(MAX_REPLANS):
            firm_id, change = plan()
            try:
                if change is None:
                    return (
                        "stale"
                        if self._store.record_event(firm_id, event_id, self._clock())
                        else "duplicate"
                    )
                self._store.apply(change, self._clock())
                return "applied"
            except DuplicateEvent:
                return "duplicate"
            except StaleTransaction:
                continue  # another writer moved the transaction: read it again
        raise RuntimeError(f"event {event_id} kept losing races; Stripe will deliver it again")

    def _session_plan(
        self, session: dict[str, Any], kind: str, event_id: str
    ) -> Callable[[], tuple[str, PaymentChange | None]] | None:
        metadata = session.get("metadata") or {}
        if not metadata.get("firm_id") or not metadata.get("allocations"):
            log.warning("checkout session %s is not one of ours", session.get("id"))
            return None
        if kind == "checkout.session.completed":
            target = (
                TxnStatus.SUCCEEDED
                if session.get("payment_status") == "paid"
                else TxnStatus.PENDING
            )
        elif kind in SESSION_TARGETS:
            target = SESSION_TARGETS[kind]
        else:
            return None
        firm_id, link_id = str(metadata["firm_id"]), str(metadata["link_id"])
        allocations = decode_allocations(str(metadata["allocations"]))
        now = self._clock()
        proposed = Transaction(
            id=payment_id_for_session(str(session["id"])),
            firm_id=firm_id,
            link_id=link_id,
            kind=TxnKind.PAYMENT,
            method=Method(metadata.get("method") or "card"),
            account=Account(metadata["account"]),
            status=target,
            amount_cents=sum(a.amount_cents for a in allocations),
            currency=str(session.get("currency") or "usd").upper(),
            allocations=allocations,
            created_at=now,
            updated_at=now,
            checkout_session_id=str(session["id"]),
            payment_intent_id=session.get("payment_intent"),
        )

        def plan() -> tuple[str, PaymentChange | None]:
            existing = self._store.get_transaction(firm_id, link_id, proposed.id)
            return firm_id, payment_change(existing, proposed, target, self._clock(), event_id)

        return plan

    def _refund_plan(
        self, refund: dict[str, Any], event_id: str
    ) -> Callable[[], tuple[str, PaymentChange | None]] | None:
        metadata = refund.get("metadata") or {}
        keys = ("firm_id", "link_id", "refund_id", "transaction_id")
        if not all(metadata.get(k) for k in keys):
            log.warning("refund %s was not made through BillBridge", refund.get("id"))
            return None
        firm_id, link_id = str(metadata["firm_id"]), str(metadata["link_id"])
        target = REFUND_STATUSES.get(str(refund.get("status")))
        if target is None:
            return None

        def plan() -> tuple[str, PaymentChange | None]:
            ours = self._store.get_transaction(firm_id, link_id, str(metadata["refund_id"]))
            payment = self._store.get_transaction(firm_id, link_id, str(metadata["transaction_id"]))
            if ours is None or payment is None:
                return firm_id, None
            change = refund_change(
                ours,
                payment,
                target,
                self._clock(),
                event_id,
                failure_reason=refund.get("failure_reason"),
                stripe_refund_id=refund.get("id"),
            )
            return firm_id, change

        return plan

    def _dispute_plan(
        self, dispute: dict[str, Any], event_id: str, closed: bool = False
    ) -> Callable[[], tuple[str, PaymentChange | None]] | None:
        payment_intent = dispute.get("payment_intent")
        found = self._store.payment_for_intent(str(payment_intent)) if payment_intent else None
        if found is None:
            log.warning("dispute %s is on a payment we do not know", dispute.get("id"))
            return None
        firm_id, link_id, txn_id = found

        def plan() -> tuple[str, PaymentChange | None]:
            payment = self._store.get_transaction(firm_id, link_id, txn_id)
            if payment is None:
                return firm_id, None
            if closed:
                status, amount = str(dispute.get("status")), int(dispute.get("amount") or 0)
                return firm_id, dispute_closed_change(
                    payment, status, amount, self._clock(), event_id
                )
            return firm_id, dispute_change(payment, self._clock(), event_id)

        return plan


# --- staff: transactions and refunds ------------------------------------------------------------


@dataclass(frozen=True)
class LinkTransactions:
    link: PaymentLink
    bills: list[StoredBill]
    transactions: list[Transaction]


class PaymentLinks:
    def __init__(
        self,
        links: PaymentLinkRepository,
        bills: BillRepository,
        store: PaymentStore,
        gateway: Callable[[], PaymentGateway],
        link_url: Callable[[PaymentLink], str],
        clock: Clock = _utcnow,
    ) -> None:
        self._links = links
        self._bills = bills
        self._store = store
        self._gateway = gateway
        self._clock = clock
        self.link_url = link_url

    def get(self, firm_id: str, link_id: str) -> LinkTransactions:
        link = self._links.get(firm_id, link_id)
        if link is None:
            raise NotFound(f"payment link {link_id} not found", field="link_id")
        return LinkTransactions(
            link=link,
            bills=link_bills(self._bills, link),
            transactions=self._store.transactions_for_link(firm_id, link_id),
        )

    def refund(
        self, firm_id: str, link_id: str, txn_id: str, amount_cents: int | None
    ) -> Transaction:
        """Refund all or part of a payment (P7). The refund is claimed on the payment first (so
        two refunds can never together exceed it), then asked of Stripe with the refund's id as
        idempotency key; Paid (GL) falls when Stripe says it succeeded."""
        refund = None
        payment = None
        for _ in range(MAX_REPLANS):
            payment = self._store.get_transaction(firm_id, link_id, txn_id)
            if payment is None or payment.kind is not TxnKind.PAYMENT:
                raise NotFound(f"payment {txn_id} not found on this link", field="txn_id")
            allocations = plan_refund(payment, amount_cents)
            if not payment.payment_intent_id:
                raise RuleViolation(
                    "this payment has no Stripe charge to refund", code="payment_not_settled"
                )
            now = self._clock()
            refund = Transaction(
                id=f"rf_{secrets.token_urlsafe(12)}",
                firm_id=firm_id,
                link_id=link_id,
                kind=TxnKind.REFUND,
                method=payment.method,
                account=payment.account,
                status=TxnStatus.PENDING,
                amount_cents=sum(a.amount_cents for a in allocations),
                currency=payment.currency,
                allocations=allocations,
                created_at=now,
                updated_at=now,
                version=1,
                payment_id=payment.id,
                payment_intent_id=payment.payment_intent_id,
            )
            try:
                self._store.apply(refund_request_change(payment, refund, now))
                break
            except StaleTransaction:
                continue
        else:
            raise RuntimeError("the payment kept changing; try the refund again")
        assert refund is not None and payment is not None and payment.payment_intent_id
        try:
            result = self._gateway().create_refund(
                payment.payment_intent_id,
                refund.amount_cents,
                metadata={
                    "firm_id": firm_id,
                    "link_id": link_id,
                    "refund_id": refund.id,
                    "transaction_id": payment.id,
                },
                idempotency_key=refund.id,
            )
        except PaymentProviderError as exc:
            if exc.definitive:
                # Stripe refused it: release the claim so the money can be refunded again.
                self._settle_refund(refund.id, firm_id, link_id, TxnStatus.FAILED, None, "refused")
            # Otherwise Stripe may have made it: the refund stays pending (its amount claimed)
            # until Stripe's refund event says how it ended.
            raise
        target = REFUND_STATUSES.get(result.status, TxnStatus.PENDING)
        return self._settle_refund(
            refund.id, firm_id, link_id, target, result.stripe_refund_id, None
        )

    def _settle_refund(
        self,
        refund_id: str,
        firm_id: str,
        link_id: str,
        target: TxnStatus,
        stripe_refund_id: str | None,
        failure_reason: str | None,
    ) -> Transaction:
        """Move our refund to what Stripe answered, unless a webhook already did."""
        for _ in range(MAX_REPLANS):
            refund = self._store.get_transaction(firm_id, link_id, refund_id)
            assert refund is not None and refund.payment_id
            payment = self._store.get_transaction(firm_id, link_id, refund.payment_id)
            assert payment is not None
            if target is TxnStatus.PENDING:
                change = None
            else:
                change = refund_change(
                    refund,
                    payment,
                    target,
                    self._clock(),
                    None,
                    failure_reason=failure_reason,
                    stripe_refund_id=stripe_refund_id,
                )
            if change is None:
                return refund
            try:
                self._store.apply(change)
            except StaleTransaction:
                continue
            return change.txns[0].txn
        raise RuntimeError("the refund kept changing")


# --- reconciliation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReconciliationLine:
    bill: StoredBill
    to_record_cents: int  # positive: record a payment in Clio; negative: record a refund


class Reconciliation:
    """X2: bills whose Paid (GL) or refunds Clio does not show yet (Clio's API cannot record a
    payment, so staff record these; the line disappears once a sync sees Clio caught up)."""

    def __init__(self, store: PaymentStore, bills: BillRepository) -> None:
        self._store = store
        self._bills = bills

    def report(self, firm_id: str) -> list[ReconciliationLine]:
        ids = self._store.reconciliation_bill_ids(firm_id)
        stored = self._bills.get_many(firm_id, ids)
        lines = []
        for bill_id in sorted(stored):
            owed = stored[bill_id].money.to_record_in_clio_cents
            if owed:
                lines.append(ReconciliationLine(stored[bill_id], owed))
        return lines
