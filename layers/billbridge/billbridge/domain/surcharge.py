"""Card surcharges (issue 12): off by default. When the firm turns it on, a percentage of up to
3% is added to **card** payments of **operating** bills (invoices) only: never to trust
requests (a trust deposit must be the client's money in full), never to bank (ACH) payments,
and never for a client whose Clio address is in a state the firm excludes (default CT, ME, MA
and PR, where card surcharges are barred; LawPay also excludes NY). A client whose Clio address
has no state is not surcharged: we cannot show they are outside the excluded states.

The surcharge is charged in the operating session beside the bills it is for, recorded in the
ledger as an entry of its own (kind `surcharge`, no bill allocation), and never counted in a
bill's Paid (GL) or in reconciliation. Pure rules, no I/O.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)

from billbridge.domain.money import format_money
from billbridge.domain.payments import Account, Method, Transaction, TxnKind

DEFAULT_EXCLUDED_STATES = ("CT", "ME", "MA", "PR")
MAX_PERCENT = 3

# A state's two-letter code (any case; kept upper case).
StateCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2}$")]
# A Decimal (DynamoDB keeps numbers as Decimal, never float), written as a JSON number.
Percent = Annotated[
    Decimal,
    PlainSerializer(float, return_type=float, when_used="json"),
    WithJsonSchema({"type": "number", "minimum": 0, "maximum": MAX_PERCENT, "multipleOf": 0.01}),
]


class SurchargeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: StrictBool = False
    percent: Percent = Field(default=Decimal(3), description="Up to 3, in steps of 0.01")
    excluded_states: list[StateCode] = Field(
        default_factory=lambda: list(DEFAULT_EXCLUDED_STATES),
        max_length=60,
        description="Two-letter codes of the states where no surcharge is added",
    )

    @field_validator("percent", mode="before")
    @classmethod
    def _a_number(cls, value: object) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            raise ValueError("the percent must be a number from 0 to 3")
        percent = Decimal(str(value))
        if not percent.is_finite() or not 0 <= percent <= MAX_PERCENT:
            raise ValueError("the percent must be a number from 0 to 3")
        if percent != percent.quantize(Decimal("0.01")):
            raise ValueError("the percent has at most two decimals (2.75, not 2.755)")
        return percent

    @field_validator("excluded_states")
    @classmethod
    def _codes(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(code.upper() for code in value))

    @property
    def basis_points(self) -> int:
        return int(self.percent * 100)


def applies(
    settings: SurchargeSettings, account: Account, method: Method, client_state: str | None
) -> bool:
    """Whether a surcharge is added to this part of a payment."""
    if not settings.enabled or settings.basis_points <= 0:
        return False
    if method is not Method.CARD or account is not Account.OPERATING:
        return False
    if client_state is None:
        return False
    return client_state.upper() not in settings.excluded_states


def surcharge_cents(amount_cents: int, basis_points: int) -> int:
    """The surcharge on `amount_cents`, rounded half up to the cent (never more than 3%)."""
    if amount_cents <= 0 or basis_points <= 0:
        return 0
    return (amount_cents * basis_points + 5_000) // 10_000


def refund_share(
    surcharge_cents: int, paid_cents: int, claimed_after_cents: int, surcharge_claimed_cents: int
) -> int:
    """The part of a payment's surcharge a refund gives back (card-network rules: a refunded
    card payment refunds its surcharge, in proportion on a partial refund).

    `paid_cents` is the bills' money of the payment, `claimed_after_cents` the bills' money its
    refunds claim once this refund is counted, `surcharge_claimed_cents` the surcharge its
    earlier refunds claim. The rule is cumulative: after refunds claiming R of P, the surcharge
    claimed is `S * R / P` rounded half up to the cent, and this refund gives back what that
    adds to what earlier refunds gave. So several partial refunds give back what one refund of
    their sum would, never more than S in all (R never exceeds P), and the refund that takes
    the last of the bills' money gives back the last of the surcharge (R = P: exactly S). A
    refund that failed gave nothing back, so its share goes to the later refunds."""
    if surcharge_cents <= 0 or paid_cents <= 0:
        return 0
    claimed = min(max(claimed_after_cents, 0), paid_cents)
    cumulative = (2 * surcharge_cents * claimed + paid_cents) // (2 * paid_cents)
    return max(0, min(cumulative, surcharge_cents) - surcharge_claimed_cents)


def percent_text(settings: SurchargeSettings) -> str:
    """ "3%" or "2.5%": the rate as the client reads it."""
    bp = settings.basis_points
    whole, rest = divmod(bp, 100)
    return f"{whole}%" if rest == 0 else f"{whole}.{rest:02d}".rstrip("0") + "%"


def card_surcharge(
    settings: SurchargeSettings,
    account: Account,
    method: Method,
    client_state: str | None,
    amount_cents: int,
) -> int:
    """The surcharge in cents on this part of a payment (0 when none applies)."""
    if not applies(settings, account, method, client_state):
        return 0
    return surcharge_cents(amount_cents, settings.basis_points)


def surcharge_items(cents: int, settings: SurchargeSettings) -> tuple[tuple[str, int], ...]:
    """The Checkout line item that shows the surcharge to the client, if any."""
    if cents <= 0:
        return ()
    return ((f"Card surcharge ({percent_text(settings)})", cents),)


def surcharge_note(txn: Transaction) -> str | None:
    """The surcharge of a payment or refund in a sentence the clerk reads; None without one."""
    if txn.surcharge_cents <= 0:
        return None
    surcharge = format_money(txn.surcharge_cents, txn.currency)
    total = format_money(txn.amount_cents + txn.surcharge_cents, txn.currency)
    if txn.kind is TxnKind.REFUND:
        return (
            f"With it, {surcharge} of the card surcharge was given back in proportion: "
            f"the client gets {total} in all."
        )
    note = (
        f"The client also paid a {surcharge} card surcharge ({total} in all), kept apart "
        "from the bills."
    )
    if txn.surcharge_refunded_cents > 0:
        refunded = format_money(txn.surcharge_refunded_cents, txn.currency)
        note += f" {refunded} of it has been refunded."
    return note
