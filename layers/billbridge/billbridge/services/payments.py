"""Payment use cases: the client's pay page and checkout (P2, P3), recording Stripe events
(P4, P5, X4), and a payment link's transactions and refunds (P6, P7). Reconciliation (X2) is
in services/reconciliation.py."""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from billbridge.domain import disputes
from billbridge.domain.bills import Bill, BillState, Client, StoredBill
from billbridge.domain.envelopes import money as money_text
from billbridge.domain.errors import (
    Contended,
    DomainError,
    NotFound,
    PaymentProviderError,
    RuleViolation,
)
from billbridge.domain.fees import application_fee_cents
from billbridge.domain.ledger import (
    CheckoutHolds,
    DisputeReport,
    PaymentChange,
    checkout_expired_change,
    dispute_change,
    guards_of,
    payment_change,
    refund_change,
    refund_request_change,
)
from billbridge.domain.payment_accounts import ConnectedAccount, needs_ready
from billbridge.domain.payment_links import PaymentLink, refuse_off_link, token_hash
from billbridge.domain.payments import (
    Account,
    Allocation,
    Hold,
    Method,
    PayableBill,
    Transaction,
    TxnKind,
    TxnStatus,
    allocate,
    decode_allocations,
    held_cents,
    not_payable_reason,
    payment_id_for_session,
    payment_of_metadata,
    plan_refund,
    split_by_account,
)
from billbridge.domain.receipts import ReceiptFacts, facts_of
from billbridge.domain.settings import FirmSettings
from billbridge.domain.surcharge import card_surcharge, refund_share, surcharge_items
from billbridge.domain.sync import utcnow
from billbridge.services.bill_pdfs import BillPdfs
from billbridge.services.payment_accounts import PaymentAccountsService
from billbridge.services.ports import (
    BillRepository,
    CheckoutRequest,
    CheckoutSession,
    ClioGateway,
    DuplicateEvent,
    PaymentGateway,
    PaymentLinkRepository,
    PaymentStore,
    RefundResult,
    SettingsRepository,
    StaleTransaction,
)

log = logging.getLogger(__name__)

# How often a write that lost a race is re-planned from a fresh read before giving up.
MAX_REPLANS = 8
# How long a client has to pay a Checkout Session (Stripe allows 30 minutes to 24 hours). Short,
# because an open session holds its bills against checkouts from the bills' other links.
CHECKOUT_SESSION_LIFETIME = timedelta(hours=1)
# A hold outlives its session a little: a payment made at the last minute still has its
# webhook on the way.
HOLD_GRACE = timedelta(minutes=10)

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class LinkBill:
    """One bill of a pay link as the client sees it."""

    stored: StoredBill
    payable_cents: int  # what may be paid now: the bill's state, its balance, other checkouts
    note: str | None  # why nothing (or not all) can be paid, in a sentence
    # payable (something can be paid now), processing (an ACH payment of ours is on its way
    # and nothing else can be paid), paid (nothing is left), unavailable (void, deleted, not
    # issued, or held by another link's open checkout).
    status: str = "payable"

    def past_due(self, today: date) -> bool:
        """Payable, and its due date has passed."""
        due = self.stored.bill.due_at
        return self.status == "payable" and due is not None and due < today

    @property
    def processing_cents(self) -> int:
        """ACH money of ours on its way to the bill (not Paid (GL) yet, not payable again)."""
        return self.stored.money.pending_cents

    @property
    def bill(self) -> Bill:
        return self.stored.bill


@dataclass(frozen=True)
class FirmContact:
    """Who the client is paying, and how to reach them (the firm's settings)."""

    name: str
    contact_name: str | None  # the sender name, when the firm set one
    reply_to: str | None


@dataclass(frozen=True)
class LinkView:
    link: PaymentLink
    firm_name: str
    bills: list[LinkBill]  # in the link's order
    currency: str
    firm: FirmContact | None = None
    transactions: tuple[Transaction, ...] = ()  # the link's payments and refunds, oldest first

    @property
    def total_payable_cents(self) -> int:
        return sum(b.payable_cents for b in self.bills)


