"""The API's response shapes (api.md), as pydantic models: the OpenAPI document comes from code."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints

from billbridge.domain.bills import BillKind, BillState, StoredBill
from billbridge.domain.connection import ClioConnection
from billbridge.domain.email_headers import HEADER_TEXT_PATTERN
from billbridge.domain.envelopes import Envelope, attachment_name, template_kind
from billbridge.domain.payments import Transaction
from billbridge.domain.receipts import reference as receipt_reference
from billbridge.domain.surcharge import surcharge_note
from billbridge.domain.sync import SyncRun

# The ids the API hands out (new_run_id, new_envelope_id, new_batch_id, new_link_id;
# transactions are pay_<Checkout Session id> or rf_<random>) are short and URL-safe, so no key
# separator (#) can ride in on one. Any id of that shape that is not the caller's is a 404.
ID_PATTERN = r"^[A-Za-z0-9_-]{1,200}$"
CURSOR_PATTERN = r"^[A-Za-z0-9_-]+$"  # URL-safe base64, as next_cursor is


class ApiModel(BaseModel):
    """Each model's validator is built on first use, not at every cold start: one request
    needs the models of its own route only."""

    model_config = ConfigDict(defer_build=True)


class ClientOut(ApiModel):
    id: str
    name: str
    email: str | None


class MatterOut(ApiModel):
    id: str
    display_number: str
    description: str | None


class Invoice(ApiModel):
    id: str
    number: str
    state: BillState
    kind: BillKind
    client: ClientOut
    matter: MatterOut | None
    total_cents: int
    outstanding_clio_cents: int
    paid_gl_cents: int
    currency: str
    issued_at: date | None
    due_at: date | None
    clio_url: str
    payment_link_id: str | None
    last_sent_at: datetime | None
    payable_cents: int = Field(
        description="What the client may pay now: Outstanding (Clio) minus our payments that "
        "Clio does not show yet"
    )
    pending_cents: int = Field(
        description="Bank (ACH) payments begun and not settled yet: not payable again, not Paid "
        "(GL) yet"
    )
    sendable: bool = Field(
        description="Whether the bill can be selected and sent to the client now: something is "
        "payable on it (payable_cents above zero) and the client has an email address"
    )
    unsendable_code: str | None = Field(
        description="Why not, as a code (bill_not_outstanding, nothing_payable, payment_pending, "
        "client_without_email, client_email_invalid); null when sendable"
    )
    unsendable_reason: str | None = Field(
        description="Why not, in a sentence for staff; null when sendable"
    )
    flags: list[str] = Field(
        description="Things staff should look at (X2): payment_not_in_clio, refund_not_in_clio, "
        "overpaid (collected beyond what the bill owes across its links), paid_but_unpayable "
        "(money on a void or deleted bill), inquiry, disputed (an open chargeback), "
        "chargeback_lost"
    )
    next_reminder_at: datetime | None = Field(
        default=None,
        description="When the bill's next payment reminder is due (X3); null when reminders "
        "are off, paused, stopped (paid, void, deleted, on a payment plan) or all sent",
    )
    reminders_paused: bool = Field(
        default=False, description="The clerk paused this bill's reminders"
    )

    @classmethod
    def of(cls, stored: StoredBill, next_reminder_at: datetime | None = None) -> Invoice:
        bill = stored.bill
        unsendable = stored.unsendable()
        return cls(
            id=str(bill.id),
            number=bill.number,
            state=bill.state,
            kind=bill.kind,
            client=ClientOut(
                id=str(bill.client.id), name=bill.client.name, email=bill.client.email
            ),
            matter=(
                MatterOut(
                    id=str(bill.matter.id),
                    display_number=bill.matter.display_number,
                    description=bill.matter.description,
                )
                if bill.matter
                else None
            ),
            total_cents=bill.total_cents,
            outstanding_clio_cents=bill.outstanding_clio_cents,
            paid_gl_cents=stored.paid_gl_cents,
            currency=bill.currency,
            issued_at=bill.issued_at,
            due_at=bill.due_at,
            clio_url=bill.clio_url,
            payment_link_id=stored.payment_link_id,
            last_sent_at=stored.last_sent_at,
            payable_cents=stored.payable_cents,
            pending_cents=stored.pending_cents,
            sendable=unsendable is None,
            unsendable_code=unsendable.code if unsendable else None,
            unsendable_reason=unsendable.message if unsendable else None,
            flags=list(stored.all_flags()),
            next_reminder_at=next_reminder_at,
            reminders_paused=stored.reminders_paused,
        )


class SyncRef(ApiModel):
    id: str
    status: Literal["running", "succeeded", "failed"]


class InvoicesPageOut(ApiModel):
    items: list[Invoice]
    next_cursor: str | None
    synced_at: datetime | None
    sync: SyncRef | None
    states: list[BillState]
    sort: str | None = Field(description="The sort of this page (null: newest id first)")
    q: str | None = Field(description="The search, as matched (normalised); null for none")
    overdue: bool


class SyncOut(ApiModel):
    id: str
    status: Literal["running", "succeeded", "failed"]
    mode: Literal["full", "incremental"]
    trigger: str
    bills_seen: int
    bills_changed: int
    started_at: datetime
    finished_at: datetime | None
    error: str | None

    @classmethod
    def of(cls, run: SyncRun) -> SyncOut:
        return cls(
            id=run.id,
            status=run.status.value,
            mode=run.mode.value,
            trigger=run.trigger.value,
            bills_seen=run.bills_seen,
            bills_changed=run.bills_changed,
            started_at=run.started_at,
            finished_at=run.finished_at,
            error=run.error,
        )


class ConnectedByOut(ApiModel):
    user_id: str
    email: str | None


class ClioStatusOut(ApiModel):
    status: Literal["connected", "reconnect_needed", "not_connected"]
    region: str | None
    # Which Clio user approved the connection, and their Clio account (Clio's who_am_i).
    clio_user_id: str | None = None
    clio_user_name: str | None
    clio_user_email: str | None = None
    clio_account_id: str | None = None
    clio_account_name: str | None = None
    # The BillBridge user who started the connect.
    connected_by: ConnectedByOut | None = None
    connected_at: datetime | None

    @classmethod
    def of(cls, status: str, connection: ClioConnection | None) -> ClioStatusOut:
        if connection is None:
            return cls(status=status, region=None, clio_user_name=None, connected_at=None)  # type: ignore[arg-type]
        by = connection.connected_by_user_id
        return cls(
            status=status,  # type: ignore[arg-type]
            region=connection.region.value,
            clio_user_id=None if connection.clio_user_id is None else str(connection.clio_user_id),
            clio_user_name=connection.clio_user_name,
            clio_user_email=connection.clio_user_email,
            clio_account_id=(
                None if connection.clio_account_id is None else str(connection.clio_account_id)
            ),
            clio_account_name=connection.clio_account_name,
            connected_by=ConnectedByOut(user_id=by, email=connection.connected_by_email)
            if by
            else None,
            connected_at=connection.connected_at,
        )


class AuthorizeUrlOut(ApiModel):
    authorize_url: str


class ConnectedOut(ApiModel):
    connected: bool
    firm_id: str
    region: str
    clio_user_name: str | None


class EnvelopeBillOut(ApiModel):
    """One bill of an envelope, named by its Clio number, with what is payable on it now."""

    id: str
    number: str
    kind: BillKind
    currency: str
    total_cents: int
    outstanding_clio_cents: int
    paid_gl_cents: int
    payable_cents: int
    pending_cents: int
    due_at: date | None
    attachment_name: str = Field(description="The PDF's file name in the email (INV-00037.pdf)")

    @classmethod
    def of(cls, stored: StoredBill) -> EnvelopeBillOut:
        bill = stored.bill
        return cls(
            id=str(bill.id),
            number=bill.number,
            kind=bill.kind,
            currency=bill.currency,
            total_cents=bill.total_cents,
            outstanding_clio_cents=bill.outstanding_clio_cents,
            paid_gl_cents=stored.paid_gl_cents,
            payable_cents=stored.payable_cents,
            pending_cents=stored.pending_cents,
            due_at=bill.due_at,
            attachment_name=attachment_name(bill.number, bill.id),
        )


class EnvelopeOut(ApiModel):
    id: str
    batch_id: str
    client: ClientOut
    bill_ids: list[str]
    to: str
    subject: str
    body: str
    status: Literal["draft", "sending", "sent", "failed", "delivered", "bounced", "complained"]
    payment_link_id: str | None
    payment_url: str | None
    sent_at: datetime | None
    error: str | None
    purpose: Literal["send", "reminder"] = Field(
        default="send", description="A bill's first send, or a payment reminder (X3)"
    )
    reminder_number: int | None = Field(
        default=None, description="Which reminder of the bill this is (1 = the first)"
    )
    bills: list[EnvelopeBillOut] = Field(
        description="The envelope's bills in bill_ids order, as the store holds them now "
        "(number, kind, amounts, the attachment's file name); a bill no longer stored is left out"
    )
    template: Literal["invoice", "trust_request", "mixed"] | None = Field(
        description="Which of the firm's templates the bills call for"
    )
    edited: bool = Field(
        default=False,
        description="Staff changed the subject or message: a send never rewrites them, so it "
        "is refused (409 amounts_changed) if what is payable changed since the draft",
    )
    send_note: str | None = Field(
        default=None,
        description="What the send changed so the email asks for what was payable then "
        "(amounts re-rendered, bills with nothing payable left out), in sentences",
    )

    @classmethod
    def of(cls, envelope: Envelope, bills: Mapping[int, StoredBill] | None = None) -> EnvelopeOut:
        known = bills or {}
        mine = [known[i] for i in envelope.bill_ids if i in known]
        return cls(
            id=envelope.id,
            batch_id=envelope.batch_id,
            client=ClientOut(
                id=str(envelope.client.id), name=envelope.client.name, email=envelope.client.email
            ),
            bill_ids=[str(i) for i in envelope.bill_ids],
            to=envelope.to,
            subject=envelope.subject,
            body=envelope.body,
            status=envelope.status.value,
            payment_link_id=envelope.payment_link_id,
            payment_url=envelope.payment_url,
            sent_at=envelope.sent_at,
            error=envelope.error,
            purpose=envelope.purpose.value,
            reminder_number=envelope.reminder_number,
            bills=[EnvelopeBillOut.of(b) for b in mine],
            template=template_kind(mine) if mine else None,  # type: ignore[arg-type]
            edited=envelope.edited,
            send_note=envelope.send_note,
        )


class SentRecordOut(ApiModel):
    envelope_id: str
    purpose: Literal["send", "reminder"]
    reminder_number: int | None
    to: str
    subject: str
    sent_at: datetime
    label: str = Field(description="In words: First send, or Reminder 2")
    send_note: str | None = Field(
        default=None,
        description="What that send changed so the email asked for what was payable then "
        "(the envelope's send_note), in sentences; null when it went out as drafted",
    )


class BillHistoryOut(ApiModel):
    bill_id: str
    items: list[SentRecordOut] = Field(description="The emails that carried the bill, oldest first")


class DraftRequest(ApiModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    bill_ids: list[Annotated[str, StringConstraints(pattern=r"^[0-9]{1,18}$")]] = Field(
        min_length=1, max_length=500, description="Clio bill ids, as the invoices list gives them"
    )


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)  # "leave it out", not null: null is refused


def _one_line_no_default(schema: dict[str, Any]) -> None:
    _no_default(schema)
    schema["pattern"] = HEADER_TEXT_PATTERN  # the subject is a header: one line of text


class EditRequest(ApiModel):
    """At least one of subject and body; a field left out keeps its text."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"minProperties": 1}, defer_build=True
    )

    subject: str = Field(
        default=None, min_length=1, max_length=300, json_schema_extra=_one_line_no_default
    )
    body: str = Field(default=None, min_length=1, max_length=20_000, json_schema_extra=_no_default)


