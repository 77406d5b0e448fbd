"""Payment plans (api.md "Getting paid"): staff make one over a client's bills, read it, cancel
it. Installments are charged off-session on the client's saved method (services/plans.py)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints

from billbridge.api_errors import error_responses
from billbridge.bootstrap import api_plans
from billbridge.domain.plans import Every, Plan
from routes.context import firm_id_of

router = Router()

PlanId = Annotated[
    str, Path(pattern=r"^plan_[A-Za-z0-9]{1,40}$", description="A payment plan's id")
]


class PlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bill_ids: list[Annotated[str, StringConstraints(pattern=r"^[0-9]{1,18}$")]] = Field(
        min_length=1, max_length=10, description="One client's bills, payable now"
    )
    # Strict: JSON true, "5000" and 1e2 are not amounts.
    installment_cents: StrictInt = Field(gt=0, description="Each installment; the last less")
    every: Literal["week", "month"]
    start_on: date = Field(description="The first installment's date (today or later)")


class PartOut(BaseModel):
    account: Literal["trust", "operating"]
    amount_cents: int
    status: Literal["pending", "succeeded", "failed"]
    transaction_id: str


class InstallmentOut(BaseModel):
    number: int
    due_on: date
    amount_cents: int
    status: Literal[
        "scheduled", "charging", "processing", "paid", "retry_scheduled", "failed", "canceled"
    ]
    attempts: int
    next_attempt_on: date | None
    failure: str | None = Field(description="Stripe's code for the last failed attempt")
    parts: list[PartOut]


class PlanOut(BaseModel):
    id: str
    bill_ids: list[str]
    client_id: str
    link_id: str
    installment_cents: int
    every: Literal["week", "month"]
    start_on: date
    currency: str
    status: Literal["awaiting_method", "active", "completed", "canceled", "failed"]
    method: str | None = Field(description='The saved method, as "Visa ending 4242"')
    installments: list[InstallmentOut]
    pay_url: str | None = Field(
        default=None, description="The client's pay page, where they save the plan's method"
    )

    @classmethod
    def of(cls, plan: Plan, pay_url: str | None = None) -> PlanOut:
        return cls(
            id=plan.id,
            bill_ids=[str(b) for b in plan.bill_ids],
            client_id=str(plan.client_id),
            link_id=plan.link_id,
            installment_cents=plan.installment_cents,
            every=plan.every.value,
            start_on=plan.start_on,
            currency=plan.currency,
            status=plan.status.value,
            method=plan.method.label if plan.method else None,
            installments=[
                InstallmentOut(
                    number=i.number,
                    due_on=i.due_on,
                    amount_cents=i.amount_cents,
                    status=i.status.value,
                    attempts=i.attempts,
                    next_attempt_on=i.next_attempt_on,
                    failure=i.failure,
                    parts=[
                        PartOut(
                            account=p.account.value,
                            amount_cents=p.amount_cents,
                            status=p.status.value,
                            transaction_id=p.txn_id,
                        )
                        for p in i.parts
                    ],
                )
                for i in plan.installments
            ],
            pay_url=pay_url,
        )


@router.post(
    "/payment-plans",
    summary="Make a payment plan over one client's bills",
    tags=["plans"],
    responses={
        201: {"description": "The plan, waiting for the client's saved method or active"},
        **error_responses(400, 401, 404, 415, 422),
    },
)
def create_plan(request: Annotated[PlanIn, Body()]) -> Response[PlanOut]:
    plans = api_plans()
    firm_id = firm_id_of(router)
    plan = plans.create(
        firm_id,
        [int(i) for i in request.bill_ids],
        request.installment_cents,
        Every(request.every),
        request.start_on,
    )
    link = plans.link_for_plan(plan)
    body = PlanOut.of(plan, plans.link_url(link) if link else None)
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON, body=body)


@router.get(
    "/payment-plans/<plan_id>",
    summary="A payment plan and its installments",
    tags=["plans"],
    responses={200: {"description": "The plan"}, **error_responses(401, 404, 422)},
)
def get_plan(plan_id: PlanId) -> PlanOut:
    return PlanOut.of(api_plans().get(firm_id_of(router), plan_id))


@router.post(
    "/payment-plans/<plan_id>/cancel",
    summary="Cancel a payment plan: nothing more is charged",
    tags=["plans"],
    responses={
        200: {"description": "The canceled plan"},
        **error_responses(401, 404, 409, 422),
    },
)
def cancel_plan(plan_id: PlanId) -> PlanOut:
    return PlanOut.of(api_plans().cancel(firm_id_of(router), plan_id))