@dataclass(frozen=True)
class Confirmation:
    """What the client sees on returning from Stripe Checkout.

    `state`: succeeded (a card payment, or a bank payment that settled), processing (a bank
    payment begun), failed (the bank returned it), not_paid (the session was not paid: the
    client came back without paying)."""

    state: str
    facts: ReceiptFacts | None  # None when not paid
    firm: FirmContact
    link_id: str


def _firm_contact(settings: FirmSettings) -> FirmContact:
    return FirmContact(
        name=settings.firm_name,
        contact_name=settings.sender_name,
        reply_to=str(settings.reply_to) if settings.reply_to else None,
    )


def _until(moment: datetime) -> str:
    return f"{moment:%H:%M} UTC"


def link_bill(stored: StoredBill, others: list[Hold]) -> LinkBill:
    """What the client may pay on a bill, given the holds of other links' open checkouts."""
    money = stored.money
    pending = money_text(money.pending_cents, stored.bill.currency)
    if not money.payable_state:
        if stored.bill.state is BillState.PAID:
            return LinkBill(stored, 0, "Paid: nothing is left to pay on this bill.", "paid")
        reason = not_payable_reason(stored.bill.state)
        return LinkBill(
            stored, 0, f"This bill can no longer be paid online: {reason}.", "unavailable"
        )
    if money.payable_cents <= 0:
        if money.pending_cents > 0:
            return LinkBill(
                stored,
                0,
                f"A bank payment of {pending} is processing. Bank payments take a few business "
                "days to clear; nothing more is due unless it fails.",
                "processing",
            )
        return LinkBill(stored, 0, "Paid: nothing is left to pay on this bill.", "paid")
    payable = max(0, money.payable_cents - held_cents(others, stored.bill.id))
    if payable <= 0:
        until = max(h.expires_at for h in others if h.bill_id == stored.bill.id)
        return LinkBill(
            stored,
            0,
            "This bill is being paid in another checkout; if that payment is not made, it can "
            f"be paid here again after {_until(until)}.",
            "unavailable",
        )
    note = (
        f"A bank payment of {pending} is processing; the amount due is what is left."
        if money.pending_cents > 0
        else None
    )
    return LinkBill(stored, payable, note)


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
        clock: Clock = utcnow,
        pdfs: BillPdfs | None = None,
        clio_for_firm: Callable[[str], ClioGateway] | None = None,
        customer_for: Callable[[str, Client], str] | None = None,
    ) -> None:
        # The client's Stripe Customer, found or made (services/saved_methods.py), for a
        # checkout that saves the method for later.
        self._customer_for = customer_for
        self._pdfs = pdfs
        self._clio_for_firm = clio_for_firm
        self._clock = clock
        self._links = links
        self._bills = bills
        self._store = store
        self._settings = settings
        self._gateway = gateway
        self._pay_base_url = pay_base_url.rstrip("/")

    def _link(self, token: str) -> PaymentLink:
        return link_of_token(self._links, token)

    def view(self, token: str) -> LinkView:
        link = self._link(token)
        bills = link_bills(self._bills, link)
        holds = self._store.holds(link.firm_id, list(link.bill_ids), self._clock())
        others = [h for h in holds if h.link_id != link.id]  # this link's own close on checkout
        settings = self._settings.get(link.firm_id)
        return LinkView(
            link=link,
            firm_name=settings.firm_name,
            bills=[link_bill(b, others) for b in bills],
            currency=currency_of(bills),
            firm=_firm_contact(settings),
            transactions=tuple(self._store.transactions_for_link(link.firm_id, link.id)),
        )

    def bill_pdf(self, token: str, bill_id: int) -> tuple[str, bytes]:
        """(file name, PDF) of one bill of the link: from the PDF cache when it holds the bill's
        current version, else from Clio (then cached). Only the link's own bills."""
        link = self._link(token)
        stored = self._bills.get(link.firm_id, bill_id) if bill_id in link.bill_ids else None
        if stored is None or self._pdfs is None or self._clio_for_firm is None:
            raise NotFound("This bill is not on this payment link.", field="bill_file")
        clio_for = self._clio_for_firm
        pdf = self._pdfs.pdf(link.firm_id, stored, lambda: clio_for(link.firm_id))
        return f"{pdf_file_name(stored.bill.number, bill_id)}.pdf", pdf

    def confirmation(self, token: str, session_id: str) -> Confirmation:
        """The payment the client just made, as we recorded it, or (when the client is back
        before Stripe's webhook) as Stripe holds the session. A session of another link is no
        payment of this one (404)."""
        link = self._link(token)
        firm = _firm_contact(self._settings.get(link.firm_id))
        txn = self._store.get_transaction(link.firm_id, link.id, payment_id_for_session(session_id))
        if txn is None:
            session = self._gateway().checkout_session(session_id)
            metadata = session.metadata if session else {}
            if (
                session is None
                or metadata.get("link_id") != link.id
                or metadata.get("firm_id") != link.firm_id
            ):
                raise NotFound("This payment is not on this payment link.", field="session_id")
            if session.status != "complete":
                return Confirmation("not_paid", None, firm, link.id)
            allocations = decode_allocations(metadata.get("allocations", ""))
            txn = Transaction(
                id=payment_id_for_session(session.id),
                firm_id=link.firm_id,
                link_id=link.id,
                kind=TxnKind.PAYMENT,
                method=Method(metadata.get("method") or "card"),
                account=Account(metadata.get("account") or "operating"),
                status=(
                    TxnStatus.SUCCEEDED if session.payment_status == "paid" else TxnStatus.PENDING
                ),
                amount_cents=sum(a.amount_cents for a in allocations),
                currency=session.currency,
                allocations=allocations,
                created_at=session.created_at,
                updated_at=session.created_at,
            )
        stored = self._bills.get_many(link.firm_id, [a.bill_id for a in txn.allocations])
        facts = facts_of(txn, {i: b.bill for i, b in stored.items()})
        state = {
            TxnStatus.SUCCEEDED: "succeeded",
            TxnStatus.PENDING: "processing",
            TxnStatus.FAILED: "failed",
        }[txn.status]
        return Confirmation(state, facts, firm, link.id)

    def checkout(
        self,
        token: str,
        bill_ids: list[int],
        amount_cents: int | None,
        method: Method,
        attempt: str | None = None,
        save_method: bool = False,
        mandate_accepted: bool = False,
    ) -> list[tuple[Account, CheckoutSession]]:
        """Checkout Sessions for the chosen bills: one per account (P3). Nothing is collected
        beyond what the bills may still pay across all their links: the sessions' amounts are
        held on the bills, conditional on the bills being unchanged since they were read, and
        a checkout counts every other live hold. This link's own earlier sessions on the same
        bills (another tab, the back button) are closed first."""
        link = self._link(token)
        refuse_off_link(link, bill_ids)
        chosen_ids = list(dict.fromkeys(bill_ids))
        customer = self._saving_customer(link, save_method, method, mandate_accepted)
        accounts = self._store.connected_accounts(link.firm_id)
        attempt = attempt or secrets.token_urlsafe(12)
        gateway = self._gateway()
        started = self._clock()
        session_expires = started + CHECKOUT_SESSION_LIFETIME
        opened: list[str] = []  # sessions this call made, kept or not
        try:
            for _ in range(MAX_REPLANS):
                now = self._clock()
                allotted = allot(
                    self._bills, self._store, gateway, link, chosen_ids, amount_cents, accounts, now
                )
                chosen, closed, parts = allotted.chosen, allotted.closed, allotted.parts
                closed_ids = sorted({h.session_id for h in closed})
                fingerprint = f"{attempt}|{session_expires.isoformat()}|{closed_ids}"
                if customer is not None:  # other parameters: never the same Stripe key
                    fingerprint += f"|save:{customer[0]}"
                sessions = [
                    (
                        account,
                        _opened(
                            gateway,
                            self._request(
                                link,
                                account,
                                allocations,
                                chosen,
                                str(accounts[account].stripe_account_id),
                                method,
                                token,
                                fingerprint,
                                session_expires,
                                customer,
                            ),
                        ),
                    )
                    for account, allocations in parts.items()
                ]
                opened.extend(s.id for _, s in sessions if s.id not in opened)
                holds_expire = session_expires + HOLD_GRACE
                change = CheckoutHolds(
                    firm_id=link.firm_id,
                    guards=guards_of(chosen),
                    holds=tuple(
                        Hold(a.bill_id, link.id, session.id, a.amount_cents, holds_expire)
                        for account, session in sessions
                        for a in parts[account]
                    ),
                    released=tuple(closed),
                )
                try:
                    self._store.hold_checkout(change, now)
                except StaleTransaction:
                    continue  # another checkout or a payment moved a bill: read again
                kept = {s.id for _, s in sessions}
                self._close(gateway, [i for i in opened if i not in kept])
                return sessions
            raise Contended(
                "The bills changed while this payment was being prepared, so nothing was charged. "
                "Please try again."
            )
        except (DomainError, RuntimeError):
            self._close(gateway, opened)  # none of them was given to the client
            raise

    @staticmethod
    def _close(gateway: PaymentGateway, session_ids: list[str]) -> None:
        for session_id in session_ids:
            gateway.expire_checkout_session(session_id)

    def _request(
        self,
        link: PaymentLink,
        account: Account,
        allocations: tuple[Allocation, ...],
        chosen: list[StoredBill],
        destination: str,
        method: Method,
        token: str,
        fingerprint: str,
        expires_at: datetime,
        customer: tuple[str, int] | None = None,
    ) -> CheckoutRequest:
        by_id = {b.bill.id: b.bill for b in chosen}
        surcharge = card_surcharge(
            self._settings.get(link.firm_id).surcharge,
            account,
            method,
            chosen[0].bill.client.state,
            sum(a.amount_cents for a in allocations),
        )
        return CheckoutRequest(
            firm_id=link.firm_id,
            link_id=link.id,
            account=account,
            destination_account_id=destination,
            method=method,
            currency=currency_of(chosen),
            allocations=allocations,
            line_items=tuple(
                (f"{by_id[a.bill_id].kind.label} {by_id[a.bill_id].number}", a.amount_cents)
                for a in allocations
            )
            + surcharge_items(surcharge, self._settings.get(link.firm_id).surcharge),
            success_url=(
                f"{self._pay_base_url}/pay/{token}/confirmation?session_id={{CHECKOUT_SESSION_ID}}"
            ),
            cancel_url=f"{self._pay_base_url}/pay/{token}",
            customer_email=chosen[0].bill.client.email,
            idempotency_key=_checkout_key(link, account, allocations, method, fingerprint),
            expires_at=expires_at,
            # Operating charges only; a trust charge carries none (domain/fees.py).
            application_fee_cents=application_fee_cents(
                account, method, sum(a.amount_cents for a in allocations)
            ),
            surcharge_cents=surcharge,
            save_method=customer is not None,
            customer_id=customer[0] if customer else None,
            client_id=customer[1] if customer else None,
        )

    def _saving_customer(
        self, link: PaymentLink, save_method: bool, method: Method, mandate_accepted: bool
    ) -> tuple[str, int] | None:
        """(the client's Stripe Customer, their Clio contact id) when the client asked to
        save the method: checked before anything is made. A bank account needs the debit
        authorization the page shows accepted (422 `mandate_not_accepted`)."""
        if not save_method:
            return None
        if method is Method.ACH and not mandate_accepted:
            raise RuleViolation(
                "To save the bank account for later payments, accept the debit authorization "
                "shown next to the pay button.",
                field="mandate_accepted",
                code="mandate_not_accepted",
            )
        clients = {b.bill.client for b in link_bills(self._bills, link)}
        if self._customer_for is None or len({c.id for c in clients}) != 1:
            raise RuleViolation(
                "This payment link cannot save a card or bank account: pay without saving it.",
                field="save_method",
                code="cannot_save_method",
            )
        client = next(iter(clients))
        return self._customer_for(link.firm_id, client), client.id