class BatchOut(ApiModel):
    batch_id: str
    envelopes: list[EnvelopeOut]


class SendStarted(ApiModel):
    execution_id: str
    envelope: EnvelopeOut


class BatchSendStarted(ApiModel):
    execution_id: str


class AllocationOut(ApiModel):
    bill_id: str
    account: Literal["trust", "operating"]
    amount_cents: int


class UserRef(ApiModel):
    user_id: str
    email: str | None


class TransactionOut(ApiModel):
    id: str
    kind: Literal["payment", "refund"]
    amount_cents: int
    currency: str
    method: Literal["card", "ach"]
    status: Literal["pending", "succeeded", "failed"]
    account: Literal["trust", "operating"]
    created_at: datetime
    updated_at: datetime
    allocations: list[AllocationOut]
    refundable_cents: int
    refunded_cents: int
    payment_id: str | None = Field(description="Refunds: the payment refunded")
    disputed: bool
    dispute_status: (
        Literal[
            "warning_needs_response",
            "warning_under_review",
            "warning_closed",
            "needs_response",
            "under_review",
            "won",
            "lost",
            "prevented",
        ]
        | None
    ) = Field(
        description="Stripe's latest dispute status: warning_* for an inquiry (no money moves), "
        "needs_response/under_review for an open chargeback (its amount is out of Paid (GL) "
        "until won), then won, lost, warning_closed or prevented"
    )
    failure_reason: str | None
    reference: str = Field(
        description="The reference the client's confirmation and receipt show (BB-XXXX-XXXX)"
    )
    requested_by: UserRef | None = Field(
        default=None, description="Refunds: the firm user who made the refund"
    )
    surcharge_cents: int = Field(
        default=0,
        description="Payments: a card surcharge charged with the payment, beside amount_cents "
        "(which pays the bills); refunds: the part of the payment's surcharge refunded with "
        "it, in proportion. Never in Paid (GL)",
    )
    surcharge_refunded_cents: int = Field(
        default=0, description="Payments: the part of the surcharge whose refunds succeeded"
    )
    surcharge_note: str | None = Field(
        default=None,
        description="The surcharge in a sentence, in money format, as the clerk reads it",
    )

    @classmethod
    def of(cls, txn: Transaction) -> TransactionOut:
        return cls(
            id=txn.id,
            kind=txn.kind.value,
            amount_cents=txn.amount_cents,
            currency=txn.currency,
            method=txn.method.value,
            status=txn.status.value,
            account=txn.account.value,
            created_at=txn.created_at,
            updated_at=txn.updated_at,
            allocations=[
                AllocationOut(
                    bill_id=str(a.bill_id), account=a.account.value, amount_cents=a.amount_cents
                )
                for a in txn.allocations
            ],
            refundable_cents=txn.refundable_cents,
            refunded_cents=txn.refunded_cents,
            payment_id=txn.payment_id,
            disputed=txn.disputed,
            dispute_status=txn.dispute_status,  # type: ignore[arg-type]
            failure_reason=txn.failure_reason,
            reference=receipt_reference(txn.id),
            requested_by=UserRef(user_id=txn.requested_by_user_id, email=txn.requested_by_email)
            if txn.requested_by_user_id
            else None,
            surcharge_cents=txn.surcharge_cents,
            surcharge_refunded_cents=txn.surcharge_refunded_cents,
            surcharge_note=surcharge_note(txn),
        )


