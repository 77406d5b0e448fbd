"""Bills as this product knows them: a Clio bill's fields in our words, and how a Clio record maps.

Clio calls an operating invoice `revenue_kind` and a trust request `trust_kind`; every other
`kind` Clio has (summary, aggregate_*) is billed like an invoice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from billbridge.domain.email_headers import address_problem, header_safe
from billbridge.domain.errors import InvalidInput, RuleViolation
from billbridge.domain.money import cents_from_major, format_money

if TYPE_CHECKING:
    from billbridge.domain.payments import BillMoney


class BillState(StrEnum):
    DRAFT = "draft"
    AWAITING_APPROVAL = "awaiting_approval"
    AWAITING_PAYMENT = "awaiting_payment"
    PAID = "paid"
    VOID = "void"
    DELETED = "deleted"


class BillKind(StrEnum):
    INVOICE = "invoice"
    TRUST_REQUEST = "trust_request"

    @property
    def label(self) -> str:
        """The kind in the words a client reads (pay page, checkout line items)."""
        return "Trust request" if self is BillKind.TRUST_REQUEST else "Invoice"


DEFAULT_STATES: tuple[BillState, ...] = (BillState.AWAITING_PAYMENT, BillState.PAID)


def parse_states(raw: str | list[str] | tuple[str, ...]) -> tuple[BillState, ...]:
    """A comma-separated list (or a list) of Clio bill states, deduplicated, in a stable order."""
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    names = [s.strip() for s in items if s.strip()]
    if not names:
        raise InvalidInput("Choose at least one bill state.", field="states")
    states: list[BillState] = []
    for name in names:
        try:
            state = BillState(name)
        except ValueError:
            allowed = ", ".join(s.value for s in BillState)
            raise InvalidInput(
                f"Unknown bill state {name!r}. Allowed: {allowed}.", field="states"
            ) from None
        if state not in states:
            states.append(state)
    return tuple(sorted(states, key=list(BillState).index))


@dataclass(frozen=True)
class Client:
    id: int
    name: str
    email: str | None
    # The two-letter state (or province) of the client's primary address in Clio, if any.
    state: str | None = None


@dataclass(frozen=True)
class Matter:
    id: int
    display_number: str
    description: str | None


@dataclass(frozen=True)
class Bill:
    """The Clio-owned part of a bill, as synced. Our own fields (Paid (GL), payment link, last
    sent) live beside it in the store and are never written by a sync."""

    id: int
    etag: str
    number: str
    state: BillState
    kind: BillKind
    client: Client
    matter: Matter | None
    total_cents: int
    outstanding_clio_cents: int
    currency: str
    issued_at: date | None
    due_at: date | None
    clio_updated_at: datetime
    clio_url: str
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


def kind_from_clio(clio_kind: str | None) -> BillKind:
    return BillKind.TRUST_REQUEST if clio_kind == "trust_kind" else BillKind.INVOICE


def _date(value: Any) -> date | None:
    if not value:
        return None
    return date.fromisoformat(str(value)[:10])


def _timestamp(value: Any) -> datetime:
    text = str(value)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    return datetime.fromisoformat(text)


def bill_url(clio_web_host: str, bill_id: int) -> str:
    """Clio's UI address of a bill (not documented by Clio; the pattern public integrations use)."""
    return f"{clio_web_host.rstrip('/')}/nc/#/bills/{bill_id}"


def client_state(addresses: Any) -> str | None:
    """The state of the client's primary address (else the first): Clio's `province`, kept
    only when it is a two-letter code."""
    if not isinstance(addresses, list):
        return None
    found = [a for a in addresses if isinstance(a, dict)]
    found.sort(key=lambda a: not a.get("primary"))
    for address in found:
        province = str(address.get("province") or "").strip().upper()
        if len(province) == 2 and province.isalpha() and province.isascii():
            return province
    return None


def bill_from_clio(record: dict[str, Any], clio_web_host: str) -> Bill:
    """Map one Clio API v4 bill record (asked with the client's BILL_FIELDS) to a Bill."""
    client = record.get("client") or {}
    matters = record.get("matters") or []
    matter = matters[0] if matters else None
    currency = record.get("currency") or {}
    bill_id = int(record["id"])
    return Bill(
        id=bill_id,
        etag=str(record.get("etag") or ""),
        number=str(record.get("number") or bill_id),
        state=BillState(record["state"]),
        kind=kind_from_clio(record.get("kind")),
        client=Client(
            id=int(client.get("id") or 0),
            name=str(client.get("name") or ""),
            email=client.get("primary_email_address") or None,
            state=client_state(record.get("client_addresses")),
        ),
        matter=(
            Matter(
                id=int(matter["id"]),
                display_number=str(matter.get("display_number") or ""),
                description=matter.get("description"),
            )
            if matter
            else None
        ),
        total_cents=cents_from_major(record.get("total")),
        outstanding_clio_cents=cents_from_major(record.get("balance")),
        currency=str(currency.get("code") or "USD"),
        issued_at=_date(record.get("issued_at")),
        due_at=_date(record.get("due_at")),
        clio_updated_at=_timestamp(record["updated_at"]),
        clio_url=bill_url(clio_web_host, bill_id),
    )


# Product-owned numbers on a bill item, absent meaning 0 (read by the store in one loop).
MONEY_COUNTERS = (
    "disputed_cents",
    "money_version",
    "inquiries_open",
    "chargebacks_open",
    "chargebacks_lost",
)


