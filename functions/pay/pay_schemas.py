"""The pay function's request and answer models (the public OpenAPI document comes from them)
and how a service's answer becomes one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StringConstraints

from billbridge.domain.receipts import reference
from billbridge.services.payments import Confirmation, FirmContact, LinkView

BillStatus = Literal["payable", "processing", "paid", "unavailable"]


class PayBill(BaseModel):
    id: str
    number: str
    kind: Literal["invoice", "trust_request"]
    total_cents: int
    outstanding_cents: int = Field(
        description="What may be paid now: Outstanding (Clio) minus our payments Clio does not "
        "show yet and what other checkouts hold; 0 when the bill is not awaiting payment"
    )
    status: BillStatus = Field(
        description="payable: something can be paid now; processing: a bank (ACH) payment is "
        "on its way and nothing else is due; paid: nothing is left; unavailable: void, "
        "deleted, not issued, or held by another link's open checkout (the note says which)"
    )
    processing_cents: int = Field(description="Bank (ACH) money on its way to the bill")
    past_due: bool = Field(description="Payable, and its due date has passed")
    due_at: str | None
    pdf_url: str = Field(description="The bill's PDF, on this pay link (?download=1 saves it)")
    note: str | None = Field(
        default=None,
        description="Why nothing (or not all) can be paid now, in a sentence (else null)",
    )


class ReceiptOut(BaseModel):
    transaction_id: str
    kind: Literal["payment", "refund"]
    amount_cents: int
    method: Literal["card", "ach"]
    status: Literal["pending", "succeeded", "failed"]
    account: Literal["trust", "operating"]
    reference: str = Field(description="The reference the receipt email and confirmation show")
    created_at: str
    surcharge_cents: int = Field(
        default=0,
        description="A payment's card surcharge, or the part of it a refund gave back; "
        "beside amount_cents (the bills' money)",
    )


class FirmOut(BaseModel):
    name: str
    contact_name: str | None
    reply_to: str | None


class PayLinkOut(BaseModel):
    firm: str
    firm_contact: FirmOut
    bills: list[PayBill]
    total_cents: int
    currency: str
    receipts: list[ReceiptOut] = Field(description="The link's payments and refunds, oldest first")


class ConfirmationBill(BaseModel):
    id: str
    number: str
    kind: Literal["invoice", "trust_request", "bill"]
    amount_cents: int


class ConfirmationOut(BaseModel):
    state: Literal["succeeded", "processing", "failed", "not_paid"]
    transaction_id: str | None
    amount_cents: int | None
    currency: str | None
    method: Literal["card", "ach"] | None
    account: Literal["trust", "operating"] | None
    created_at: str | None
    reference: str | None
    bills: list[ConfirmationBill]
    firm: FirmOut


class CheckoutIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bill_ids: list[Annotated[str, StringConstraints(pattern=r"^[0-9]{1,18}$")]] = Field(
        min_length=1, max_length=10, description="Bill ids of this link, as the page lists them"
    )
    # Strict: JSON true, "5000" and 1e2 are not amounts (pydantic's lax mode would take them).
    amount_cents: StrictInt | None = Field(
        default=None, gt=0, description="Leave out to pay all that is payable on the chosen bills"
    )
    method: Literal["card", "ach"] = "card"
    save_method: StrictBool = Field(
        default=False,
        description="Save the card or bank account for later payments to the firm (Stripe "
        "keeps it on the client's Customer)",
    )
    mandate_accepted: StrictBool = Field(
        default=False,
        description="Saving a bank account: the client accepted the debit authorization shown",
    )


class CheckoutSessionOut(BaseModel):
    id: str
    url: str
    account: Literal["trust", "operating"]
    amount_cents: int = Field(description="What the client pays here, any surcharge included")
    surcharge_cents: int = Field(
        default=0, description="The card surcharge included in amount_cents (operating only)"
    )


class CheckoutOut(BaseModel):
    checkout_sessions: list[CheckoutSessionOut]


def pay_link_out(view: LinkView, token: str) -> PayLinkOut:
    today = datetime.now(UTC).date()
    firm = view.firm or FirmContact(view.firm_name, None, None)
    return PayLinkOut(
        firm=view.firm_name,
        firm_contact=FirmOut(
            name=firm.name, contact_name=firm.contact_name, reply_to=firm.reply_to
        ),
        bills=[
            PayBill(
                id=str(b.bill.id),
                number=b.bill.number,
                kind=b.bill.kind.value,
                total_cents=b.bill.total_cents,
                outstanding_cents=b.payable_cents,
                status=b.status,  # type: ignore[arg-type]
                processing_cents=b.processing_cents,
                past_due=b.past_due(today),
                due_at=b.bill.due_at.isoformat() if b.bill.due_at else None,
                pdf_url=f"/pay/{token}/bills/{b.bill.id}.pdf",
                note=b.note,
            )
            for b in view.bills
        ],
        total_cents=view.total_payable_cents,
        currency=view.currency,
        receipts=[
            ReceiptOut(
                transaction_id=t.id,
                kind=t.kind.value,
                amount_cents=t.amount_cents,
                method=t.method.value,
                status=t.status.value,
                account=t.account.value,
                reference=reference(t.id),
                created_at=t.created_at.isoformat(),
                surcharge_cents=t.surcharge_cents,
            )
            for t in view.transactions
        ],
    )


def confirmation_out(done: Confirmation) -> ConfirmationOut:
    firm = FirmOut(
        name=done.firm.name, contact_name=done.firm.contact_name, reply_to=done.firm.reply_to
    )
    facts = done.facts
    if facts is None:
        return ConfirmationOut(
            state="not_paid",
            transaction_id=None,
            amount_cents=None,
            currency=None,
            method=None,
            account=None,
            created_at=None,
            reference=None,
            bills=[],
            firm=firm,
        )
    return ConfirmationOut(
        state=done.state,  # type: ignore[arg-type]
        transaction_id=facts.transaction_id,
        amount_cents=facts.amount_cents,
        currency=facts.currency,
        method=facts.method.value,
        account=facts.account.value,
        created_at=facts.at.isoformat(),
        reference=facts.reference,
        bills=[
            ConfirmationBill(
                id=str(line.bill_id),
                number=line.bill_number,
                kind=line.kind,  # type: ignore[arg-type]
                amount_cents=line.amount_cents,
            )
            for line in facts.lines
        ],
        firm=firm,
    )
