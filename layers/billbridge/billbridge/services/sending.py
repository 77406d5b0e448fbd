"""Review and send, the sending half (S3-S5, P1): starting the workflow, each envelope's send
step, and SES's delivery events.

No envelope is emailed twice (docs/sending.md): a send claims the envelope (draft or failed ->
sending, under a claim token of its workflow run); before calling SES it marks the call
started, and only the first mark wins, so neither a Step Functions retry, a repeated send
call, nor a crash between SES's answer and the status write can send it again. The uncertain
case (the mark is there, the outcome is not) is settled by SES's own events.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger

from billbridge.domain.bills import StoredBill
from billbridge.domain.connection import ClioConnection
from billbridge.domain.email_headers import address_problem, header_problem
from billbridge.domain.envelopes import (
    Envelope,
    EnvelopePurpose,
    EnvelopeStatus,
    attachment_name,
    can_move,
    check_sendable_envelope,
    draft_text,
    refresh_for_send,
    statuses_before,
)
from billbridge.domain.errors import (
    ClioUnreachable,
    Conflict,
    EmailNotSent,
    NotConnected,
    NotFound,
    RuleViolation,
    SesThrottled,
    TransientSendError,
)
from billbridge.domain.payment_links import (
    PaymentLink,
    link_token,
    link_url,
    new_link_id,
    token_hash,
)
from billbridge.domain.reminders import reminder_text, stop_reason
from billbridge.domain.settings import FirmSettings
from billbridge.domain.sync import utcnow
from billbridge.domain.templates import PAY_LINK_MARKER, fill_pay_link
from billbridge.services.bill_pdfs import BillPdfs
from billbridge.services.ports import (
    BillRepository,
    ClioGateway,
    ConnectionRepository,
    EnvelopeRepository,
    Mailer,
    NoPlans,
    PaymentLinkRepository,
    PlanCoverage,
    SendingRepository,
    SendStarter,
    SettingsRepository,
)

logger = Logger(child=True)

# SES event type -> the status it means; which statuses it may move from is the domain's rule.
SES_EVENTS: dict[str, EnvelopeStatus] = {
    "Send": EnvelopeStatus.SENT,
    "Delivery": EnvelopeStatus.DELIVERED,
    "Bounce": EnvelopeStatus.BOUNCED,
    "Complaint": EnvelopeStatus.COMPLAINED,
}
_URL = re.compile(r"https?://[^\s<>\"]+")


def html_body(text: str) -> str:
    """The message as simple HTML: escaped, paragraphs kept, links clickable."""
    escaped = html.escape(text)
    linked = _URL.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', escaped)
    paragraphs = "".join(
        f"<p>{p.replace(chr(10), '<br>')}</p>" for p in linked.split("\n\n") if p.strip()
    )
    return f'<!doctype html><html><body style="font-family:sans-serif">{paragraphs}</body></html>'


def _check_headers(*, subject: str, to: str, sender_name: str, reply_to: str | None) -> None:
    """EmailNotSent naming what would break the email's header, and how to fix it."""
    for what, value, fix in (
        ("the subject", subject, "edit the envelope's subject"),
        ("the sender's name", sender_name, "correct it in Settings"),
    ):
        problem = header_problem(value)
        if problem is not None:
            raise EmailNotSent(
                f"{what[:1].upper()}{what[1:]} contains {problem}, which an email header "
                f"cannot carry: {fix}, then send the envelope again."
            )
    for what, address, fix in (
        ("the client's email address", to, "correct it in Clio and draft the bill again"),
        ("the reply-to address", reply_to, "correct it in Settings"),
    ):
        problem = address_problem(address) if address is not None else None
        if problem is not None:
            raise EmailNotSent(
                f"{what[:1].upper()}{what[1:]} cannot be sent to ({problem}): {fix}."
            )


def _lazy_clio(
    firm_id: str,
    connections: ConnectionRepository,
    clio_for: Callable[[ClioConnection], ClioGateway],
) -> Callable[[], ClioGateway]:
    """The firm's Clio client, made on first call: a send whose PDFs are all cached needs none."""
    made: list[ClioGateway] = []

    def clio() -> ClioGateway:
        if not made:
            connection = connections.get(firm_id)
            if connection is None or connection.needs_reconnect:
                raise NotConnected("Clio is not connected, so the bill PDFs cannot be fetched.")
            made.append(clio_for(connection))
        return made[0]

    return clio


