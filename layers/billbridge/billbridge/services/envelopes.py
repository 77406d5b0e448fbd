"""Review and send, the drafting half (S1, S2): bills become draft envelopes, staff edit them
and look at the attached bill PDFs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from billbridge.domain.bills import StoredBill
from billbridge.domain.connection import ClioConnection
from billbridge.domain.email_headers import sendable_address
from billbridge.domain.envelopes import (
    Batch,
    Envelope,
    EnvelopeStatus,
    check_batch_size,
    check_editable,
    check_sendable,
    check_subject,
    draft_text,
    drafted_amounts,
    group_bills,
    new_batch_id,
    new_envelope_id,
)
from billbridge.domain.errors import NotConnected, NotFound
from billbridge.domain.sync import utcnow
from billbridge.services.bill_pdfs import BillPdfs
from billbridge.services.ports import (
    BillRepository,
    ClioGateway,
    ConnectionRepository,
    EnvelopeRepository,
    SettingsRepository,
)


class EnvelopeService:
    def __init__(
        self,
        *,
        bills: BillRepository,
        envelopes: EnvelopeRepository,
        settings: SettingsRepository,
        connections: ConnectionRepository,
        clio_for: Callable[[ClioConnection], ClioGateway],
        pdfs: BillPdfs,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._bills = bills
        self._envelopes = envelopes
        self._settings = settings
        self._connections = connections
        self._clio_for = clio_for
        self._pdfs = pdfs
        self._clock = clock

    def draft(self, firm_id: str, bill_ids: Sequence[int]) -> tuple[Batch, list[Envelope]]:
        """One batch of draft envelopes for the selected bills (S1)."""
        wanted = list(dict.fromkeys(int(i) for i in bill_ids))
        found = self._bills.get_many(firm_id, wanted)
        for bill_id in wanted:
            if bill_id not in found:
                # Another firm's bill, or none at all: not the caller's (api.md: a 404).
                raise NotFound(
                    f"Bill {bill_id} is not one of this firm's synced bills.",
                    field="bill_ids",
                    code="bill_not_found",
                )
            check_sendable(found[bill_id])
        settings = self._settings.get(firm_id)
        groups = group_bills([found[i] for i in wanted], settings.aggregate_payment_links)
        check_batch_size(len(groups))
        now = self._clock()
        batch_id = new_batch_id()
        envelopes = []
        for group in groups:
            subject, body = draft_text(group, settings)
            client = group[0].bill.client
            envelopes.append(
                Envelope(
                    id=new_envelope_id(),
                    firm_id=firm_id,
                    batch_id=batch_id,
                    client=client,
                    bill_ids=tuple(b.bill.id for b in group),
                    to=sendable_address(str(client.email)),
                    subject=subject,
                    body=body,
                    status=EnvelopeStatus.DRAFT,
                    created_at=now,
                    drafted_amounts=drafted_amounts(group),
                )
            )
        batch = Batch(
            id=batch_id,
            firm_id=firm_id,
            envelope_ids=tuple(e.id for e in envelopes),
            created_at=now,
        )
        self._envelopes.create_batch(batch, envelopes)
        return batch, envelopes

    def get(self, firm_id: str, envelope_id: str) -> Envelope:
        envelope = self._envelopes.get(firm_id, envelope_id)
        if envelope is None:
            raise NotFound("This envelope does not exist.", field="id")
        return envelope

    def edit(
        self, firm_id: str, envelope_id: str, subject: str | None, body: str | None
    ) -> Envelope:
        """S2: a draft's subject and message, as staff typed them (merge fields stay text); an
        envelope that failed can be edited too, then sent again."""
        if subject is not None:
            check_subject(subject)
        current = self.get(firm_id, envelope_id)
        if (subject is None or subject == current.subject) and (
            body is None or body == current.body
        ):
            # Saved unchanged: still the template's text, so a send may re-render its amounts.
            check_editable(current)
            return current
        return self._envelopes.edit_draft(
            firm_id,
            envelope_id,
            current.subject if subject is None else subject,
            current.body if body is None else body,
        )

    def bills_of(self, firm_id: str, envelopes: Sequence[Envelope]) -> dict[int, StoredBill]:
        """The stored bills of some envelopes (one batched read), so that every screen names
        them by number and shows what is payable on each now."""
        ids = list(dict.fromkeys(i for e in envelopes for i in e.bill_ids))
        return self._bills.get_many(firm_id, ids) if ids else {}

    def get_batch(self, firm_id: str, batch_id: str) -> tuple[Batch, list[Envelope]]:
        found = self._envelopes.get_batch(firm_id, batch_id)
        if found is None:
            raise NotFound("This batch of envelopes does not exist.", field="batch_id")
        return found

    def bill_pdf(self, firm_id: str, envelope_id: str, bill_id: int) -> bytes:
        """The PDF of a bill attached to the envelope, rendered from Clio's bill preview: the
        same cache the send uses, so viewing it first makes the send's copy free."""
        envelope = self.get(firm_id, envelope_id)
        if bill_id not in envelope.bill_ids:
            raise NotFound("That bill is not attached to this envelope.", field="bill_id")

        def clio() -> ClioGateway:
            connection = self._connections.get(firm_id)
            if connection is None or connection.needs_reconnect:
                raise NotConnected("Reconnect Clio to view the bill's PDF.")
            return self._clio_for(connection)

        stored = self._bills.get(firm_id, bill_id)
        return self._pdfs.pdf(firm_id, stored, clio) if stored else clio().bill_pdf(bill_id)