@dataclass(frozen=True)
class Allotment:
    """A payment of chosen bills as planned from one read of them and their holds."""

    stored: dict[int, StoredBill]
    chosen: list[StoredBill]  # the chosen bills the store holds, in the chosen order
    closed: list[Hold]  # the holds of this link's earlier checkouts, closed
    parts: dict[Account, tuple[Allocation, ...]]  # what is paid, split by account


def allot(
    bills: BillRepository,
    store: PaymentStore,
    gateway: PaymentGateway,
    link: PaymentLink,
    chosen_ids: list[int],
    amount_cents: int | None,
    accounts: Mapping[Account, ConnectedAccount],
    now: datetime,
    own: Collection[str] = (),
) -> Allotment:
    """Read the chosen bills and every live hold on them, close this link's own earlier
    checkouts on them (another tab, the back button), and allocate what the client pays (all
    of it when `amount_cents` is None) across what the bills may still pay beside the other
    holds, split by account. Refused when a bill can no longer be paid, when other payments
    hold all of it, or when an account cannot take charges yet. Holds whose session is in
    `own` are the caller's own (written again by it) and count for nothing."""
    stored = bills.get_many(link.firm_id, chosen_ids)
    chosen = [stored[i] for i in chosen_ids if i in stored]
    for bill in chosen:
        if not bill.money.payable_state:
            raise RuleViolation(
                f"Bill {bill.bill.number} can no longer be paid online: "
                f"{not_payable_reason(bill.bill.state)}.",
                field="bill_ids",
                code="bill_not_payable",
            )
    holds = store.holds(link.firm_id, chosen_ids, now)
    closed = _close_own(gateway, link, holds)
    counted = [h for h in holds if h not in closed and h.session_id not in own]
    payable = [payable_now(b, counted) for b in chosen]
    _refuse_if_held(chosen, payable, counted)
    parts = split_by_account(allocate(payable, amount_cents), currency_of(chosen))
    # Only into accounts Stripe lets take charges (domain/payment_accounts.py).
    needs_ready(accounts, set(parts))
    return Allotment(stored, chosen, closed, parts)


