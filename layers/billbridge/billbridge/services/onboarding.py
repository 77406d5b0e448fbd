"""The onboarding checklist: each step computed from the real state, what a person marked
kept per step (domain/onboarding.py), so the checklist remembers where they are."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from billbridge.domain.errors import InvalidInput
from billbridge.domain.onboarding import (
    ORDER,
    Checklist,
    Mark,
    Step,
    StepId,
    check_mark,
    final_step,
    step,
)
from billbridge.domain.payment_accounts import AccountStatus
from billbridge.domain.payments import Account
from billbridge.domain.sync import utcnow
from billbridge.services.payment_accounts import PaymentAccountsService

if TYPE_CHECKING:  # the ports only as annotations: none is loaded with this module
    from billbridge.services.ports import (
        ConnectionRepository,
        OnboardingRepository,
        SenderIdentity,
        SettingsRepository,
    )

_IDENTITY_WORDS = {
    "verified": "is verified in SES",
    "pending": "is waiting for its SES verification",
    "failed": "failed its SES verification",
    "not_found": "is not an SES identity yet",
}


def parse_step(raw: str) -> StepId:
    try:
        return StepId(raw)
    except ValueError:
        known = ", ".join(s.value for s in ORDER)
        raise InvalidInput(f"There is no onboarding step {raw!r}. The steps are {known}.") from None


def parse_mark(raw: Any) -> Mark:
    if raw not in {m.value for m in Mark}:
        raise InvalidInput("The status must be done, skipped or todo.", field="status")
    return Mark(raw)


class OnboardingService:
    def __init__(
        self,
        *,
        marks: OnboardingRepository,
        connections: ConnectionRepository,
        accounts: PaymentAccountsService,
        settings: SettingsRepository,
        identity: Callable[[], SenderIdentity],
        sender_address: str | None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._marks = marks
        self._connections = connections
        self._accounts = accounts
        self._settings = settings
        self._identity = identity
        self._sender_address = sender_address
        self._clock = clock

    def checklist(self, firm_id: str) -> Checklist:
        marked = self._marks.marks(firm_id)

        def mark_of(step_id: StepId) -> Mark | None:
            raw = marked.get(step_id.value)
            return Mark(raw) if raw in {m.value for m in Mark} else None

        steps: list[Step] = []
        facts: dict[str, object] = {}
        connection = self._connections.get(firm_id)
        clio_ok = connection is not None and not connection.needs_reconnect
        if connection is None:
            clio_detail = "Clio is not connected yet."
        elif connection.needs_reconnect:
            clio_detail = "Clio refused our access: connect it again."
        else:
            who = connection.clio_account_name or "the firm's Clio account"
            clio_detail = f"Connected to {who}."
        facts["clio"] = "connected" if clio_ok else "not_connected"
        steps.append(step(StepId.CLIO, clio_ok, mark_of(StepId.CLIO), clio_detail))

        accounts = {a.account: a for a in self._accounts.list(firm_id)}
        facts["payment_accounts"] = accounts
        for step_id, kind in (
            (StepId.TRUST_ACCOUNT, Account.TRUST),
            (StepId.OPERATING_ACCOUNT, Account.OPERATING),
        ):
            account = accounts[kind]
            ready = account.status is AccountStatus.READY
            steps.append(step(step_id, ready, mark_of(step_id), account.message))

        settings = self._settings.get(firm_id)
        identity = "not_found"
        if self._sender_address:
            identity = self._identity().verification_status(self._sender_address)
        facts["sender"] = {
            "sender_name": settings.sender_name,
            "reply_to": str(settings.reply_to) if settings.reply_to else None,
            "sender_address": self._sender_address,
            "identity_status": identity,
        }
        missing = [
            what
            for what, value in (
                ("a sender name", settings.sender_name),
                ("a reply-to", settings.reply_to),
            )
            if not value
        ]
        address = self._sender_address or "The sending address"
        sentence = f"{address} {_IDENTITY_WORDS.get(identity, 'has an unknown SES status')}."
        if missing:
            sentence = f"Set {' and '.join(missing)} in Settings. {sentence}"
        sender_ok = not missing and identity == "verified"
        steps.append(step(StepId.SENDER, sender_ok, mark_of(StepId.SENDER), sentence))

        templates_detail = (
            "Read the invoice and trust request emails in Settings, then mark them reviewed."
        )
        steps.append(step(StepId.TEMPLATES, False, mark_of(StepId.TEMPLATES), templates_detail))
        steps.append(final_step(steps))
        return Checklist(tuple(steps), facts)

    def mark(self, firm_id: str, step_id: StepId, mark: Mark) -> Checklist:
        check_mark(step_id, mark)
        self._marks.mark(firm_id, step_id.value, mark.value, self._clock())
        return self.checklist(firm_id)
