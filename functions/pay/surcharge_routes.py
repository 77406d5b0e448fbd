"""The card surcharge as the pay page shows it before the client pays (issue 12): whether one
applies to this link's client and at what rate, in a sentence. Checkout adds it to the
operating session of a card payment; bank payments and trust deposits never carry one."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from pay_http import Token, private_json
from pydantic import BaseModel, Field

from billbridge.api_errors import error_responses
from billbridge.bootstrap import pay_plans
from billbridge.domain.surcharge import percent_text

router = Router()


class SurchargeOut(BaseModel):
    applies: bool = Field(description="A card payment of this link's invoices carries one")
    percent: float = Field(description="The rate (0 when none applies)")
    note: str | None = Field(description="What the client reads, before paying")


@router.get(
    "/pay/<token>/surcharge",
    summary="The card surcharge this link's client would pay on invoices, if any",
    tags=["pay"],
    responses={200: {"description": "Whether and how much"}, **error_responses(404, 422)},
)
def surcharge(
    token: Token,
) -> Response[SurchargeOut]:
    settings, applies = pay_plans().surcharge_of(token)
    if not applies:
        body = SurchargeOut(applies=False, percent=0, note=None)
    else:
        rate = percent_text(settings)
        body = SurchargeOut(
            applies=True,
            percent=settings.basis_points / 100,
            note=(
                f"Paying invoices by card adds a {rate} card surcharge, shown before you pay "
                "and on your receipt. Paying by bank (ACH) adds nothing, and trust deposits "
                "never carry a surcharge."
            ),
        )
    return private_json(200, body)
