"""Envelopes (S1, S2): the emails that carry bills to a client, and how bills become envelopes.

One envelope per bill; or, with Aggregate Payment Links on, one per client holding at most ten
bills (an eleventh starts another envelope for that client). Operating invoices and trust
requests may share an envelope: the payment is split by account later (P3).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import StrEnum

from billbridge.domain.bills import BillKind, Client, StoredBill
from billbridge.domain.email_headers import check_header_text, header_safe
from billbridge.domain.errors import Conflict, RuleViolation
from billbridge.domain.money import CURRENCY_SIGNS as CURRENCY_SIGNS  # older callers import it here
from billbridge.domain.money import format_money
from billbridge.domain.settings import FirmSettings
from billbridge.domain.templates import TemplateProblem, render

MAX_BILLS_PER_ENVELOPE = 10
# One batch is written in one DynamoDB transaction (100 items): the batch and its envelopes.
MAX_ENVELOPES_PER_BATCH = 99


class EnvelopeStatus(StrEnum):
    DRAFT = "draft"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    DELIVERED = "delivered"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


class EnvelopePurpose(StrEnum):
    """What an envelope is for: a bill's first send (staff drafted it), or a reminder (X3)."""

    SEND = "send"
    REMINDER = "reminder"


# The envelope status rules, in one place (as transactions have `can_move`): each status and the
# statuses it may move to. Every write that changes an envelope's status is conditioned on it.
#   draft -> sending (a send claims it) or failed (its send died before claiming it)
#   failed -> draft (staff ask to send it again: it waits for its run as a draft does)
#   sending -> sent (SES took it), failed (nothing reached SES), or what SES's events say
#   sent -> delivered / bounced / complained; delivered -> bounced / complained (SES events)
# Nothing moves back: a late or repeated event changes nothing, and an envelope SES may have
# is never `failed`, because a failed envelope can be sent again (docs/sending.md).
_MOVES: dict[EnvelopeStatus, frozenset[EnvelopeStatus]] = {
    EnvelopeStatus.DRAFT: frozenset({EnvelopeStatus.SENDING, EnvelopeStatus.FAILED}),
    EnvelopeStatus.FAILED: frozenset({EnvelopeStatus.DRAFT, EnvelopeStatus.SENDING}),
    EnvelopeStatus.SENDING: frozenset(
        {
            EnvelopeStatus.SENT,
            EnvelopeStatus.FAILED,
            EnvelopeStatus.DELIVERED,
            EnvelopeStatus.BOUNCED,
            EnvelopeStatus.COMPLAINED,
        }
    ),
    EnvelopeStatus.SENT: frozenset(
        {EnvelopeStatus.DELIVERED, EnvelopeStatus.BOUNCED, EnvelopeStatus.COMPLAINED}
    ),
    EnvelopeStatus.DELIVERED: frozenset({EnvelopeStatus.BOUNCED, EnvelopeStatus.COMPLAINED}),
    EnvelopeStatus.BOUNCED: frozenset(),
    EnvelopeStatus.COMPLAINED: frozenset(),
}
# Staff may change the text of an envelope that is not (being) sent.
EDITABLE = (EnvelopeStatus.DRAFT, EnvelopeStatus.FAILED)


def can_move(current: EnvelopeStatus, new: EnvelopeStatus) -> bool:
    return new in _MOVES[current]


def statuses_before(new: EnvelopeStatus) -> tuple[EnvelopeStatus, ...]:
    """Every status an envelope may be in for it to move to `new` (the condition of a write)."""
    return tuple(s for s in EnvelopeStatus if can_move(s, new))


@dataclass(frozen=True)
class Envelope:
    id: str
    firm_id: str
    batch_id: str
    client: Client
    bill_ids: tuple[int, ...]
    to: str
    subject: str
    body: str
    status: EnvelopeStatus
    created_at: datetime
    payment_link_id: str | None = None
    payment_url: str | None = None
    sent_at: datetime | None = None
    error: str | None = None
    purpose: EnvelopePurpose = EnvelopePurpose.SEND
    reminder_number: int | None = None  # a reminder's slot (1 = the first reminder)
    # What each bill's payable amount was when the text was rendered (bill id, cents), so the
    # send can tell whether the text still asks for what is payable (None: drafted before this
    # was kept; only "nothing payable" is checked for those).
    drafted_amounts: tuple[tuple[int, int], ...] | None = None
    # Staff changed the subject or message (PATCH): the text is theirs, not the template's.
    edited: bool = False
    # What the send changed to ask for what was payable then, in a sentence (or None).
    send_note: str | None = None


@dataclass(frozen=True)
class Batch:
    id: str
    firm_id: str
    envelope_ids: tuple[str, ...]
    created_at: datetime


def new_batch_id() -> str:
    return f"bat_{secrets.token_urlsafe(12)}"


def new_envelope_id() -> str:
    return f"env_{secrets.token_urlsafe(12)}"


def check_sendable(stored: StoredBill) -> None:
    """A bill goes in an envelope only when something is payable on it now and its client has
    an address (`StoredBill.unsendable`)."""
    problem = stored.unsendable()
    if problem is not None:
        raise problem


