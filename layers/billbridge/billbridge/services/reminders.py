"""Reminders (X3): the schedule's use case, and the clerk's pause and resume.

At each tick, for every connected firm with reminders on, every bill awaiting payment is
checked against the rules of domain/reminders.py; a bill whose next slot is due gets a draft
reminder envelope, written together with the claim of that (bill, slot) in one conditional
write, and only a claim that wins starts the send workflow (the same Step Functions workflow
and SES send step as any envelope, so the bill PDF and the bill's payment link come along).
A duplicate or concurrent tick, or a retry of the whole invocation, finds the slot claimed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from aws_lambda_powertools import Logger

from billbridge.domain.bills import BillState, StoredBill
from billbridge.domain.envelopes import (
    Batch,
    Envelope,
    EnvelopePurpose,
    EnvelopeStatus,
    drafted_amounts,
    new_batch_id,
    new_envelope_id,
)
from billbridge.domain.errors import NotFound, RuleViolation
from billbridge.domain.reminders import (
    next_reminder_at,
    reminder_anchor,
    reminder_text,
    slot_to_send,
)
from billbridge.domain.settings import FirmSettings
from billbridge.domain.sync import utcnow
from billbridge.services.ports import (
    BillRepository,
    ConnectionRepository,
    EnvelopeRepository,
    NoPlans,
    PlanCoverage,
    ReminderStore,
    SendStarter,
    SentRecord,
    SettingsRepository,
)

logger = Logger(child=True)

PAGE_SIZE = 100
# A claimed reminder still a draft this long after its claim: the tick that claimed it died
# before starting its send, so a later tick starts it (the send step's claim sends it once).
RESTART_AFTER = timedelta(minutes=5)


@dataclass(frozen=True)
class TickResult:
    firms: int
    reminders: int


class RemindersService:
    def __init__(
        self,
        *,
        connections: ConnectionRepository,
        settings: SettingsRepository,
        bills: BillRepository,
        reminders: ReminderStore,
        envelopes: EnvelopeRepository,
        starter: Callable[[], SendStarter],
        plans: PlanCoverage | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._connections = connections
        self._settings = settings
        self._bills = bills
        self._reminders = reminders
        self._envelopes = envelopes
        self._starter = starter
        self._plans = plans or NoPlans()
        self._clock = clock

    # -- the schedule ------------------------------------------------------------------------

    def tick(self) -> TickResult:
        firms = self._connections.connected_firm_ids()
        sent = 0
        for firm_id in firms:
            try:
                sent += self.remind_firm(firm_id)
            except Exception:  # one firm's failure must not stop every other firm's reminders
                logger.exception("reminders of a firm failed", extra={"firm_id": firm_id})
        return TickResult(firms=len(firms), reminders=sent)

    def remind_firm(self, firm_id: str) -> int:
        """Claim and start every reminder of the firm due now; answers how many started."""
        settings = self._settings.get(firm_id)
        if not settings.reminders.enabled:
            return 0
        now = self._clock()
        claimed: list[tuple[str, str]] = []
        before: int | None = None
        while True:
            page = self._bills.page(firm_id, [BillState.AWAITING_PAYMENT], PAGE_SIZE, before)
            covered = self._plans.covered_bill_ids(firm_id, [b.bill.id for b in page.items])
            for stored in page.items:
                if stored.pending_reminder is not None:
                    claimed.extend(self._left_behind(firm_id, stored, now))
                slot = slot_to_send(
                    stored, settings.reminders, now, covered_by_plan=stored.bill.id in covered
                )
                if slot is None:
                    continue
                made = self._claim(firm_id, stored, slot, settings, now)
                if made is not None:
                    claimed.append(made)
            if page.last_bill_id is None:
                break
            before = page.last_bill_id
        for batch_id, envelope_id in claimed:
            self._starter().start(firm_id, batch_id, [envelope_id])
        if claimed:
            logger.info("reminders started", extra={"firm_id": firm_id, "count": len(claimed)})
        return len(claimed)

    def _left_behind(
        self, firm_id: str, stored: StoredBill, now: datetime
    ) -> list[tuple[str, str]]:
        """The bill's pending reminder to start again, if its tick never started it."""
        assert stored.pending_reminder is not None
        batch_id, envelope_id, claimed_at = stored.pending_reminder
        if now - claimed_at < RESTART_AFTER:
            return []  # its own tick may still be starting it
        envelope = self._envelopes.get(firm_id, envelope_id)
        if envelope is not None and envelope.status is EnvelopeStatus.DRAFT:
            logger.warning(
                "reminder claimed but never started: starting it",
                extra={"firm_id": firm_id, "envelope_id": envelope_id},
            )
            return [(batch_id, envelope_id)]
        self._reminders.clear_pending(firm_id, stored.bill.id, envelope_id)
        return []

    def _claim(
        self, firm_id: str, stored: StoredBill, slot: int, settings: FirmSettings, now: datetime
    ) -> tuple[str, str] | None:
        bill = stored.bill
        try:
            subject, body = reminder_text(stored, settings)
        except RuleViolation as exc:
            logger.warning(
                "reminder not made", extra={"firm_id": firm_id, "bill_id": bill.id, "why": str(exc)}
            )
            return None
        anchor = reminder_anchor(stored)
        assert anchor is not None and bill.client.email  # slot_to_send checked both
        batch = Batch(
            id=new_batch_id(), firm_id=firm_id, envelope_ids=(new_envelope_id(),), created_at=now
        )
        envelope = Envelope(
            id=batch.envelope_ids[0],
            firm_id=firm_id,
            batch_id=batch.id,
            client=bill.client,
            bill_ids=(bill.id,),
            to=bill.client.email,
            subject=subject,
            body=body,
            status=EnvelopeStatus.DRAFT,
            created_at=now,
            payment_link_id=stored.payment_link_id,
            purpose=EnvelopePurpose.REMINDER,
            reminder_number=slot,
            drafted_amounts=drafted_amounts([stored]),
        )
        if not self._reminders.claim(firm_id, bill.id, slot, anchor, batch, envelope):
            return None  # another tick claimed this slot, or the bill changed meanwhile
        return batch.id, envelope.id

    # -- the clerk ---------------------------------------------------------------------------

    def pause(self, firm_id: str, bill_id: int) -> StoredBill:
        return self._set_paused(firm_id, bill_id, True)

    def resume(self, firm_id: str, bill_id: int) -> StoredBill:
        return self._set_paused(firm_id, bill_id, False)

    def _set_paused(self, firm_id: str, bill_id: int, paused: bool) -> StoredBill:
        if not self._reminders.set_paused(firm_id, bill_id, paused):
            raise NotFound("This bill is not one of this firm's synced bills.", field="id")
        stored = self._bills.get(firm_id, bill_id)
        if stored is None:  # deleted from the store in between: as if never there
            raise NotFound("This bill is not one of this firm's synced bills.", field="id")
        return stored

    def next_reminders(
        self, firm_id: str, bills: list[StoredBill], settings: FirmSettings
    ) -> dict[int, datetime | None]:
        """Each bill's next reminder time (None: none is coming)."""
        if not settings.reminders.enabled or not bills:
            return {b.bill.id: None for b in bills}
        now = self._clock()
        covered = self._plans.covered_bill_ids(firm_id, [b.bill.id for b in bills])
        return {
            b.bill.id: next_reminder_at(
                b, settings.reminders, now, covered_by_plan=b.bill.id in covered
            )
            for b in bills
        }

    def history(self, firm_id: str, bill_id: int) -> list[SentRecord]:
        if self._bills.get(firm_id, bill_id) is None:
            raise NotFound("This bill is not one of this firm's synced bills.", field="id")
        return self._reminders.history(firm_id, bill_id)
