"""Connecting a firm to Clio (C1) and keeping its bill webhook alive (C4, X1).

The authorize URL carries a signed, short-lived, single-use state naming the firm and the user
who asked, bound to their browser by a cookie (domain/oauth_state.py); the callback accepts it
once, from that browser only, and records which Clio account and user approved (who_am_i).
Webhooks expire in Clio (31 days at most), so every successful sync checks the firm's
subscription and renews it a week before it lapses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from aws_lambda_powertools import Logger

from billbridge.domain.connection import ClioConnection, Region
from billbridge.domain.errors import ClioUnreachable, InvalidInput
from billbridge.domain.oauth_state import (
    ConnectingUser,
    ConnectStart,
    already_used,
    check_browser,
    start_connect,
    verify_state,
)
from billbridge.domain.sync import SyncTrigger, utcnow
from billbridge.services.ports import ClioGateway, ConnectionRepository, ConnectStateRepository

logger = Logger(child=True)

WEBHOOK_LIFETIME = timedelta(days=30)
WEBHOOK_RENEW_BEFORE = timedelta(days=7)


@dataclass(frozen=True)
class AuthorizeStart:
    """Where to send the browser, and the secret its cookie must hold for the callback."""

    authorize_url: str
    browser_secret: str
    expires_at: datetime


def _int_or_none(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


class ConnectService:
    def __init__(
        self,
        *,
        connections: ConnectionRepository,
        connect_states: ConnectStateRepository,
        state_key: bytes,
        oauth_client_for: Callable[[Region], ClioGateway],
        request_sync: Callable[[str, SyncTrigger], object],
        webhooks: WebhookSubscriptions,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._connections = connections
        self._states = connect_states
        self._state_key = state_key
        self._client_for = oauth_client_for
        self._request_sync = request_sync
        self._webhooks = webhooks
        self._clock = clock

    def status(self, firm_id: str) -> tuple[str, ClioConnection | None]:
        """connected, reconnect_needed (Clio refused our tokens) or not_connected."""
        connection = self._connections.get(firm_id)
        if connection is None:
            return "not_connected", None
        return ("reconnect_needed" if connection.needs_reconnect else "connected"), connection

    def authorize(self, firm_id: str, user: ConnectingUser, region: Region) -> AuthorizeStart:
        """Start connecting: a state bound to `user`'s browser, recorded for single use."""
        start: ConnectStart = start_connect(
            firm_id, region, user.user_id, self._state_key, self._clock()
        )
        self._states.record(start.intent, user)
        return AuthorizeStart(
            authorize_url=self._client_for(region).authorize_url(start.state),
            browser_secret=start.browser_secret,
            expires_at=start.intent.expires_at,
        )

    def complete(
        self,
        *,
        code: str | None,
        state: str | None,
        error: str | None,
        browser_secret: str | None,
    ) -> ClioConnection:
        if not state:
            raise InvalidInput("The state parameter is missing.", field="state")
        now = self._clock()
        intent = verify_state(state, self._state_key, now)
        check_browser(intent, browser_secret)
        user = self._states.consume(intent, now)
        if user is None:
            raise already_used()
        if error:
            raise InvalidInput(f"Clio did not authorize the connection ({error}).", field="error")
        if not code:
            raise InvalidInput("The code parameter is missing.", field="code")
        client = self._client_for(intent.region)
        tokens = client.exchange_code(code)
        who = client.who_am_i()
        nested = who.get("account")
        account: dict[str, Any] = nested if isinstance(nested, dict) else {}
        previous = self._connections.get(intent.firm_id)
        same_region = previous is not None and previous.region == intent.region
        connection = ClioConnection(
            firm_id=intent.firm_id,
            region=intent.region,
            access_token=tokens.access_token,
            refresh_token=tokens.refresh_token,
            access_expires_at=tokens.expires_at,
            connected_at=self._clock(),
            clio_user_id=_int_or_none(who.get("id")),
            clio_user_name=_text_or_none(who.get("name")),
            clio_user_email=_text_or_none(who.get("email")),
            clio_account_id=_int_or_none(account.get("id")),
            clio_account_name=_text_or_none(account.get("name")),
            connected_by_user_id=user.user_id,
            connected_by_email=user.email,
            webhook_id=previous.webhook_id if previous and same_region else None,
            webhook_secret=previous.webhook_secret if previous and same_region else None,
            webhook_expires_at=previous.webhook_expires_at if previous and same_region else None,
        )
        self._connections.save(connection)
        logger.info(
            "Clio connected",
            extra={
                "firm_id": intent.firm_id,
                "region": intent.region.value,
                "clio_account_id": connection.clio_account_id,
                "clio_user_id": connection.clio_user_id,
                "connected_by": user.user_id,
            },
        )
        try:
            connection = self._webhooks.keep(connection, client)
        except ClioUnreachable:
            logger.warning("Clio webhook subscription failed; the schedule keeps data fresh")
        self._request_sync(intent.firm_id, SyncTrigger.CONNECT)
        return connection


class WebhookSubscriptions:
    """Keeps each connected firm subscribed to its Clio bill changes."""

    def __init__(
        self,
        *,
        connections: ConnectionRepository,
        public_api_base_url: str | None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._connections = connections
        self._public_api_base_url = public_api_base_url.rstrip("/") if public_api_base_url else None
        self._clock = clock

    def webhook_url(self, firm_id: str) -> str | None:
        if not self._public_api_base_url:
            return None
        return f"{self._public_api_base_url}/webhooks/clio?{urlencode({'firm_id': firm_id})}"

    def keep(self, connection: ClioConnection, clio: ClioGateway) -> ClioConnection:
        """Subscribe to the firm's bill changes, or renew the subscription before it lapses."""
        url = self.webhook_url(connection.firm_id)
        if url is None:
            return connection
        now = self._clock()
        if (
            connection.webhook_id is not None
            and connection.webhook_expires_at is not None
            and connection.webhook_expires_at - now > WEBHOOK_RENEW_BEFORE
        ):
            return connection
        expires_at = now + WEBHOOK_LIFETIME
        if connection.webhook_id is not None and connection.webhook_secret:
            try:
                clio.renew_webhook(connection.webhook_id, expires_at)
                renewed = replace(connection, webhook_expires_at=expires_at)
                self._save_webhook(renewed)
                return renewed
            except ClioUnreachable:
                logger.warning("Clio webhook renewal failed; subscribing anew")
        created = clio.create_bill_webhook(url, expires_at=expires_at)
        secret = str(created["shared_secret"])
        subscribed = replace(
            connection,
            webhook_id=int(created["id"]),
            webhook_secret=secret,
            webhook_expires_at=expires_at,
        )
        self._save_webhook(subscribed)
        if created.get("status") != "enabled":
            # Clio also sends a handshake to the URL; activating here covers a handshake that
            # reached us before the secret was stored, or not at all.
            try:
                clio.activate_webhook(int(created["id"]), secret)
            except ClioUnreachable:
                logger.info("Clio webhook activation deferred to the handshake")
        return subscribed

    def _save_webhook(self, connection: ClioConnection) -> None:
        # Tokens may have been refreshed since `connection` was read: keep the stored ones.
        current = self._connections.get(connection.firm_id) or connection
        self._connections.save(
            replace(
                current,
                webhook_id=connection.webhook_id,
                webhook_secret=connection.webhook_secret,
                webhook_expires_at=connection.webhook_expires_at,
            )
        )
