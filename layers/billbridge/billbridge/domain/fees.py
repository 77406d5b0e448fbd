"""How the platform recovers Stripe's processing fees: an application fee on **operating**
charges only, never on a trust charge (docs/payments.md, "Processing fees").

Every charge is a destination charge made on the platform, so the platform's balance pays
Stripe's fee on each one. On an operating charge the platform keeps an application fee
(`payment_intent_data.application_fee_amount`): that charge's own processing cost, taken out
of what is transferred to the operating account. A trust charge is transferred whole: no
application fee, so every cent the client paid into trust reaches the trust account; its
processing cost is the platform's, priced into what the firm pays for the service (billed to
the firm, never taken from a trust charge).
"""

from __future__ import annotations

from dataclasses import dataclass

from billbridge.domain.errors import InvalidInput
from billbridge.domain.payments import Account, Method


@dataclass(frozen=True)
class FeeSchedule:
    """The processing cost the platform recovers on an operating charge (Stripe's US list
    prices: cards 2.9% + 30 cents, ACH Direct Debit 0.8% capped at $5.00)."""

    card_basis_points: int = 290
    card_fixed_cents: int = 30
    ach_basis_points: int = 80
    ach_cap_cents: int = 500


STRIPE_US_LIST_PRICES = FeeSchedule()


def _ceil_basis_points(amount_cents: int, basis_points: int) -> int:
    return -(-amount_cents * basis_points // 10_000)


def application_fee_cents(
    account: Account,
    method: Method,
    amount_cents: int,
    schedule: FeeSchedule = STRIPE_US_LIST_PRICES,
) -> int:
    """What the platform keeps of one charge: 0 for every trust charge; for an operating
    charge its processing cost, rounded up to the cent, never more than the charge."""
    if isinstance(amount_cents, bool) or not isinstance(amount_cents, int) or amount_cents < 0:
        raise InvalidInput("The amount must be a whole number, zero or more.")
    if account is Account.TRUST or amount_cents == 0:
        return 0
    if method is Method.ACH:
        fee = min(
            _ceil_basis_points(amount_cents, schedule.ach_basis_points), schedule.ach_cap_cents
        )
    else:
        fee = (
            _ceil_basis_points(amount_cents, schedule.card_basis_points) + schedule.card_fixed_cents
        )
    return min(fee, amount_cents)
