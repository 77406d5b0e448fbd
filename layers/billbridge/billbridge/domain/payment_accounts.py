"""A firm's two Stripe connected accounts (trust and operating) and their onboarding: what
each one's status is, what Stripe still requires, and which observation of an account may
replace the one stored. Pure rules, no I/O (docs/payments.md, "Onboarding the two accounts").

Status, from the Account object Stripe sends (`account.updated`) or answers:
- `not_started`: no connected account was created for it yet;
- `ready`: Stripe lets it take charges and receive payouts (`charges_enabled` and
  `payouts_enabled`), nothing is past due and nothing disables it;
- `pending`: anything else (onboarding begun, or Stripe asks for more).
A checkout needs the accounts its bills are paid into to be ready.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from billbridge.domain.errors import RuleViolation
from billbridge.domain.payments import Account


class AccountStatus(StrEnum):
    NOT_STARTED = "not_started"
    PENDING = "pending"
    READY = "ready"


@dataclass(frozen=True)
class StripeAccountState:
    """What Stripe says about a connected account, read from its Account object."""

    stripe_account_id: str
    charges_enabled: bool
    payouts_enabled: bool
    details_submitted: bool
    currently_due: tuple[str, ...]
    past_due: tuple[str, ...]
    disabled_reason: str | None
    # The account's metadata, set when we created it: whose account this is.
    firm_id: str | None = None
    account: Account | None = None


def _strings(raw: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in raw) if isinstance(raw, list) else ()


def parse_stripe_account(obj: Mapping[str, Any]) -> StripeAccountState:
    """The Account object in Stripe's wire shape (`requirements.currently_due`, ...)."""
    if obj.get("object") != "account" or not isinstance(obj.get("id"), str):
        raise ValueError("not a Stripe account object")
    requirements = obj.get("requirements") or {}
    reason = requirements.get("disabled_reason")
    metadata = obj.get("metadata") or {}
    kind = metadata.get("account")
    return StripeAccountState(
        stripe_account_id=str(obj["id"]),
        charges_enabled=obj.get("charges_enabled") is True,
        payouts_enabled=obj.get("payouts_enabled") is True,
        details_submitted=obj.get("details_submitted") is True,
        currently_due=_strings(requirements.get("currently_due")),
        past_due=_strings(requirements.get("past_due")),
        disabled_reason=str(reason) if reason else None,
        firm_id=str(metadata["firm_id"]) if metadata.get("firm_id") else None,
        account=Account(kind) if kind in (Account.TRUST.value, Account.OPERATING.value) else None,
    )


@dataclass(frozen=True)
class ConnectedAccount:
    """One of a firm's two accounts as we keep it: the Stripe account (once created) and the
    newest state Stripe told us, with the time of the event (or read) it came from."""

    firm_id: str
    account: Account
    stripe_account_id: str | None = None
    charges_enabled: bool = False
    payouts_enabled: bool = False
    details_submitted: bool = False
    currently_due: tuple[str, ...] = ()
    past_due: tuple[str, ...] = ()
    disabled_reason: str | None = None
    # Stripe's `created` of the newest account.updated applied (0: none yet).
    observed_at: int = 0
    version: int = 0  # bumped by every write, for conditional writes

    @property
    def status(self) -> AccountStatus:
        return account_status(self)

    @property
    def requirements(self) -> list[str]:
        """What Stripe still requires, past due first, each once."""
        return list(dict.fromkeys((*self.past_due, *self.currently_due)))

    @property
    def message(self) -> str:
        return status_message(self)

    def observed(self, state: StripeAccountState, at: int) -> ConnectedAccount:
        return replace(
            self,
            stripe_account_id=state.stripe_account_id,
            charges_enabled=state.charges_enabled,
            payouts_enabled=state.payouts_enabled,
            details_submitted=state.details_submitted,
            currently_due=state.currently_due,
            past_due=state.past_due,
            disabled_reason=state.disabled_reason,
            observed_at=max(self.observed_at, at),
        )


def account_status(account: ConnectedAccount) -> AccountStatus:
    if account.stripe_account_id is None:
        return AccountStatus.NOT_STARTED
    if (
        account.charges_enabled
        and account.payouts_enabled
        and not account.past_due
        and account.disabled_reason is None
    ):
        return AccountStatus.READY
    return AccountStatus.PENDING


# Stripe's requirement names in words a person reads (the common ones; others are spelled out).
_REQUIREMENT_WORDS = {
    "business_type": "the type of business",
    "business_profile.mcc": "the business category",
    "business_profile.url": "the business website",
    "company.name": "the firm's legal name",
    "company.tax_id": "the firm's tax ID",
    "external_account": "the bank account payouts go to",
    "tos_acceptance.date": "acceptance of Stripe's terms",
    "tos_acceptance.ip": "acceptance of Stripe's terms",
}


def requirement_words(name: str) -> str:
    if name in _REQUIREMENT_WORDS:
        return _REQUIREMENT_WORDS[name]
    if name.startswith("representative."):
        return "details of the firm's representative"
    if name.startswith("company.address") or name.startswith("company."):
        return "the firm's " + name.removeprefix("company.").split(".")[0].replace("_", " ")
    return "the " + name.replace(".", " ").replace("_", " ")


def status_message(account: ConnectedAccount) -> str:
    what = "trust account" if account.account is Account.TRUST else "operating account"
    status = account.status
    if status is AccountStatus.NOT_STARTED:
        return f"The {what} has not been connected to Stripe yet."
    if status is AccountStatus.READY:
        return f"The {what} is ready to take payments."
    needed = list(dict.fromkeys(requirement_words(r) for r in account.requirements))
    if needed:
        listed = needed[0] if len(needed) == 1 else ", ".join(needed[:-1]) + " and " + needed[-1]
        return f"Stripe still needs {listed} for the {what}."
    if account.disabled_reason:
        return f"Stripe has paused the {what} ({account.disabled_reason.replace('_', ' ')})."
    return f"Stripe is reviewing the {what}."


def accept_observation(
    current: ConnectedAccount, state: StripeAccountState, at: int
) -> ConnectedAccount | None:
    """The account after Stripe's observation at `at` (an event's `created`), or None when
    it must change nothing: it is about another Stripe account, older than the state we keep,
    or says nothing new."""
    if current.stripe_account_id != state.stripe_account_id:
        return None
    if at < current.observed_at:
        return None
    updated = current.observed(state, at)
    if replace(updated, observed_at=current.observed_at) == current:
        return None
    return updated


def needs_ready(accounts: Mapping[Account, ConnectedAccount], needed: set[Account]) -> None:
    """Refuse a checkout whose bills go into an account that cannot take payments yet."""
    missing = [a for a in (Account.TRUST, Account.OPERATING) if a in needed]
    missing = [
        a for a in missing if a not in accounts or accounts[a].status is not AccountStatus.READY
    ]
    if missing:
        names = " and ".join(f"{a.value} account" for a in missing)
        raise RuleViolation(
            f"This firm cannot take online payments yet: its {names} is not set up.",
            code="payments_not_set_up",
        )