class PaymentLinkOut(ApiModel):
    id: str
    url: str
    bill_ids: list[str]
    currency: str
    bills: list[Invoice]
    transactions: list[TransactionOut]


class RefundRequest(ApiModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    # Strict: JSON true, "5000" and 1e2 are not amounts (pydantic's lax mode would take them).
    amount_cents: StrictInt | None = Field(
        default=None, gt=0, description="Leave out to refund all that is left on the payment"
    )


class LineTransactionOut(ApiModel):
    """A payment or refund behind a reconciliation line, as the clerk records it in Clio."""

    id: str
    kind: Literal["payment", "refund"]
    date: datetime = Field(description="When it was made (a refund: when it succeeded)")
    method: Literal["card", "ach"]
    account: Literal["trust", "operating"]
    amount_cents: int = Field(description="Its money on this line's bill")
    reference: str = Field(description="Stripe's id of the money movement (pi_…, re_…)")


class RecordedOut(ApiModel):
    """A clerk's note that the line is recorded in Clio; it holds until a sync shows Clio
    caught up (then the line leaves the report)."""

    by_user_id: str
    by_email: str | None
    at: datetime
    status: Literal["waiting_for_sync", "not_in_clio_at_last_sync"] = Field(
        description="waiting_for_sync: no sync since the note; not_in_clio_at_last_sync: a "
        "sync since found Clio's balance still unchanged"
    )


class RecordedRequest(ApiModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    bill_id: Annotated[str, StringConstraints(pattern=r"^[0-9]{1,18}$")]
    action: Literal["record_payment", "record_refund"]
    amount_cents: StrictInt = Field(gt=0, description="The line's amount, as the report gave it")


class ReconciliationItem(ApiModel):
    bill_id: str
    number: str
    client_name: str
    clio_url: str
    currency: str
    bill_state: BillState = Field(description="The bill's state in Clio")
    paid_gl_cents: int
    refunded_cents: int
    pending_cents: int = Field(description="Bank (ACH) payments not settled yet")
    clio_reflected_cents: int = Field(
        description="How far Clio's outstanding has fallen since our first payment on the bill"
    )
    overpaid_cents: int = Field(
        description="Collected beyond what Clio says the bill owes, across all its payment "
        "links (pending money included)"
    )
    unpayable_cents: int = Field(
        description="Settled money of ours on a bill Clio no longer takes payments on (void, "
        "deleted)"
    )
    action: Literal["record_payment", "record_refund", "refund_overpayment", "refund_or_apply"]
    amount_cents: int = Field(description="The amount of this action")
    to_record_cents: int = Field(
        description="The amount staff should record in Clio (record_* actions; else 0)"
    )
    note: str = Field(description="What staff should do, in a sentence")
    transactions: list[LineTransactionOut] = Field(
        description="The payments (record_refund: the refunds) behind the amount, newest first"
    )
    payment_date: datetime | None = Field(description="The newest of them: its date")
    method: Literal["card", "ach"] | None
    account: Literal["trust", "operating"] | None
    reference: str | None = Field(description="Their references, newest first, `; `-separated")
    recorded_in_clio: RecordedOut | None


class ReconciliationOut(ApiModel):
    items: list[ReconciliationItem]
    generated_at: datetime