def _close_own(gateway: PaymentGateway, link: PaymentLink, holds: list[Hold]) -> list[Hold]:
    """Close this link's earlier sessions on these bills; the holds of those closed. A
    session that was completed keeps its hold (its payment is on its way)."""
    closed: list[Hold] = []
    for session_id in dict.fromkeys(h.session_id for h in holds if h.link_id == link.id):
        if gateway.expire_checkout_session(session_id):
            closed.extend(h for h in holds if h.session_id == session_id)
    return closed


def _opened(gateway: PaymentGateway, request: CheckoutRequest) -> CheckoutSession:
    """The session made for `request`, saying the surcharge it includes."""
    made = gateway.create_checkout_session(request)
    return replace(made, surcharge_cents=request.surcharge_cents)


def payable_now(stored: StoredBill, holds: Sequence[Hold]) -> PayableBill:
    """What a checkout or a plan installment may still collect on a bill: its payable amount
    (nothing when it is not awaiting payment) less every hold of other checkouts and
    installments on it, across all its links."""
    bill = stored.bill
    return PayableBill(
        bill_id=bill.id,
        number=bill.number,
        kind=bill.kind,
        due_at=bill.due_at,
        issued_at=bill.issued_at,
        payable_cents=max(0, stored.payable_cents - held_cents(holds, bill.id)),
        currency=bill.currency,
    )