def text_renderer(
    envelope: Envelope, settings: FirmSettings
) -> Callable[[Sequence[StoredBill]], tuple[str, str]]:
    """How the envelope's text is rendered again for its bills: from the firm's template for
    them as a draft is, or, for a reminder, from the reminder template."""
    if envelope.purpose is EnvelopePurpose.REMINDER:
        return lambda bills: reminder_text(bills[0], settings)
    return lambda bills: draft_text(bills, settings)


class SendRequests:
    """The API's half: staff ask for envelopes to be sent; the workflow does the sending."""

    def __init__(
        self,
        *,
        envelopes: EnvelopeRepository,
        starter: Callable[[], SendStarter],
        bills: BillRepository,
        settings: SettingsRepository,
    ) -> None:
        self._envelopes = envelopes
        self._starter = starter
        self._bills = bills
        self._settings = settings

    def send_envelope(self, firm_id: str, envelope_id: str) -> tuple[Envelope, str]:
        """S3: start sending one envelope; answer it and the workflow run's id. Its amounts
        are checked first (`refresh_for_send`): an unedited draft is re-rendered to what is
        payable now, one that cannot be (edited, or nothing payable) is refused with a 409
        saying why, and nothing is written. The send step checks again, just before SES."""
        envelope = self._envelopes.get(firm_id, envelope_id)
        if envelope is None:
            raise NotFound("This envelope does not exist.", field="id")
        check_sendable_envelope(envelope)
        stored = self._bills.get_many(firm_id, envelope.bill_ids)
        settings = self._settings.get(firm_id)
        refreshed = refresh_for_send(envelope, stored, text_renderer(envelope, settings))
        if refreshed is not None:
            if not self._envelopes.rewrite(refreshed):
                raise Conflict(
                    "This envelope changed while it was being sent; look at it again.",
                    field="id",
                    code="envelope_changed",
                )
            envelope = self._envelopes.get(firm_id, envelope_id) or refreshed
        if envelope.status is EnvelopeStatus.FAILED:
            # Sent again: a draft until its run claims it, so what the caller sees next is this
            # run's outcome, not the last failure.
            self._envelopes.requeue(firm_id, envelope_id)
            envelope = self._envelopes.get(firm_id, envelope_id) or envelope
        execution = self._starter().start(firm_id, envelope.batch_id, [envelope_id])
        return envelope, execution

    def send_batch(self, firm_id: str, batch_id: str) -> str:
        """S4: start sending every draft (or failed) envelope of the batch."""
        found = self._envelopes.get_batch(firm_id, batch_id)
        if found is None:
            raise NotFound("This batch of envelopes does not exist.", field="batch_id")
        _, envelopes = found
        pending = [e.id for e in envelopes if can_move(e.status, EnvelopeStatus.SENDING)]
        for envelope in envelopes:
            if envelope.status is EnvelopeStatus.FAILED:
                self._envelopes.requeue(firm_id, envelope.id)
        if not pending:
            raise RuleViolation(
                "This batch has no envelope left to send.",
                field="batch_id",
                code="nothing_to_send",
            )
        return self._starter().start(firm_id, batch_id, pending)


