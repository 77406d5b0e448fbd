"""GET /onboarding, POST /onboarding/steps/{step} (skip, undo) and POST
/onboarding/templates/reviewed: the onboarding checklist (docs/web-ui.md, "Onboarding"). Not in
api.md: each step computed from the real state, and what the person marked (a skip, the
templates reviewed) remembered."""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from pydantic import ConfigDict, Field

from billbridge.api_errors import error_responses
from billbridge.bootstrap import api_services
from billbridge.domain.onboarding import Checklist, Mark, StepId
from billbridge.services.onboarding import parse_mark, parse_step
from routes.context import firm_id_of
from routes.payment_accounts import PaymentAccountOut
from schemas import ApiModel

router = Router()

StepName = Literal["clio", "trust_account", "operating_account", "sender", "templates", "done"]


class StepOut(ApiModel):
    id: StepName
    title: str
    status: Literal["done", "todo", "skipped"]
    detail: str = Field(description="Where the step stands, in a sentence")
    decided_by: Literal["state", "person"] = Field(
        description="state: computed from the firm's real state; person: what they marked"
    )
    can_mark_done: bool = Field(
        description="Whether a person may mark it done (else only skip it, or undo a skip)"
    )


class SenderOut(ApiModel):
    sender_name: str | None
    reply_to: str | None
    sender_address: str | None = Field(description="The SES identity envelopes are sent from")
    identity_status: Literal["verified", "pending", "failed", "not_found"]


class OnboardingOut(ApiModel):
    steps: list[StepOut]
    current_step: StepName = Field(description="The first step neither done nor skipped")
    complete: bool
    clio: Literal["connected", "not_connected"]
    payment_accounts: list[PaymentAccountOut]
    sender: SenderOut

    @classmethod
    def of(cls, checklist: Checklist) -> OnboardingOut:
        facts = checklist.facts
        accounts = facts["payment_accounts"]
        assert isinstance(accounts, dict)
        sender = facts["sender"]
        assert isinstance(sender, dict)
        return cls(
            steps=[
                StepOut(
                    id=s.id.value,
                    title=s.title,
                    status=s.status.value,
                    detail=s.detail,
                    decided_by=s.decided_by,  # type: ignore[arg-type]
                    can_mark_done=s.can_mark_done,
                )
                for s in checklist.steps
            ],
            current_step=checklist.current.value,
            complete=checklist.complete,
            clio=facts["clio"],  # type: ignore[arg-type]
            payment_accounts=[PaymentAccountOut.of(a) for a in accounts.values()],
            sender=SenderOut(**sender),
        )


MarkableStep = Literal["clio", "trust_account", "operating_account", "sender", "templates"]


class MarkRequest(ApiModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    status: Literal["skipped", "todo"] = Field(
        description="skipped (come back later), or todo (undo a skip, or a review)"
    )


@router.get(
    "/onboarding",
    summary="The onboarding checklist, from the firm's real state",
    tags=["onboarding"],
    responses={200: {"description": "The steps and where the firm is"}, **error_responses(401)},
)
def get_onboarding() -> OnboardingOut:
    return OnboardingOut.of(api_services().onboarding.checklist(firm_id_of(router)))


@router.post(
    "/onboarding/steps/<step>",
    summary="Skip an onboarding step, or undo a skip (or a review)",
    tags=["onboarding"],
    responses={
        200: {"description": "The checklist after the mark"},
        **error_responses(400, 401, 404, 415, 422),
    },
)
def mark_step(
    step: Annotated[MarkableStep, Path()],
    request: Annotated[MarkRequest, Body()],
) -> OnboardingOut:
    firm_id = firm_id_of(router)
    checklist = api_services().onboarding.mark(
        firm_id, parse_step(step), parse_mark(request.status)
    )
    return OnboardingOut.of(checklist)


@router.post(
    "/onboarding/templates/reviewed",
    summary="Say the email templates were reviewed (the one step only a person can finish)",
    tags=["onboarding"],
    responses={200: {"description": "The checklist after the mark"}, **error_responses(401)},
)
def templates_reviewed() -> OnboardingOut:
    firm_id = firm_id_of(router)
    checklist = api_services().onboarding.mark(firm_id, StepId.TEMPLATES, Mark.DONE)
    return OnboardingOut.of(checklist)