def _refuse_if_held(
    chosen: list[StoredBill], payable: list[PayableBill], holds: list[Hold]
) -> None:
    """Every chosen bill is owed something, yet all of it is held by other checkouts."""
    held = [
        b
        for b, p in zip(chosen, payable, strict=True)
        if b.payable_cents > 0 and p.payable_cents == 0
    ]
    if held and all(p.payable_cents == 0 for p in payable):
        bill = held[0].bill
        until = max(h.expires_at for h in holds if h.bill_id == bill.id)
        raise RuleViolation(
            f"Bill {bill.number} is being paid in another checkout; if that payment is not "
            f"made, it can be paid again after {_until(until)}.",
            field="bill_ids",
            code="bill_being_paid",
        )


def pdf_file_name(number: str, bill_id: int) -> str:
    """A bill's PDF named by its number ("INV-00037"), in characters every file system takes."""
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in number).strip("-.")
    return safe[:80] or str(bill_id)


def link_of_token(links: PaymentLinkRepository, token: str) -> PaymentLink:
    """The link of the emailed token (the token is its only credential), else 404."""
    found = links.by_token_hash(token_hash(token)) if token else None
    link = links.get(*found) if found else None
    if link is None:
        raise NotFound("This payment link does not exist or has expired.")
    return link


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
DISPUTE_EVENTS = frozenset(
    {
        "charge.dispute.created",
        "charge.dispute.updated",
        "charge.dispute.closed",
        "charge.dispute.funds_withdrawn",
        "charge.dispute.funds_reinstated",
    }
)
REFUND_STATUSES = {
    "pending": TxnStatus.PENDING,
    "requires_action": TxnStatus.PENDING,
    "succeeded": TxnStatus.SUCCEEDED,
    "failed": TxnStatus.FAILED,
    "canceled": TxnStatus.FAILED,
}