def unsendable_reason(bill: Bill) -> RuleViolation | None:
    """Why Clio's side of a bill keeps it out of an envelope, or None: Clio says it is awaiting
    payment with a balance, and the client has an address. (What our own payments leave
    payable is `StoredBill.unsendable`, which starts here.)"""
    if bill.state is not BillState.AWAITING_PAYMENT:
        from billbridge.domain.payments import not_payable_reason

        return RuleViolation(
            f"{bill.number} cannot be sent: {not_payable_reason(bill.state)} in Clio, so "
            "nothing is payable on it.",
            field="bill_ids",
            code="bill_not_outstanding",
        )
    if bill.outstanding_clio_cents <= 0:
        return RuleViolation(
            f"{bill.number} cannot be sent: it has no balance in Clio, so nothing is payable "
            "on it.",
            field="bill_ids",
            code="bill_not_outstanding",
        )
    if not bill.client.email:
        return RuleViolation(
            f"{bill.number} cannot be sent: the client {bill.client.name!r} has no email "
            "address in Clio.",
            field="bill_ids",
            code="client_without_email",
        )
    problem = address_problem(bill.client.email)
    if problem is not None:
        # It would be the email's To header: correct it in Clio, then sync.
        return RuleViolation(
            f"{bill.number} cannot be sent: the client {header_safe(bill.client.name)!r} has an "
            f"email address in Clio that cannot be sent to ({problem}). Correct it in Clio.",
            field="bill_ids",
            code="client_email_invalid",
        )
    return None


def is_sendable(bill: Bill) -> bool:
    """Staff could send this bill now as far as Clio says (its PDF is worth having ready:
    docs/sending.md)."""
    return unsendable_reason(bill) is None


@dataclass(frozen=True)
class StoredBill:
    """A bill as the store holds it: Clio's part plus the fields this product owns."""

    bill: Bill
    paid_gl_cents: int = 0
    payment_link_id: str | None = None
    last_sent_at: datetime | None = None
    synced_at: datetime | None = None
    # The rest of the money this product keeps per bill (see domain/payments.py).
    pending_cents: int = 0
    refunded_cents: int = 0
    baseline_outstanding_cents: int | None = None
    flags: tuple[str, ...] = ()  # stored flags of older versions ("disputed"); read only
    disputed_cents: int = 0
    # Bumped by every write that changes what the bill may still collect (payments, checkout
    # holds): a checkout is written only if it is unchanged since the checkout read it.
    money_version: int = 0
    # Payments on the bill with an open inquiry, an open chargeback, a lost chargeback.
    inquiries_open: int = 0
    chargebacks_open: int = 0
    chargebacks_lost: int = 0
    # The Clio etag of the bill version whose PDF is cached (docs/data-model.md, "Bill PDFs").
    pdf_etag: str | None = None
    # Reminders (domain/reminders.py): when the bill was first sent (they count from it), the
    # clerk's pause, and the highest reminder slot claimed so far (it only grows).
    first_sent_at: datetime | None = None
    reminders_paused: bool = False
    reminder_slot: int = 0
    # The last claimed reminder until a tick sees it leave `draft` (batch id, envelope id,
    # claimed at): a tick that died between the claim and starting its send is finished by a
    # later tick, so a claimed slot is never lost.
    pending_reminder: tuple[str, str, datetime] | None = None

    @property
    def money(self) -> BillMoney:
        from billbridge.domain.payments import BillMoney

        return BillMoney(
            outstanding_clio_cents=self.bill.outstanding_clio_cents,
            paid_gl_cents=self.paid_gl_cents,
            pending_cents=self.pending_cents,
            refunded_cents=self.refunded_cents,
            baseline_outstanding_cents=self.baseline_outstanding_cents,
            state=self.bill.state,
            disputed_cents=self.disputed_cents,
        )

    @property
    def payable_cents(self) -> int:
        """What a client is asked for now: the one payability rule (domain/payments.py,
        `BillMoney.payable_cents`): Outstanding (Clio) minus our payments Clio does not show
        yet, and nothing on a bill whose state is not payable."""
        return self.money.payable_cents

    def unsendable(self) -> RuleViolation | None:
        """Why this bill cannot be selected and sent to the client now, in a sentence, or None.
        Clio's side first (state, balance, address), then ours: nothing is payable because our
        payments already cover what Clio shows (Paid (GL) not yet in Clio), or because a bank
        payment is still settling."""
        problem = unsendable_reason(self.bill)
        if problem is not None or self.payable_cents > 0:
            return problem
        bill, currency = self.bill, self.bill.currency
        if self.pending_cents > 0:
            return RuleViolation(
                f"{bill.number} cannot be sent: a bank payment of "
                f"{format_money(self.pending_cents, currency)} is still settling, so nothing is "
                "payable until it settles or fails.",
                field="bill_ids",
                code="payment_pending",
            )
        return RuleViolation(
            f"{bill.number} cannot be sent: it is already paid through BillBridge "
            f"({format_money(self.paid_gl_cents, currency)} in Paid (GL)), which Clio does not "
            "show yet, so nothing is payable on it.",
            field="bill_ids",
            code="nothing_payable",
        )

    def all_flags(self) -> tuple[str, ...]:
        """What staff should look at: disputes (inquiry, disputed: an open chargeback,
        chargeback_lost) and what the money implies (Clio not yet told, overpaid, money on a
        bill that is no longer payable)."""
        disputes = [
            name
            for name, count in (
                ("inquiry", self.inquiries_open),
                ("disputed", self.chargebacks_open),
                ("chargeback_lost", self.chargebacks_lost),
            )
            if count > 0
        ]
        return tuple(sorted(set(self.flags) | set(disputes) | set(self.money.flags())))
