"""GET /payment-accounts and POST /payment-accounts/onboarding: the firm's trust and operating
Stripe connected accounts, their status and what Stripe still requires, and the hosted
onboarding (a Stripe Account Link) for one of them (api.md, "Accounts, roles and
onboarding")."""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import ConfigDict, Field

from billbridge.api_errors import error_responses
from billbridge.bootstrap import api_services
from billbridge.domain.accounts import AuditAction
from billbridge.domain.payment_accounts import ConnectedAccount
from billbridge.services.payment_accounts import account_kind
from routes.accounts import record
from routes.context import firm_id_of
from schemas import ApiModel

router = Router()

AccountName = Literal["trust", "operating"]


class PaymentAccountOut(ApiModel):
    account: AccountName
    status: Literal["not_started", "pending", "ready"]
    requirements: list[str] = Field(
        description="What Stripe still requires (its requirement names), past due first"
    )
    message: str = Field(description="The account's state, in a sentence")
    disabled_reason: str | None = Field(description="Why Stripe disabled the account, if it did")
    charges_enabled: bool
    payouts_enabled: bool

    @classmethod
    def of(cls, account: ConnectedAccount) -> PaymentAccountOut:
        return cls(
            account=account.account.value,
            status=account.status.value,
            requirements=account.requirements,
            message=account.message,
            disabled_reason=account.disabled_reason,
            charges_enabled=account.charges_enabled,
            payouts_enabled=account.payouts_enabled,
        )


class PaymentAccountsOut(ApiModel):
    accounts: list[PaymentAccountOut]


class OnboardingRequest(ApiModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    account: AccountName


class OnboardingLinkOut(ApiModel):
    account: AccountName
    onboarding_url: str = Field(
        description="Stripe's hosted onboarding (an Account Link): single use, for minutes"
    )
    status: Literal["not_started", "pending", "ready"]


def onboarding_urls(account: str) -> tuple[str, str]:
    """Where Stripe sends the person back: refresh_url (the link expired: the web UI asks for
    a new one) and return_url (they finished or left: the web UI shows the status)."""
    base = api_services().web_base_url.rstrip("/")
    return (
        f"{base}/#/onboarding?stripe=refresh&account={account}",
        f"{base}/#/onboarding?stripe=return&account={account}",
    )


@router.get(
    "/payment-accounts",
    summary="The firm's trust and operating Stripe accounts",
    tags=["payment accounts"],
    responses={200: {"description": "Both accounts, trust first"}, **error_responses(401)},
)
def list_payment_accounts() -> PaymentAccountsOut:
    accounts = api_services().payment_accounts.list(firm_id_of(router))
    return PaymentAccountsOut(accounts=[PaymentAccountOut.of(a) for a in accounts])


@router.post(
    "/payment-accounts/onboarding",
    summary="Start or resume a Stripe account's onboarding: a new Account Link",
    tags=["payment accounts"],
    responses={
        201: {"description": "The link to send the person to"},
        **error_responses(400, 401, 415, 422, 502),
    },
)
def start_onboarding(
    request: Annotated[OnboardingRequest, Body()],
) -> Response[OnboardingLinkOut]:
    firm_id = firm_id_of(router)
    kind = account_kind(request.account)
    refresh_url, return_url = onboarding_urls(kind.value)
    account, url = api_services().payment_accounts.start_onboarding(
        firm_id, kind, refresh_url, return_url
    )
    record(
        AuditAction.PAYMENT_ACCOUNT_UPDATED,
        {"account": kind.value, "change": "onboarding_link", "status": account.status.value},
        router,
    )
    body = OnboardingLinkOut(account=kind.value, onboarding_url=url, status=account.status.value)
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON, body=body)