class PlanEvents(Protocol):
    def handle_event(self, event_id: str, kind: str, obj: dict[str, Any]) -> str | None:
        """The outcome of an event about a plan or a saved method; None if it is not one."""
        ...


class SavedEvents(Protocol):
    def keep_from_session(self, session: dict[str, Any]) -> str | None:
        """Keep the method a completed checkout saved, once; None if it saved none."""
        ...

    def handle_event(self, event_id: str, kind: str, obj: dict[str, Any]) -> str | None:
        """The outcome of an event about a payment on a saved method; None if not one."""
        ...


def _touched_intent(obj: dict[str, Any]) -> tuple[tuple[str, str, str], ...]:
    metadata = obj.get("metadata") or {}
    if all(metadata.get(k) for k in ("firm_id", "link_id", "txn_id")):
        return ((str(metadata["firm_id"]), str(metadata["link_id"]), str(metadata["txn_id"])),)
    return ()


@dataclass(frozen=True)
class EventOutcome:
    event_id: str
    type: str
    outcome: str  # applied | duplicate | stale | ignored
    # The transactions the event is about, (firm_id, link_id, txn_id): whatever the outcome,
    # their receipts are checked (a duplicate may be Stripe retrying a receipt SES throttled).
    touched: tuple[tuple[str, str, str], ...] = ()


def _touched(kind: str, obj: dict[str, Any]) -> tuple[tuple[str, str, str], ...]:
    metadata = obj.get("metadata") or {}
    if kind.startswith("checkout.session.") and kind != "checkout.session.expired":
        if metadata.get("firm_id") and metadata.get("link_id") and obj.get("id"):
            txn_id = payment_id_for_session(str(obj["id"]))
            return ((str(metadata["firm_id"]), str(metadata["link_id"]), txn_id),)
    if kind.startswith("refund.") and all(
        metadata.get(k) for k in ("firm_id", "link_id", "refund_id")
    ):
        return ((str(metadata["firm_id"]), str(metadata["link_id"]), str(metadata["refund_id"])),)
    return ()


