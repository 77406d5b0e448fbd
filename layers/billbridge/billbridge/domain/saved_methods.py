"""A card or bank account the client saved on the pay page for later payments (issue 12).

A saved method belongs to one firm and one client (Clio contact id): it is offered only on
that client's pay links, and the pay page names it by our own id (`sm_…`), never by Stripe's.
Forgetting it leaves a tombstone, so a late or repeated `checkout.session.completed` never
brings it back."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from billbridge.domain.payments import Method
from billbridge.domain.plans import SavedMethod


@dataclass(frozen=True)
class StoredMethod:
    id: str  # ours: "sm_" + a digest of firm, client and PaymentMethod
    firm_id: str
    client_id: int
    customer_id: str
    method: SavedMethod
    saved_at: datetime
    consent_text: str | None = None  # what the client agreed to when saving it
    forgotten_at: datetime | None = None

    @property
    def live(self) -> bool:
        return self.forgotten_at is None

    @property
    def display(self) -> str:
        """ "Visa •••• 4242" (screen readers get the label, "Visa ending 4242")."""
        return short_label(self.method.label)


def saved_method_id(firm_id: str, client_id: int, payment_method_id: str) -> str:
    digest = hashlib.sha256(f"{firm_id}|{client_id}|{payment_method_id}".encode()).hexdigest()
    return f"sm_{digest[:24]}"


def short_label(label: str) -> str:
    """ "Visa ending 4242" -> "Visa •••• 4242"; "Bank account ending 6789" -> "Bank account
    •••• 6789"."""
    head, sep, last4 = label.rpartition(" ending ")
    return f"{head} \u2022\u2022\u2022\u2022 {last4}" if sep else label


def save_consent_text(firm_name: str, method: Method) -> str:
    """What the client agrees to by ticking "Save this card or bank account" next to the pay
    button. For a bank account it is the ACH debit authorization (Nacha wants the debits named,
    the right to correct an erroneous one and how to revoke it); for a card, Stripe asks that
    the client be told the card is kept for later payments and how to remove it."""
    if method is Method.ACH:
        return (
            f"By saving this bank account you authorize {firm_name} to debit it, through its "
            "payment processor Stripe, for this payment and for each later payment you choose "
            f"on your payment links from {firm_name} (a payment you confirm, or the installments "
            "of a payment plan you set up), and if necessary to credit it to correct an "
            "erroneous debit. This authorization lasts until you forget the account on your "
            f"payment page or tell {firm_name}, at least 3 business days before a debit."
        )
    return (
        f"By saving this card you allow {firm_name} to charge it, through its payment "
        "processor Stripe, for each later payment you choose on your payment links from "
        f"{firm_name} (a payment you confirm, or the installments of a payment plan you set "
        "up). It is never charged otherwise, and you can forget it on your payment page at any "
        "time."
    )