def _due_key(stored: StoredBill) -> tuple[date, int]:
    return (stored.bill.due_at or date.max, stored.bill.id)


def group_bills(bills: Sequence[StoredBill], aggregate: bool) -> list[list[StoredBill]]:
    """Envelopes' bills, in a stable order: clients as first selected, bills by due date."""
    if not aggregate:
        return [[b] for b in bills]
    by_client: dict[int, list[StoredBill]] = {}
    for stored in bills:
        by_client.setdefault(stored.bill.client.id, []).append(stored)
    groups: list[list[StoredBill]] = []
    for client_bills in by_client.values():
        ordered = sorted(client_bills, key=_due_key)
        for start in range(0, len(ordered), MAX_BILLS_PER_ENVELOPE):
            groups.append(ordered[start : start + MAX_BILLS_PER_ENVELOPE])
    return groups


money = format_money  # the name older callers (the pay page) import


def attachment_name(number: str, bill_id: int) -> str:
    """The bill PDF's file name, in the email and on every screen: its Clio number made safe
    for a file name ("INV-00037.pdf"), the Clio id only when the number has nothing usable."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", number).strip("-.") or str(bill_id)
    return f"{name}.pdf"


def _lines(bills: Sequence[StoredBill], currency: str) -> str:
    return "\n".join(f"{b.bill.number}: {format_money(b.payable_cents, currency)}" for b in bills)


def merge_fields(bills: Sequence[StoredBill], settings: FirmSettings) -> dict[str, str]:
    """The merge fields of an envelope's bills. Every amount is what is payable now (Outstanding
    (Clio) minus our payments Clio does not show yet: `StoredBill.payable_cents`), never Clio's
    outstanding alone, so a bill paid here and not yet in Clio never asks for its amount again."""
    currency = bills[0].bill.currency
    due_dates = sorted({b.bill.due_at for b in bills if b.bill.due_at})
    invoices = [b for b in bills if b.bill.kind is not BillKind.TRUST_REQUEST]
    trust = [b for b in bills if b.bill.kind is BillKind.TRUST_REQUEST]
    return {
        "client_name": bills[0].bill.client.name,
        "bill_numbers": ", ".join(b.bill.number for b in bills),
        "amount_due": format_money(sum(b.payable_cents for b in bills), currency),
        "amounts_due": _lines(bills, currency),
        "invoice_lines": _lines(invoices, currency),
        "invoice_amount_due": format_money(sum(b.payable_cents for b in invoices), currency),
        "trust_request_lines": _lines(trust, currency),
        "trust_amount_due": format_money(sum(b.payable_cents for b in trust), currency),
        "due_dates": ", ".join(d.strftime("%b %d, %Y").replace(" 0", " ") for d in due_dates),
        "firm_name": settings.firm_name,
    }


TEMPLATE_LABELS = {
    "invoice": "invoice",
    "trust_request": "trust request",
    "mixed": "invoices and trust requests",
}


def template_kind(bills: Sequence[StoredBill]) -> str:
    """Which of the firm's templates an envelope uses: trust requests alone the trust template,
    invoices alone the invoice template, both together the mixed template (T1)."""
    kinds = {b.bill.kind for b in bills}
    if kinds == {BillKind.TRUST_REQUEST}:
        return "trust_request"
    if BillKind.TRUST_REQUEST in kinds:
        return "mixed"
    return "invoice"


def draft_text(bills: Sequence[StoredBill], settings: FirmSettings) -> tuple[str, str]:
    """Subject and body from the firm's template for the envelope's kind of bills."""
    kind = template_kind(bills)
    template = getattr(settings.templates, kind)
    fields = merge_fields(bills, settings)
    rendered = {}
    for part in ("subject", "body"):
        try:
            rendered[part] = render(getattr(template, part), fields)
        except TemplateProblem as exc:
            # A template that rendered the sample values can still fail on a bill's own
            # (`{% if client_name != 'Acme Ltd' %}{{ 1//0 }}{% endif %}`): name both.
            numbers = ", ".join(b.bill.number for b in bills)
            raise RuleViolation(
                f"The {TEMPLATE_LABELS[kind]} email template's {part} cannot be filled in for "
                f"{numbers} of {header_safe(bills[0].bill.client.name)!r}: {exc} Correct the "
                f"template in Settings (templates.{kind}.{part}).",
                field="bill_ids",
                code="template_failed",
            ) from None
    # The subject is a header: merged values from Clio (a client's name, `amounts_due`'s lines)
    # must not break it, so it is made one line; the template itself was checked when saved.
    return header_safe(rendered["subject"]).strip(), rendered["body"]


def drafted_amounts(bills: Sequence[StoredBill]) -> tuple[tuple[int, int], ...]:
    """The amounts an envelope's text is rendered with, kept to be compared at send."""
    return tuple((b.bill.id, b.payable_cents) for b in bills)


# StoredBill.unsendable's codes for "nothing is payable on this bill now".
NOTHING_PAYABLE_CODES = frozenset({"bill_not_outstanding", "nothing_payable", "payment_pending"})