class StripeEvents:
    """Records verified Stripe events, each once, whatever their order (P4)."""

    def __init__(
        self,
        store: PaymentStore,
        clock: Clock = utcnow,
        accounts: PaymentAccountsService | None = None,
        plans: PlanEvents | None = None,
        saved: SavedEvents | None = None,
    ) -> None:
        self._saved = saved
        self._store = store
        self._clock = clock
        self._accounts = accounts
        self._plans = plans

    def handle(self, event: dict[str, Any]) -> EventOutcome:
        event_id, kind = str(event["id"]), str(event["type"])
        obj = (event.get("data") or {}).get("object") or {}
        if kind == "account.updated" and self._accounts is not None:
            # A Connect event: its own ordering rule (services/payment_accounts.py).
            return EventOutcome(event_id, kind, self._accounts.account_updated(event))
        if self._saved is not None:  # methods saved at checkout (services/saved_methods.py)
            if kind == "checkout.session.completed":
                # Kept first, on its own conditional write: then the payment, as any other.
                try:
                    self._saved.keep_from_session(obj)
                except PaymentProviderError as exc:
                    if not exc.definitive:
                        raise  # Stripe delivers the event again: the method, then the payment
                    # A refusal is the same on every delivery: saving the method is the
                    # client's convenience, the payment is money, and it is recorded anyway.
                    log.warning("session %s: its method was not kept: %s", obj.get("id"), exc)
            outcome = self._saved.handle_event(event_id, kind, obj)
            if outcome is not None:
                return EventOutcome(event_id, kind, outcome, _touched_intent(obj))
        if self._plans is not None:  # saved methods and plan installments (services/plans.py)
            outcome = self._plans.handle_event(event_id, kind, obj)
            if outcome is not None:
                return EventOutcome(event_id, kind, outcome)
        if kind == "checkout.session.expired":
            plan = self._expired_plan(obj, event_id)
        elif kind.startswith("checkout.session."):
            plan = self._session_plan(obj, kind, event_id)
        elif kind in ("refund.created", "refund.updated", "refund.failed"):
            plan = self._refund_plan(obj, event_id)
        elif kind in DISPUTE_EVENTS:
            plan = self._dispute_plan(obj, kind, event_id)
        else:
            return EventOutcome(event_id, kind, "ignored")
        if plan is None:
            return EventOutcome(event_id, kind, "ignored")
        return EventOutcome(event_id, kind, self._apply(plan, event_id), _touched(kind, obj))

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
        proposed = payment_of_metadata(
            payment_id_for_session(str(session["id"])),
            metadata,
            target,
            str(session.get("currency") or "usd").upper(),
            self._clock(),
            checkout_session_id=str(session["id"]),
            payment_intent_id=session.get("payment_intent"),
            surcharge_cents=int(metadata.get("surcharge_cents") or 0),
        )

        def plan() -> tuple[str, PaymentChange | None]:
            existing = self._store.get_transaction(firm_id, link_id, proposed.id)
            return firm_id, payment_change(existing, proposed, target, self._clock(), event_id)

        return plan

    def _expired_plan(
        self, session: dict[str, Any], event_id: str
    ) -> Callable[[], tuple[str, PaymentChange | None]] | None:
        """A session that expired will never be paid: its checkout holds end."""
        metadata = session.get("metadata") or {}
        if not metadata.get("firm_id") or not metadata.get("allocations"):
            return None
        firm_id = str(metadata["firm_id"])
        change = checkout_expired_change(
            firm_id,
            str(session["id"]),
            decode_allocations(str(metadata["allocations"])),
            event_id,
        )
        return lambda: (firm_id, change)

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
        self, dispute: dict[str, Any], kind: str, event_id: str
    ) -> Callable[[], tuple[str, PaymentChange | None]] | None:
        payment_intent = dispute.get("payment_intent")
        found = self._store.payment_for_intent(str(payment_intent)) if payment_intent else None
        if found is None:
            log.warning("dispute %s is on a payment we do not know", dispute.get("id"))
            return None
        firm_id, link_id, txn_id = found
        status = str(dispute.get("status") or "")
        balance = [
            int(t.get("amount") or 0)
            for t in dispute.get("balance_transactions") or []
            if isinstance(t, dict)
        ]
        report = DisputeReport(
            status=status,
            amount_cents=int(dispute.get("amount") or 0),
            funds=disputes.funds_reported(kind, status, balance),
        )

        def plan() -> tuple[str, PaymentChange | None]:
            payment = self._store.get_transaction(firm_id, link_id, txn_id)
            if payment is None:
                return firm_id, None
            return firm_id, dispute_change(payment, report, self._clock(), event_id)

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
        clock: Clock = utcnow,
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
            raise NotFound("This payment link does not exist.", field="link_id")
        return LinkTransactions(
            link=link,
            bills=link_bills(self._bills, link),
            transactions=self._store.transactions_for_link(firm_id, link_id),
        )

    def refund(
        self,
        firm_id: str,
        link_id: str,
        txn_id: str,
        amount_cents: int | None,
        *,
        by_user_id: str | None = None,
        by_email: str | None = None,
    ) -> Transaction:
        """Refund all or part of a payment (P7). The refund is claimed on the payment first (so
        two refunds can never together exceed it), then asked of Stripe with the refund's id as
        idempotency key; Paid (GL) falls when Stripe says it succeeded."""
        refund = None
        payment = None
        for _ in range(MAX_REPLANS):
            payment = self._store.get_transaction(firm_id, link_id, txn_id)
            if payment is None or payment.kind is not TxnKind.PAYMENT:
                raise NotFound("This payment is not on this payment link.", field="txn_id")
            allocations = plan_refund(payment, amount_cents)
            if not payment.payment_intent_id:
                raise RuleViolation(
                    "This payment has no charge to refund yet.", code="payment_not_settled"
                )
            now = self._clock()
            refund_cents = sum(a.amount_cents for a in allocations)
            refund = Transaction(
                id=f"rf_{secrets.token_urlsafe(12)}",
                firm_id=firm_id,
                link_id=link_id,
                kind=TxnKind.REFUND,
                method=payment.method,
                account=payment.account,
                status=TxnStatus.PENDING,
                amount_cents=refund_cents,
                currency=payment.currency,
                allocations=allocations,
                created_at=now,
                updated_at=now,
                version=1,
                payment_id=payment.id,
                # The surcharge goes back with the bills' money, in proportion (card rules).
                surcharge_cents=refund_share(
                    payment.surcharge_cents,
                    payment.amount_cents,
                    payment.claimed_cents + refund_cents,
                    payment.surcharge_claimed_cents,
                ),
                payment_intent_id=payment.payment_intent_id,
                requested_by_user_id=by_user_id,
                requested_by_email=by_email,
            )
            try:
                self._store.apply(refund_request_change(payment, refund, now))
                break
            except StaleTransaction:
                continue
        else:
            raise Contended(
                "The payment changed while this refund was being prepared, so nothing was "
                "refunded. Please try again."
            )
        assert refund is not None and payment is not None and payment.payment_intent_id
        try:
            result = self._gateway().create_refund(
                payment.payment_intent_id,
                # One Stripe refund of the charge: the bills' money and the surcharge's share.
                refund.amount_cents + refund.surcharge_cents,
                metadata={
                    "firm_id": firm_id,
                    "link_id": link_id,
                    "refund_id": refund.id,
                    "transaction_id": payment.id,
                    **(
                        {"surcharge_cents": str(refund.surcharge_cents)}
                        if refund.surcharge_cents
                        else {}
                    ),
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
        return self.record_refund_answer(firm_id, link_id, refund.id, result)

    def record_refund_answer(
        self, firm_id: str, link_id: str, refund_id: str, result: RefundResult
    ) -> Transaction:
        """Record what Stripe answered to our refund request, unless its webhooks said it (or
        something later) first: Stripe's answer and its refund events race, in any order."""
        target = REFUND_STATUSES.get(result.status, TxnStatus.PENDING)
        return self._settle_refund(
            refund_id, firm_id, link_id, target, result.stripe_refund_id, None
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
