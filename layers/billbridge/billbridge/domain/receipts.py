"""Receipts (X5): which email a transaction's state calls for, the client-facing reference of a
payment, and the receipt's words. Pure rules, no I/O.

A receipt is decided by a transaction's *current* state, never by the event that moved it:
events repeat and arrive out of order, so "what does this transaction owe the client now?" is
the only question every delivery answers alike. Each (transaction, kind) is sent at most once
(services/receipts.py claims it with a conditional write first).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from html import escape

from billbridge.domain.bills import Bill
from billbridge.domain.email_headers import header_safe
from billbridge.domain.envelopes import money
from billbridge.domain.payments import Account, Method, Transaction, TxnKind, TxnStatus


class ReceiptKind(StrEnum):
    PAYMENT_SUCCEEDED = "payment_succeeded"
    PAYMENT_PROCESSING = "payment_processing"  # an ACH payment began; it settles in days
    PAYMENT_FAILED = "payment_failed"  # an ACH payment the bank returned: payable again
    REFUND_SUCCEEDED = "refund_succeeded"


METHOD_LABEL = {Method.CARD: "Card", Method.ACH: "Bank account (ACH)"}
ACCOUNT_LABEL = {Account.TRUST: "Trust account", Account.OPERATING: "Operating account"}


def receipt_due(txn: Transaction) -> ReceiptKind | None:
    """The email the transaction's current state owes the client, if any. A payment that
    settles before its 'processing' was seen gets only the 'succeeded' receipt: telling the
    client afterwards that it is processing would be wrong."""
    if txn.kind is TxnKind.REFUND:
        return ReceiptKind.REFUND_SUCCEEDED if txn.status is TxnStatus.SUCCEEDED else None
    if txn.status is TxnStatus.SUCCEEDED:
        return ReceiptKind.PAYMENT_SUCCEEDED
    if txn.status is TxnStatus.PENDING and txn.method is Method.ACH:
        return ReceiptKind.PAYMENT_PROCESSING
    if txn.status is TxnStatus.FAILED and txn.method is Method.ACH:
        return ReceiptKind.PAYMENT_FAILED
    return None


_REFERENCE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud on a call


def reference(txn_id: str) -> str:
    """A short reference the client can quote to the firm ("BB-7KQ2-M9XD"): derived from the
    transaction id, so the confirmation screen, the receipt and the clerk's screens agree."""
    digest = int.from_bytes(hashlib.sha256(txn_id.encode("utf-8")).digest()[:8], "big")
    chars = []
    for _ in range(8):
        digest, index = divmod(digest, len(_REFERENCE_ALPHABET))
        chars.append(_REFERENCE_ALPHABET[index])
    return f"BB-{''.join(chars[:4])}-{''.join(chars[4:])}"


def long_date(moment: datetime) -> str:
    """'December 2, 2026' (UTC): emails cannot know the reader's locale."""
    return f"{moment:%B} {moment.day}, {moment.year}"


@dataclass(frozen=True)
class ReceiptLine:
    bill_id: int
    bill_number: str
    kind: str  # invoice / trust_request (bill: one the store no longer has)
    kind_label: str  # "Invoice" / "Trust request"
    amount_cents: int


@dataclass(frozen=True)
class ReceiptFacts:
    """What a receipt or a confirmation says about one transaction."""

    transaction_id: str
    kind: TxnKind
    status: TxnStatus
    method: Method
    account: Account
    amount_cents: int
    currency: str
    at: datetime
    reference: str
    lines: tuple[ReceiptLine, ...]
    # A card surcharge charged beside the bills (domain/surcharge.py): in what the client
    # paid, never in what pays the bills.
    surcharge_cents: int = 0

    @property
    def amount(self) -> str:
        return money(self.amount_cents, self.currency)

    @property
    def charged(self) -> str:
        """What the client was charged: the bills' amount and any surcharge."""
        return money(self.amount_cents + self.surcharge_cents, self.currency)

    @property
    def bill_numbers(self) -> str:
        return ", ".join(line.bill_number for line in self.lines)


def facts_of(txn: Transaction, bills: Mapping[int, Bill]) -> ReceiptFacts:
    """The receipt's facts; a bill the store no longer has is named by its Clio id."""
    lines = []
    for a in txn.allocations:
        bill = bills.get(a.bill_id)
        lines.append(
            ReceiptLine(
                bill_id=a.bill_id,
                bill_number=bill.number if bill else str(a.bill_id),
                kind=bill.kind.value if bill else "bill",
                kind_label=bill.kind.label if bill else "Bill",
                amount_cents=a.amount_cents,
            )
        )
    return ReceiptFacts(
        transaction_id=txn.id,
        kind=txn.kind,
        status=txn.status,
        method=txn.method,
        account=txn.account,
        amount_cents=txn.amount_cents,
        currency=txn.currency,
        at=txn.created_at,
        reference=reference(txn.id),
        lines=tuple(lines),
        # A payment's surcharge, or a refund's share of it given back with the bills' money.
        surcharge_cents=txn.surcharge_cents,
    )