@dataclass(frozen=True)
class AmountsChanged:
    """How what an envelope asks for differs from what is payable now: the bills still payable
    (in the envelope's order), a sentence per bill whose amount changed, and why each bill with
    nothing payable now cannot be sent."""

    payable: tuple[StoredBill, ...]
    changes: tuple[str, ...]
    unpayable: tuple[str, ...]

    def summary(self, *, left_out: bool) -> str:
        """What changed, in sentences; `left_out` when the bills with nothing payable are
        being dropped from the envelope (else they are named as what stops it)."""
        parts = []
        if self.changes:
            text = "; ".join(self.changes)
            parts.append(_sentence(text[:1].upper() + text[1:]))
        for reason in self.unpayable:
            parts.append(f"Left out: {_sentence(reason)}" if left_out else _sentence(reason))
        return " ".join(parts)


def _sentence(text: str) -> str:
    return text if text.endswith((".", "!", "?")) else f"{text}."


def amounts_changed(envelope: Envelope, stored: Mapping[int, StoredBill]) -> AmountsChanged | None:
    """None when every bill of the envelope is still payable for exactly the amount its text
    was rendered with; else what changed. A bill no longer stored counts as not payable."""
    drafted = dict(envelope.drafted_amounts or ())
    payable: list[StoredBill] = []
    changes: list[str] = []
    unpayable: list[str] = []
    for bill_id in envelope.bill_ids:
        bill = stored.get(bill_id)
        if bill is None:
            unpayable.append(f"bill {bill_id} is no longer among the firm's synced bills")
            continue
        problem = bill.unsendable()
        if problem is not None and problem.code in NOTHING_PAYABLE_CODES:
            unpayable.append(problem.message)
            continue
        payable.append(bill)
        was = drafted.get(bill_id)
        if envelope.drafted_amounts is not None and was != bill.payable_cents:
            currency = bill.bill.currency
            changes.append(
                f"{bill.bill.number} was {format_money(was or 0, currency)} and is now "
                f"{format_money(bill.payable_cents, currency)}"
            )
    if not changes and not unpayable:
        return None
    return AmountsChanged(tuple(payable), tuple(changes), tuple(unpayable))


TextRenderer = Callable[[Sequence[StoredBill]], tuple[str, str]]


def refresh_for_send(
    envelope: Envelope, stored: Mapping[int, StoredBill], render_text: TextRenderer
) -> Envelope | None:
    """What an envelope must say when it is sent: every amount it asks for is what is payable
    now (docs/sending.md, "Amounts at send"). None when it says so already; else the envelope
    re-rendered from the template for its bills still payable, their amounts now, with a note
    saying what changed. Conflict, naming the bills, when it cannot be sent as it stands:
    nothing is payable on any of its bills, or staff edited its text (their words are not
    rewritten, and may name the old amounts), or it was drafted before amounts were kept."""
    changed = amounts_changed(envelope, stored)
    if changed is None:
        return None
    if not changed.payable:
        raise Conflict(_sentence(changed.unpayable[0]), field="id", code="nothing_payable")
    numbers = ", ".join(stored[i].bill.number for i in envelope.bill_ids if i in stored)
    if envelope.edited or envelope.drafted_amounts is None:
        why = (
            "its subject or message was edited, so BillBridge does not rewrite them"
            if envelope.edited
            else "it was drafted before BillBridge kept its amounts"
        )
        raise Conflict(
            "What is payable changed since this envelope was drafted. "
            f"{changed.summary(left_out=False)} It is not sent, because {why}: draft "
            f"{numbers or 'its bills'} again to send what is payable now.",
            field="id",
            code="amounts_changed",
        )
    subject, body = render_text(changed.payable)
    return replace(
        envelope,
        bill_ids=tuple(b.bill.id for b in changed.payable),
        subject=subject,
        body=body,
        drafted_amounts=drafted_amounts(changed.payable),
        send_note=(
            f"Updated when sent to ask for what was payable then. {changed.summary(left_out=True)}"
        ),
    )


def check_batch_size(envelope_count: int) -> None:
    if envelope_count > MAX_ENVELOPES_PER_BATCH:
        raise RuleViolation(
            f"These bills make {envelope_count} envelopes; at most {MAX_ENVELOPES_PER_BATCH} "
            "can be reviewed at once. Select fewer bills.",
            field="bill_ids",
            code="too_many_envelopes",
        )


def check_editable(envelope: Envelope) -> None:
    if envelope.status not in EDITABLE:
        raise RuleViolation(
            f"This envelope is {envelope.status.value}: only drafts and envelopes that failed "
            "can be edited.",
            field="id",
            code="envelope_not_draft",
        )


def check_sendable_envelope(envelope: Envelope) -> None:
    """A send may start only for an envelope that may move to `sending` (a draft or failed)."""
    if not can_move(envelope.status, EnvelopeStatus.SENDING):
        raise RuleViolation(
            f"This envelope is {envelope.status.value}: it is not sent again.",
            field="id",
            code="envelope_already_sent",
        )


def check_subject(subject: str) -> None:
    """An edited subject goes in the email's header as typed."""
    check_header_text(subject, "subject", "the subject")
