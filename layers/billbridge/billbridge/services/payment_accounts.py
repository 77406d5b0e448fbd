"""Onboarding a firm's trust and operating Stripe connected accounts (docs/payments.md,
"Onboarding the two accounts"): list them with their status and what Stripe still requires,
start (or resume) onboarding with a new Account Link, and follow Stripe's `account.updated`.

Concurrency: an account is created once per firm and kind. Stripe is asked with a
deterministic idempotency key (two requests at once get the same account back), and the id is
stored conditionally (the version read); a request that loses the race uses the stored one.

Events: `account.updated` may arrive twice, late or out of order. An event older than the state
stored changes nothing. Otherwise the account is read again from Stripe (its state now, not
the event's copy), and written only if the stored version is still the one read; a writer
that lost re-reads both. So the newest state wins, and a repeat writes nothing.

Audit: each event that changed an account is recorded in the firm's audit trail as
`payment_account.updated` by Stripe (the actor), at the event's time, with the status and the
requirements before and after; its entry id comes from the event id, so a repeat (which
changes nothing anyway) could never record it twice.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from billbridge.domain.accounts import (
    STRIPE_ACTOR,
    AuditAction,
    AuditEntry,
    entry_id_of_event,
)
from billbridge.domain.errors import InvalidInput
from billbridge.domain.payment_accounts import (
    ConnectedAccount,
    accept_observation,
    parse_stripe_account,
)
from billbridge.domain.payments import Account

if TYPE_CHECKING:  # the ports only as annotations: none is loaded with this module
    from billbridge.services.ports import (
        AuditLog,
        PaymentGateway,
        PaymentStore,
        SettingsRepository,
    )

log = logging.getLogger(__name__)
MAX_RETRIES = 5


def account_kind(raw: Any) -> Account:
    if raw not in (Account.TRUST.value, Account.OPERATING.value):
        raise InvalidInput("The account must be trust or operating.", field="account")
    return Account(raw)


class PaymentAccountsService:
    def __init__(
        self,
        store: PaymentStore,
        gateway: Callable[[], PaymentGateway],
        settings: SettingsRepository | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self._store = store
        self._gateway = gateway
        self._settings = settings
        self._audit = audit

    def list(self, firm_id: str) -> list[ConnectedAccount]:
        """Both accounts, trust first; one onboarding has not begun is `not_started`."""
        stored = self._store.connected_accounts(firm_id)
        return [
            stored.get(kind) or ConnectedAccount(firm_id=firm_id, account=kind)
            for kind in (Account.TRUST, Account.OPERATING)
        ]

    def start_onboarding(
        self, firm_id: str, kind: Account, refresh_url: str, return_url: str
    ) -> tuple[ConnectedAccount, str]:
        """The account (created on the first call) and a new Account Link's URL."""
        account = self._ensure_account(firm_id, kind)
        assert account.stripe_account_id is not None
        url = self._gateway().create_account_link(
            account.stripe_account_id, refresh_url, return_url
        )
        return account, url

    def _ensure_account(self, firm_id: str, kind: Account) -> ConnectedAccount:
        from billbridge.services.ports import ConnectedAccountRequest, StaleTransaction

        for _ in range(MAX_RETRIES):
            current = self._store.connected_accounts(firm_id).get(kind) or ConnectedAccount(
                firm_id=firm_id, account=kind
            )
            if current.stripe_account_id is not None:
                return current
            name = self._business_name(firm_id, kind)
            state = self._gateway().create_connected_account(
                ConnectedAccountRequest(
                    firm_id=firm_id,
                    account=kind,
                    business_name=name,
                    idempotency_key=_account_key(firm_id, kind, name),
                )
            )
            try:
                return self._store.save_connected_account(current.observed(state, 0))
            except StaleTransaction:
                stored = self._store.connected_accounts(firm_id).get(kind)
                if stored is not None and stored.stripe_account_id != state.stripe_account_id:
                    log.warning(
                        "firm %s: Stripe account %s was made but %s was stored first; unused",
                        firm_id,
                        state.stripe_account_id,
                        stored.stripe_account_id,
                    )
                continue  # another request stored one first: use it
        raise RuntimeError(f"could not record the {kind.value} account of firm {firm_id}")

    def _business_name(self, firm_id: str, kind: Account) -> str:
        firm_name = self._settings.get(firm_id).firm_name if self._settings else firm_id
        return f"{firm_name} ({kind.value})"

    # -- account.updated ----------------------------------------------------------------------

    def account_updated(self, event: dict[str, Any]) -> str:
        """Follow one `account.updated` event; answers what it did: applied, stale (older than
        what is stored, or nothing new), or ignored (not an account of ours)."""
        from billbridge.services.ports import StaleTransaction

        obj = (event.get("data") or {}).get("object") or {}
        try:
            announced = parse_stripe_account(obj)
        except ValueError:
            return "ignored"
        stripe_id = str(event.get("account") or announced.stripe_account_id)
        if stripe_id != announced.stripe_account_id or announced.firm_id is None:
            return "ignored"
        if announced.account is None:
            return "ignored"
        firm_id, kind = announced.firm_id, announced.account
        created = event.get("created")
        at = created if isinstance(created, int) and not isinstance(created, bool) else 0
        for _ in range(MAX_RETRIES):
            current = self._store.connected_accounts(firm_id).get(kind)
            if current is None or current.stripe_account_id != stripe_id:
                log.warning("account.updated for %s, not a recorded account", stripe_id)
                return "ignored"
            if at < current.observed_at:
                return "stale"
            now = self._gateway().retrieve_account(stripe_id)  # Stripe's state now
            updated = accept_observation(current, now, at)
            if updated is None:
                return "stale"
            try:
                self._store.save_connected_account(updated)
            except StaleTransaction:
                continue  # another event was recorded meanwhile: read both again
            self._record(event, current, updated, at)
            return "applied"
        raise RuntimeError(f"account.updated for {stripe_id} kept losing races; Stripe retries")

    def _record(
        self, event: dict[str, Any], before: ConnectedAccount, after: ConnectedAccount, at: int
    ) -> None:
        if self._audit is None:
            return
        moment = datetime.fromtimestamp(at, UTC) if at > 0 else datetime.now(UTC)
        self._audit.record(
            AuditEntry(
                id=entry_id_of_event(str(event.get("id") or "")),
                firm_id=after.firm_id,
                at=moment,
                actor=STRIPE_ACTOR,
                action=AuditAction.PAYMENT_ACCOUNT_UPDATED,
                object={
                    "account": after.account.value,
                    "stripe_account_id": after.stripe_account_id,
                    "event_id": str(event.get("id") or ""),
                    "status": {"from": before.status.value, "to": after.status.value},
                    "requirements": {"from": before.requirements, "to": after.requirements},
                },
            )
        )


def _account_key(firm_id: str, kind: Account, name: str) -> str:
    """The same request gets the same account back for 24 hours (Stripe's idempotency)."""
    digest = hashlib.sha256(f"{firm_id}\n{kind.value}\n{name}".encode()).hexdigest()[:24]
    return f"connected-account-{digest}"