class SendSteps:
    """The workflow's half: each envelope's send step, its failure step, and SES's events."""

    def __init__(
        self,
        *,
        envelopes: SendingRepository,
        bills: BillRepository,
        links: PaymentLinkRepository,
        settings: SettingsRepository,
        connections: ConnectionRepository,
        clio_for: Callable[[ClioConnection], ClioGateway],
        pdfs: BillPdfs,
        mailer: Callable[[], Mailer],
        pay_link_key: Callable[[], bytes],
        pay_base_url: str,
        clock: Callable[[], datetime] = utcnow,
        plans: PlanCoverage | None = None,
    ) -> None:
        self._plans = plans or NoPlans()
        self._envelopes = envelopes
        self._bills = bills
        self._links = links
        self._settings = settings
        self._connections = connections
        self._clio_for = clio_for
        self._pdfs = pdfs
        self._mailer = mailer
        self._pay_link_key = pay_link_key
        self._pay_base_url = pay_base_url
        self._clock = clock

    # -- the workflow's steps ------------------------------------------------------------------

    def send_step(self, firm_id: str, envelope_id: str, claim_token: str) -> dict[str, Any]:
        """One envelope: claim, gather the PDFs, make or reuse the link, send, mark sent."""
        now = self._clock()
        envelope = self._envelopes.get(firm_id, envelope_id)
        if envelope is None:
            raise NotFound("This envelope does not exist.")
        if not self._envelopes.claim(firm_id, envelope_id, claim_token, now):
            # Sent, or being sent by another run: a repeated send never emails twice.
            return {"envelope_id": envelope_id, "outcome": "skipped", "status": envelope.status}
        if envelope.purpose is EnvelopePurpose.REMINDER:
            # Checked again here, just before SES: a bill paid, voided or paused since the tick
            # made this reminder gets none (domain/reminders.py).
            stopped = self._reminder_stopped(firm_id, envelope)
            if stopped is not None:
                self._envelopes.mark_failed(
                    firm_id, envelope_id, claim_token, f"Not sent: {stopped}."
                )
                return {"envelope_id": envelope_id, "outcome": "cancelled", "reason": stopped}
        # Every amount the email asks for is what is payable now: a bill with nothing payable
        # (paid through BillBridge since the draft, a bank payment settling, paid or voided in
        # Clio) is never billed again, and an amount that changed (a partial payment, a sync)
        # is re-rendered, or the envelope fails saying why (docs/sending.md, "Amounts at send").
        try:
            refreshed = self._refresh_amounts(firm_id, envelope)
        except (Conflict, RuleViolation) as exc:
            reason = f"Not sent: {exc.message}"
            self._envelopes.mark_failed(firm_id, envelope_id, claim_token, reason)
            return {"envelope_id": envelope_id, "outcome": "cancelled", "reason": reason}
        if refreshed is not None:
            if not self._envelopes.rewrite(refreshed, claim_token):
                # Another run took it, or an earlier attempt reached SES: never send twice.
                return {"envelope_id": envelope_id, "outcome": "skipped", "status": "sending"}
            envelope = refreshed
        try:
            attachments = self._attachments(firm_id, envelope.bill_ids)
        except ClioUnreachable as exc:
            if exc.transient:
                raise TransientSendError(f"Clio is unavailable ({exc.message}).") from None
            raise
        link = self._link_for(firm_id, envelope.bill_ids, now, envelope.payment_link_id)
        url = link_url(self._pay_base_url, link_token(self._pay_link_key(), firm_id, link.id))
        settings = self._settings.get(firm_id)
        text = fill_pay_link(envelope.body, url)
        subject = envelope.subject.replace(PAY_LINK_MARKER, url)
        reply_to = str(settings.reply_to) if settings.reply_to else None
        sender_name = settings.sender_name or settings.firm_name
        # Values stored before input was checked could break a header: refuse them here,
        # before SES, so the envelope fails (to be edited and sent again) instead of sticking.
        _check_headers(subject=subject, to=envelope.to, sender_name=sender_name, reply_to=reply_to)
        if not self._envelopes.start_ses_call(firm_id, envelope_id, claim_token, now):
            # An earlier attempt of this send reached SES and then stopped: do not send again.
            # Re-claiming cleared the envelope's note, so say again why it stays `sending`.
            self._envelopes.mark_failed(
                firm_id, envelope_id, claim_token, "an earlier attempt may have reached SES"
            )
            return {"envelope_id": envelope_id, "outcome": "unconfirmed"}
        try:
            message_id = self._mailer().send(
                to=[envelope.to],
                subject=subject,
                text=text,
                html=html_body(text),
                reply_to=reply_to,
                sender_name=sender_name,
                attachments=attachments,
                tags={"firm_id": firm_id, "envelope_id": envelope_id},
            )
        except (SesThrottled, EmailNotSent):
            # SES sent nothing, for certain: a retry may call it again (throttled), or the
            # envelope may be marked failed and sent again once fixed (not sendable).
            self._envelopes.undo_ses_call(firm_id, envelope_id, claim_token)
            raise
        self._envelopes.mark_sent(
            envelope,
            claim_token=claim_token,
            message_id=message_id,
            link_id=link.id,
            url=url,
            now=self._clock(),
        )
        logger.info("envelope sent", extra={"firm_id": firm_id, "envelope_id": envelope_id})
        return {"envelope_id": envelope_id, "outcome": "sent", "message_id": message_id}

    def fail_step(
        self, firm_id: str, envelope_id: str, claim_token: str, error: str
    ) -> dict[str, Any]:
        failed = self._envelopes.mark_failed(firm_id, envelope_id, claim_token, error)
        return {"envelope_id": envelope_id, "outcome": "failed" if failed else "unconfirmed"}

    def _attachments(self, firm_id: str, bill_ids: tuple[int, ...]) -> list[tuple[str, bytes]]:
        """Each bill's PDF, named by its number: from the cache the sync prefetched, from Clio
        only when missing or stale (Clio is connected to only then)."""
        clio = _lazy_clio(firm_id, self._connections, self._clio_for)
        stored = self._bills.get_many(firm_id, bill_ids)
        attachments = []
        for bill_id in bill_ids:
            bill = stored.get(bill_id)
            pdf = self._pdfs.pdf(firm_id, bill, clio) if bill else clio().bill_pdf(bill_id)
            number = bill.bill.number if bill else str(bill_id)
            attachments.append((attachment_name(number, bill_id), pdf))
        return attachments

    def _refresh_amounts(self, firm_id: str, envelope: Envelope) -> Envelope | None:
        """The envelope re-rendered to what is payable now, None when it says so already;
        Conflict when it cannot be sent as it stands (`refresh_for_send`)."""
        stored = self._bills.get_many(firm_id, envelope.bill_ids)
        settings = self._settings.get(firm_id)
        return refresh_for_send(envelope, stored, text_renderer(envelope, settings))

    def _reminder_stopped(self, firm_id: str, envelope: Envelope) -> str | None:
        """Why this reminder must not go out now, or None."""
        if not self._settings.get(firm_id).reminders.enabled:
            return "reminders are turned off in Settings"
        stored = self._bills.get_many(firm_id, envelope.bill_ids)
        covered = self._plans.covered_bill_ids(firm_id, list(envelope.bill_ids))
        for bill_id in envelope.bill_ids:
            bill = stored.get(bill_id)
            if bill is None:
                return f"bill {bill_id} is no longer in Clio"
            reason = stop_reason(bill, covered_by_plan=bill_id in covered)
            if reason is not None:
                return reason
        return None

    def _link_for(
        self,
        firm_id: str,
        bill_ids: tuple[int, ...],
        now: datetime,
        link_id: str | None = None,
    ) -> PaymentLink:
        """P1: the link of this set of bills, made the first time the set is sent; a reminder
        names the link its bill was sent with, and carries that same link."""
        if link_id is not None:
            named = self._links.get(firm_id, link_id)
            if named is not None:
                return named
        existing = self._links.for_bills(firm_id, bill_ids)
        if existing is not None:
            return existing
        link = PaymentLink(id=new_link_id(), firm_id=firm_id, bill_ids=bill_ids, created_at=now)
        token = link_token(self._pay_link_key(), firm_id, link.id)
        return self._links.create(link, token_hash(token))


class DeliveryEvents:
    """S5: SES's send, delivery, bounce and complaint events, recorded on the envelope."""

    def __init__(self, envelopes: SendingRepository) -> None:
        self._envelopes = envelopes

    def ses_event(
        self, event_type: str, message_id: str, tags: dict[str, str] | None = None
    ) -> bool:
        """Record a send, delivery, bounce or complaint on its envelope; repeats and late
        arrivals change nothing. The envelope comes from the message's own tags (set when it
        was sent, so even a send whose status write was lost is found), else from the id."""
        status = SES_EVENTS.get(event_type)
        if status is None:
            return False
        tags = tags or {}
        owner: tuple[str, str] | None = None
        if tags.get("firm_id") and tags.get("envelope_id"):
            owner = (tags["firm_id"], tags["envelope_id"])
        else:
            owner = self._envelopes.envelope_of_message(message_id)
        if owner is None:
            return False
        firm_id, envelope_id = owner
        return self._envelopes.record_delivery_event(
            firm_id, envelope_id, status, statuses_before(status)
        )