@dataclass(frozen=True)
class ReceiptEmail:
    subject: str
    text: str
    html: str


_HEADLINES = {
    ReceiptKind.PAYMENT_SUCCEEDED: (
        "Receipt: your payment of {amount} to {firm}",
        "Thank you: your payment of {amount} was received.",
    ),
    ReceiptKind.PAYMENT_PROCESSING: (
        "Your bank payment of {amount} to {firm} is processing",
        "Your bank payment of {amount} has started. Bank payments "
        "take a few business days to clear; we will email you "
        "when it has.",
    ),
    ReceiptKind.PAYMENT_FAILED: (
        "Your bank payment of {amount} to {firm} did not go through",
        "Your bank payment of {amount} did not go through: your bank "
        "returned it. Nothing was taken, and the bills below can be "
        "paid again from the same payment link.",
    ),
    ReceiptKind.REFUND_SUCCEEDED: (
        "Refund of {amount} from {firm}",
        "{firm} refunded {amount} to you. A card refund takes 5 to "
        "10 business days to appear on your statement; a bank "
        "refund a few business days.",
    ),
}


def receipt_email(
    kind: ReceiptKind,
    facts: ReceiptFacts,
    *,
    firm_name: str,
    client_name: str,
    reply_to: str | None,
    pay_url: str | None,
) -> ReceiptEmail:
    """The receipt's subject, text and HTML. Every value that reaches the subject is made one
    line (settings saved before the header check existed may hold a line break); the HTML
    escapes everything it did not write itself."""
    subject_t, lead_t = _HEADLINES[kind]
    firm = header_safe(firm_name).strip() or "your law firm"
    subject = header_safe(subject_t.format(amount=facts.charged, firm=firm))
    lead = lead_t.format(amount=facts.charged, firm=firm)
    date_label = "Refund date" if kind is ReceiptKind.REFUND_SUCCEEDED else "Payment date"
    rows: list[tuple[str, str]] = [
        ("Amount", facts.charged),
        *(
            [
                (
                    "Card surcharge"
                    if facts.kind is TxnKind.PAYMENT
                    else "Card surcharge refunded",
                    f"{money(facts.surcharge_cents, facts.currency)} (included)",
                )
            ]
            if facts.surcharge_cents
            else []
        ),
        (date_label, long_date(facts.at)),
        ("Method", METHOD_LABEL[facts.method]),
        (
            "Paid into" if facts.kind is TxnKind.PAYMENT else "Refunded from",
            f"{firm}'s {ACCOUNT_LABEL[facts.account].lower()}",
        ),
        ("Reference", facts.reference),
    ]
    bill_lines = [
        f"{line.kind_label} {line.bill_number}: {money(line.amount_cents, facts.currency)}"
        for line in facts.lines
    ]
    contact = (
        f"Questions? Reply to this email or write to {reply_to}."
        if reply_to
        else ("Questions? Reply to this email.")
    )
    again = f"\nPay again: {pay_url}\n" if kind is ReceiptKind.PAYMENT_FAILED and pay_url else ""
    text = (
        f"Dear {client_name},\n\n{lead}\n\n"
        + "".join(f"{label}: {value}\n" for label, value in rows)
        + "\nBills:\n"
        + "".join(f"- {line}\n" for line in bill_lines)
        + again
        + f"\n{contact}\n\n{firm}\n"
    )
    html = (
        f"<p>Dear {escape(client_name)},</p><p>{escape(lead)}</p>"
        '<table role="presentation">'
        + "".join(
            f'<tr><th align="left">{escape(label)}</th><td>{escape(value)}</td></tr>'
            for label, value in rows
        )
        + "</table><p>Bills:</p><ul>"
        + "".join(f"<li>{escape(line)}</li>" for line in bill_lines)
        + "</ul>"
        + (
            f'<p><a href="{escape(pay_url)}">Pay again</a></p>'
            if kind is ReceiptKind.PAYMENT_FAILED and pay_url
            else ""
        )
        + f"<p>{escape(contact)}</p><p>{escape(firm)}</p>"
    )
    return ReceiptEmail(subject=subject, text=text, html=html)


def receipt_bills(txns: Sequence[Transaction]) -> list[int]:
    """Every bill the transactions touch, once, in order."""
    return list(dict.fromkeys(a.bill_id for t in txns for a in t.allocations))
