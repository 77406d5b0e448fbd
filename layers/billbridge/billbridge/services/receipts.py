"""Receipts by email (X5): after any Stripe event about a payment or refund (and after a refund
made from the firm's screen), the client is emailed what the transaction's current state calls
for (domain/receipts.py), at most once per transaction and kind.

Exactly once, in practice: the receipt is claimed with a conditional write before SES is asked,
so duplicate, late or concurrent deliveries find the claim and send nothing. When SES throttles
(it took nothing) the claim is released and the error goes up, so the webhook answers 503 and
Stripe's retry sends it. When SES does not answer the claim stays (`uncertain`): SES may have
the email, and a second copy would be worse than none (the confirmation screen and the pay page
still show the payment).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from billbridge.domain.email_headers import address_problem, header_safe, sendable_address
from billbridge.domain.errors import EmailNotSent, SesThrottled, TransientSendError
from billbridge.domain.payment_links import PaymentLink
from billbridge.domain.receipts import ReceiptKind, facts_of, receipt_due, receipt_email
from billbridge.services.ports import (
    BillRepository,
    Mailer,
    PaymentLinkRepository,
    PaymentStore,
    ReceiptLog,
    SettingsRepository,
)

log = logging.getLogger(__name__)

Touched = tuple[str, str, str]  # (firm_id, link_id, txn_id)


class Receipts:
    def __init__(
        self,
        *,
        store: PaymentStore,
        bills: BillRepository,
        links: PaymentLinkRepository,
        settings: SettingsRepository,
        log_: ReceiptLog,
        mailer: Callable[[], Mailer],
        link_url: Callable[[PaymentLink], str] | None,
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._bills = bills
        self._links = links
        self._settings = settings
        self._log = log_
        self._mailer = mailer
        self._link_url = link_url
        self._clock = clock

    def send_for(self, touched: tuple[Touched, ...]) -> list[ReceiptKind]:
        """Each transaction's due receipt; what was sent now. SesThrottled leaves (after the
        claims that SES did not take are released) so the caller can ask for a retry."""
        sent = []
        for firm_id, link_id, txn_id in dict.fromkeys(touched):
            kind = self.send_due(firm_id, link_id, txn_id)
            if kind is not None:
                sent.append(kind)
        return sent

    def send_due(self, firm_id: str, link_id: str, txn_id: str) -> ReceiptKind | None:
        txn = self._store.get_transaction(firm_id, link_id, txn_id)
        if txn is None:
            return None
        kind = receipt_due(txn)
        if kind is None:
            return None
        # Claimed before anything else is read: a duplicate delivery costs one read and one
        # refused conditional write.
        if not self._log.claim(firm_id, txn.id, kind.value, self._clock()):
            return None  # sent (or being sent) by an earlier delivery
        stored = self._bills.get_many(firm_id, [a.bill_id for a in txn.allocations])
        clients = [s.bill.client for s in stored.values()]
        to = next((c.email for c in clients if c.email), None)
        problem = address_problem(to) if to else "the bill has no client email address in Clio"
        if to is None or problem is not None:
            self._log.finish(firm_id, txn.id, kind.value, "not_sent", f"no address: {problem}")
            log.warning("receipt not sent: %s", problem, extra={"txn_id": txn.id})
            return None
        settings = self._settings.get(firm_id)
        reply_to = str(settings.reply_to) if settings.reply_to else None
        if reply_to is not None and address_problem(reply_to) is not None:
            reply_to = None
        link = self._links.get(firm_id, link_id) if kind is ReceiptKind.PAYMENT_FAILED else None
        email = receipt_email(
            kind,
            facts_of(txn, {i: s.bill for i, s in stored.items()}),
            firm_name=settings.firm_name,
            client_name=clients[0].name if clients else "client",
            reply_to=reply_to,
            pay_url=self._link_url(link) if link is not None and self._link_url else None,
        )
        try:
            message_id = self._mailer().send(
                to=[sendable_address(to)],
                subject=email.subject,
                text=email.text,
                html=email.html,
                reply_to=reply_to,
                sender_name=header_safe(settings.sender_name or settings.firm_name) or None,
                attachments=[],
                tags={
                    "firm_id": firm_id,
                    "receipt": kind.value,
                    "txn_kind": txn.kind.value,
                },
            )
        except SesThrottled:
            self._log.release(firm_id, txn.id, kind.value)
            raise
        except EmailNotSent as exc:
            self._log.finish(firm_id, txn.id, kind.value, "not_sent", exc.message[:300])
            log.warning("receipt refused by SES", extra={"txn_id": txn.id})
            return None
        except TransientSendError as exc:
            self._log.finish(firm_id, txn.id, kind.value, "uncertain", exc.message[:300])
            log.warning("receipt may not have been sent", extra={"txn_id": txn.id})
            return None
        self._log.finish(firm_id, txn.id, kind.value, "sent", message_id)
        return kind
