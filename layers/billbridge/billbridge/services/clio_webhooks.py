"""Clio bill webhooks (C4, X1): a verified delivery is applied to the store within seconds.

Deliveries repeat and arrive out of order; the store's `clio_updated_at` guard makes an older
version lose to a newer one, so a replay changes nothing. Verification uses the shared secret
Clio gave when we subscribed, over the raw body.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from aws_lambda_powertools import Logger

from billbridge.domain.bills import bill_from_clio
from billbridge.domain.connection import ClioConnection
from billbridge.domain.errors import InvalidInput, NotFound, Unauthenticated
from billbridge.domain.sync import utcnow
from billbridge.services.ports import BillRepository, ConnectionRepository

logger = Logger(child=True)


@dataclass(frozen=True)
class WebhookResult:
    event: str
    bill_id: int
    applied: bool


class ClioWebhookService:
    def __init__(
        self,
        *,
        bills: BillRepository,
        connections: ConnectionRepository,
        verify: Callable[[str, bytes, str | None], bool],
        clio_web_host_for: Callable[[ClioConnection], str],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._bills = bills
        self._connections = connections
        self._verify = verify
        self._web_host_for = clio_web_host_for
        self._clock = clock

    def deliver(self, firm_id: str | None, raw_body: bytes, signature: str | None) -> WebhookResult:
        if not firm_id:
            raise InvalidInput("The firm_id query parameter is missing.", field="firm_id")
        connection = self._connections.get(firm_id)
        if connection is None or not connection.webhook_secret:
            raise NotFound("No Clio webhook is registered for this address.")
        if not self._verify(connection.webhook_secret, raw_body, signature):
            raise Unauthenticated("The X-Hook-Signature does not match the body.")
        try:
            payload = json.loads(raw_body, parse_float=Decimal)
            data = payload["data"]
            event = str(payload.get("meta", {}).get("event", "updated"))
            bill_id = int(data["id"])
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInput(
                f"This is not a Clio webhook delivery ({exc}).", field="body"
            ) from None
        now = self._clock()
        if event == "deleted":
            applied = self._bills.mark_deleted(firm_id, bill_id, now)
        else:
            try:
                bill = bill_from_clio(data, self._web_host_for(connection))
            except (KeyError, ValueError, TypeError) as exc:
                raise InvalidInput(
                    f"The bill in the delivery is incomplete ({exc}).", field="data"
                ) from None
            applied = self._bills.save_clio_bills(firm_id, [bill], now) == 1
        logger.info(
            "Clio webhook applied",
            extra={"firm_id": firm_id, "bill_id": bill_id, "event": event, "applied": applied},
        )
        return WebhookResult(event=event, bill_id=bill_id, applied=applied)
