"""The pay page's payment plans (issue 12): the client sees the firm's limits and this link's
plans, chooses one (installment, week or month, start date, card or bank with the ACH debit
authorization) and goes to Stripe to save the method; installments then come off-session.

Routes on their own router, so the pay page itself (app.py, page.py) stays as it is."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from pay_http import Token, private_json
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StringConstraints

from billbridge.api_errors import error_responses
from billbridge.bootstrap import pay_plans
from billbridge.domain.payments import Method
from billbridge.domain.plans import Every, Plan, mandate_text
from billbridge.services.plans import summary

router = Router()


class ClientPlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bill_ids: list[Annotated[str, StringConstraints(pattern=r"^[0-9]{1,18}$")]] = Field(
        min_length=1, max_length=10, description="Bill ids of this link"
    )
    installment_cents: StrictInt = Field(gt=0)
    every: Literal["week", "month"]
    start_on: date
    method: Literal["card", "ach"] = "card"
    mandate_accepted: StrictBool = Field(
        default=False,
        description="For a bank account: the client accepted the debit authorization shown",
    )


class MethodIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: Literal["card", "ach"] = "card"
    mandate_accepted: StrictBool = False


class ClientInstallment(BaseModel):
    number: int
    due_on: date
    amount_cents: int
    status: str


class ClientPlan(BaseModel):
    id: str
    bill_ids: list[str]
    status: str
    summary: str = Field(description="The plan in a sentence, money in money format")
    method: str | None
    installments: list[ClientInstallment]

    @classmethod
    def of(cls, plan: Plan) -> ClientPlan:
        return cls(
            id=plan.id,
            bill_ids=[str(b) for b in plan.bill_ids],
            status=plan.status.value,
            summary=summary(plan),
            method=plan.method.label if plan.method else None,
            installments=[
                ClientInstallment(
                    number=i.number,
                    due_on=i.due_on,
                    amount_cents=i.amount_cents,
                    status=i.status.value,
                )
                for i in plan.installments
            ],
        )


class PlanOptions(BaseModel):
    offered: bool
    min_installment_cents: int
    max_installments: int
    mandate_text: str = Field(
        description="The bank debit authorization a client accepts before saving a bank account"
    )


class ClientPlansOut(BaseModel):
    options: PlanOptions
    plans: list[ClientPlan]


class ClientPlanOut(BaseModel):
    plan: ClientPlan
    setup_url: str | None = Field(
        description="Stripe's page where the client saves the method; null when the plan uses "
        "a card or bank account the client saved before (the plan is active at once)"
    )
    message: str | None = Field(default=None, description="What happened, in a sentence")


@router.get(
    "/pay/<token>/payment-plans",
    summary="The firm's plan limits and this link's payment plans",
    tags=["pay"],
    responses={200: {"description": "Options and plans"}, **error_responses(404, 422)},
)
def list_plans(
    token: Token,
) -> Response[ClientPlansOut]:
    plans = pay_plans()
    link, limits, found = plans.client_view(token)
    firm_name = plans.firm_name(link.firm_id)
    body = ClientPlansOut(
        options=PlanOptions(
            offered=limits.client_may_choose,
            min_installment_cents=limits.min_installment_cents,
            max_installments=limits.max_installments,
            mandate_text=mandate_text(firm_name, "the installments you choose"),
        ),
        plans=[ClientPlan.of(p) for p in found],
    )
    return private_json(200, body)


@router.post(
    "/pay/<token>/payment-plans",
    summary="Choose a payment plan for bills of this link, then save its card or bank account",
    tags=["pay"],
    responses={
        201: {"description": "The plan (waiting for its method) and where to save it"},
        **error_responses(400, 404, 409, 415, 422, 502),
    },
)
def choose_plan(
    token: Token,
    request: Annotated[ClientPlanIn, Body()],
) -> Response[ClientPlanOut]:
    view = pay_plans().client_create(
        token,
        [int(i) for i in request.bill_ids],
        request.installment_cents,
        Every(request.every),
        request.start_on,
        Method(request.method),
        request.mandate_accepted,
    )
    message = None
    if view.setup_url is None and view.plan.method is not None:
        message = (
            f"Your payment plan is set up on your saved {view.plan.method.label}: "
            f"{summary(view.plan)}."
        )
    body = ClientPlanOut(plan=ClientPlan.of(view.plan), setup_url=view.setup_url, message=message)
    return private_json(201, body)


@router.post(
    "/pay/<token>/payment-plans/<plan_id>/method",
    summary="Save another card or bank account for an open plan of this link",
    tags=["pay"],
    responses={
        201: {"description": "The plan and where to save the new method"},
        **error_responses(400, 404, 409, 415, 422, 502),
    },
)
def change_method(
    token: Token,
    plan_id: Annotated[str, Path(pattern=r"^plan_[A-Za-z0-9]{1,40}$")],
    request: Annotated[MethodIn, Body()],
) -> Response[ClientPlanOut]:
    view = pay_plans().client_change_method(
        token, plan_id, Method(request.method), request.mandate_accepted
    )
    assert view.setup_url is not None
    body = ClientPlanOut(plan=ClientPlan.of(view.plan), setup_url=view.setup_url)
    return private_json(201, body)
