"""Disputes as Stripe reports them (`charge.dispute.*` events), in our words. Pure rules.

Stripe's dispute statuses (docs.stripe.com/api/disputes/object; docs.stripe.com/disputes):
- An **inquiry** (`warning_needs_response`, `warning_under_review`) is a card issuer asking
  about a payment before any chargeback: no funds are withdrawn and the payment can still be
  refunded. It ends `warning_closed` (no chargeback) or escalates to a chargeback.
- A **chargeback** (`needs_response`, `under_review`) reverses the payment at once: Stripe
  withdraws the disputed amount (`charge.dispute.funds_withdrawn`). It ends `won` (the funds
  are reinstated, `charge.dispute.funds_reinstated`) or `lost` (they stay withdrawn).
- `prevented`: Stripe's dispute prevention blocked or resolved it before it became a formal
  chargeback (changelog 2025-08-27 "Adds support for Dispute Preventions"): no dispute funds
  moved.

Events arrive in any order, so each one only moves a payment's dispute forward: its status by
rank (a closed dispute never reopens), its funds from none to withdrawn to reinstated. The
funds follow the money: the event type, the dispute's `balance_transactions` (negative:
withdrawn, positive: reinstated) and its status each say how far the money has gone.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum, StrEnum

INQUIRY_STATUSES = frozenset({"warning_needs_response", "warning_under_review"})
CHARGEBACK_STATUSES = frozenset({"needs_response", "under_review"})
CLOSED_STATUSES = frozenset({"warning_closed", "won", "lost", "prevented"})
STATUSES = INQUIRY_STATUSES | CHARGEBACK_STATUSES | CLOSED_STATUSES

_RANK = {
    "warning_needs_response": 1,
    "warning_under_review": 2,
    "needs_response": 3,
    "under_review": 4,
    **dict.fromkeys(CLOSED_STATUSES, 5),
}


class DisputeStage(StrEnum):
    """What a dispute means for the payment's bills (each stage but CLOSED is a bill flag)."""

    INQUIRY = "inquiry"  # questions asked; money untouched
    CHARGEBACK = "chargeback"  # money withdrawn while the bank decides
    LOST = "chargeback_lost"  # the money went back to the client for good
    CLOSED = "closed"  # over, the money stayed (warning_closed, won, prevented)


class Funds(IntEnum):
    """How far a dispute has moved the payment's money (only ever forward)."""

    NONE = 0
    WITHDRAWN = 1
    REINSTATED = 2


def rank(status: str | None) -> int:
    return _RANK.get(status or "", 0)


def later_status(current: str | None, reported: str) -> str | None:
    """The status to keep: the reported one if it is a later step, else the current one."""
    return reported if rank(reported) > rank(current) else current


def stage(status: str | None) -> DisputeStage | None:
    if status in INQUIRY_STATUSES:
        return DisputeStage.INQUIRY
    if status in CHARGEBACK_STATUSES:
        return DisputeStage.CHARGEBACK
    if status == "lost":
        return DisputeStage.LOST
    if status in CLOSED_STATUSES:
        return DisputeStage.CLOSED
    return None


def funds_reported(event_type: str, status: str, balance_amounts: Iterable[int]) -> Funds:
    """How far the money has gone, by everything one event says."""
    amounts = list(balance_amounts)
    if (
        event_type == "charge.dispute.funds_reinstated"
        or any(a > 0 for a in amounts)
        or status == "won"
    ):
        return Funds.REINSTATED
    if (
        event_type == "charge.dispute.funds_withdrawn"
        or any(a < 0 for a in amounts)
        or status in CHARGEBACK_STATUSES
        or status == "lost"
    ):
        return Funds.WITHDRAWN
    return Funds.NONE
