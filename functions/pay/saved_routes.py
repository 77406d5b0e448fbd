"""The pay page's saved cards and bank accounts (issue 12): list them, pay with one, forget one.
A saved method is the link's client's, of the link's firm: another client's link never finds
it (404). The page names it by our id (`sm_…`), never by Stripe's."""

from __future__ import annotations

import secrets
from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path
from pay_http import Token, private_json
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints

from billbridge.api_errors import error_responses
from billbridge.bootstrap import pay_saved
from billbridge.domain.payments import Method
from billbridge.domain.receipts import reference
from billbridge.domain.saved_methods import StoredMethod, save_consent_text

router = Router()

METHOD_ID = r"^sm_[0-9a-f]{24}$"


class SavedMethodOut(BaseModel):
    id: str = Field(description="Our id of the saved method (never Stripe's)")
    method: Literal["card", "ach"]
    label: str = Field(description='As the client names it: "Visa ending 4242"')
    display: str = Field(description='Shown on the page: "Visa •••• 4242"')

    @classmethod
    def of(cls, m: StoredMethod) -> SavedMethodOut:
        return cls(id=m.id, method=m.method.method.value, label=m.method.label, display=m.display)


class SaveConsentOut(BaseModel):
    card: str = Field(description="What saving a card allows, shown next to the tick")
    ach: str = Field(description="The ACH debit authorization saving a bank account gives")


class SavedMethodsOut(BaseModel):
    saved_methods: list[SavedMethodOut]
    consent: SaveConsentOut


class SavedPayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bill_ids: list[Annotated[str, StringConstraints(pattern=r"^[0-9]{1,18}$")]] = Field(
        min_length=1, max_length=10, description="Bill ids of this link"
    )
    amount_cents: StrictInt | None = Field(
        default=None, gt=0, description="Leave out to pay all that is payable on the chosen bills"
    )


class SavedPaymentPartOut(BaseModel):
    transaction_id: str
    account: Literal["trust", "operating"]
    amount_cents: int
    status: Literal["succeeded", "processing", "failed"]
    reference: str = Field(description="The reference on the receipt: BB-XXXX-XXXX")


class FallbackCheckout(BaseModel):
    bill_ids: list[str]
    amount_cents: int
    method: Literal["card"] = "card"


class SavedPaymentOut(BaseModel):
    payments: list[SavedPaymentPartOut]
    currency: str
    message: str = Field(description="What happened, in sentences and money format")
    checkout: FallbackCheckout | None = Field(
        description="When the card's bank asked for the client's confirmation: the body of a "
        "`POST /pay/{token}/checkout` that pays the rest on Stripe's page"
    )


class ForgottenOut(BaseModel):
    message: str


@router.get(
    "/pay/<token>/saved-methods",
    summary="The link's client's saved cards and bank accounts, and the saving consent",
    tags=["pay"],
    responses={200: {"description": "Saved methods"}, **error_responses(404, 422)},
)
def list_saved(
    token: Token,
) -> Response[SavedMethodsOut]:
    _, methods, firm_name = pay_saved().for_token(token)
    body = SavedMethodsOut(
        saved_methods=[SavedMethodOut.of(m) for m in methods],
        consent=SaveConsentOut(
            card=save_consent_text(firm_name, Method.CARD),
            ach=save_consent_text(firm_name, Method.ACH),
        ),
    )
    return private_json(200, body)


@router.post(
    "/pay/<token>/saved-methods/<method_id>/pay",
    summary="Pay some or all bills of the link with a saved card or bank account",
    tags=["pay"],
    responses={
        201: {"description": "The payment (one per account paid into) and what happened"},
        **error_responses(400, 404, 409, 415, 422, 502),
    },
)
def pay_saved_method(
    token: Token,
    method_id: Annotated[str, Path(pattern=METHOD_ID, description="A saved method's id")],
    request: Annotated[SavedPayIn, Body()],
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=100)] = None,
) -> Response[SavedPaymentOut]:
    paid = pay_saved().pay(
        token,
        method_id,
        [int(i) for i in request.bill_ids],
        request.amount_cents,
        idempotency_key or secrets.token_urlsafe(12),
    )
    again = paid.needs_checkout
    body = SavedPaymentOut(
        payments=[
            SavedPaymentPartOut(
                transaction_id=p.txn_id,
                account=p.account.value,
                amount_cents=p.amount_cents,
                status=p.status,  # type: ignore[arg-type]
                reference=reference(p.txn_id),
            )
            for p in paid.parts
        ],
        currency=paid.currency,
        message=paid.message,
        checkout=(
            FallbackCheckout(
                bill_ids=[str(b) for b in again.bill_ids], amount_cents=again.amount_cents
            )
            if again is not None
            else None
        ),
    )
    return private_json(201, body)


@router.post(
    "/pay/<token>/saved-methods/<method_id>/forget",
    summary="Forget a saved card or bank account (detached in Stripe: never charged again)",
    tags=["pay"],
    responses={200: {"description": "Forgotten"}, **error_responses(404, 415, 422, 502)},
)
def forget_saved_method(
    token: Token,
    method_id: Annotated[str, Path(pattern=METHOD_ID, description="A saved method's id")],
) -> Response[ForgottenOut]:
    gone = pay_saved().forget(token, method_id)
    body = ForgottenOut(
        message=f"{gone.method.label} is forgotten: it will not be offered or charged again."
    )
    return private_json(200, body)
