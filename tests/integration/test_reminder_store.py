"""The reminder store (billbridge/adapters/dynamo_reminders.py) on moto, on the template's
table: one claim per (bill, slot) across racing writers, no claim of a paused or no longer
payable bill, nothing half-written, the pause, and a bill's send history beside mark_sent."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta
from typing import Any

from billbridge.adapters.dynamo_envelopes import DynamoSendingRepository
from billbridge.adapters.dynamo_reminders import DynamoReminderStore
from billbridge.domain.bills import BillState
from billbridge.domain.envelopes import (
    Batch,
    Envelope,
    EnvelopePurpose,
    EnvelopeStatus,
    new_batch_id,
    new_envelope_id,
)
from tests.integration.test_store import FIRM, T0, Store, make_bill, no_sleep, store  # noqa: F401


def draft(bill_id: int, slot: int) -> tuple[Batch, Envelope]:
    batch = Batch(id=new_batch_id(), firm_id=FIRM, envelope_ids=(new_envelope_id(),), created_at=T0)
    bill = make_bill(bill_id)
    envelope = Envelope(
        id=batch.envelope_ids[0],
        firm_id=FIRM,
        batch_id=batch.id,
        client=bill.client,
        bill_ids=(bill_id,),
        to="ap@acme.example",
        subject="Reminder",
        body="Pay here: {{ pay_link }}",
        status=EnvelopeStatus.DRAFT,
        created_at=T0,
        purpose=EnvelopePurpose.REMINDER,
        reminder_number=slot,
    )
    return batch, envelope


def reminders(s: Store) -> DynamoReminderStore:
    return DynamoReminderStore(s.client, s.table, sleep=no_sleep)


def test_given_many_writers_claiming_one_slot_then_exactly_one_wins_with_its_envelope(
    store: Store,  # noqa: F811
) -> None:
    store.bills().save_clio_bills(FIRM, [make_bill(1)], T0)
    drafts = [draft(1, 1) for _ in range(8)]

    def claim(made: tuple[Batch, Envelope]) -> bool:
        return reminders(store).claim(FIRM, 1, 1, T0, *made)

    with ThreadPoolExecutor(max_workers=8) as pool:
        won = list(pool.map(claim, drafts))

    assert won.count(True) == 1
    envelopes = DynamoSendingRepository(store.client, store.table)
    written = [e for (_, e) in drafts if envelopes.get(FIRM, e.id) is not None]
    assert len(written) == 1  # the losers wrote nothing
    winner = envelopes.get(FIRM, written[0].id)
    assert winner is not None and winner.purpose is EnvelopePurpose.REMINDER
    assert winner.reminder_number == 1
    stored = store.bills().get(FIRM, 1)
    assert stored is not None and stored.reminder_slot == 1 and stored.first_sent_at == T0
    # The claim names its reminder until a tick sees it sent; clearing another envelope's
    # pending mark (a newer claim's) changes nothing.
    assert stored.pending_reminder == (winner.batch_id, winner.id, T0)
    reminders(store).clear_pending(FIRM, 1, "env_someone_else")
    assert store.bills().get(FIRM, 1).pending_reminder is not None  # type: ignore[union-attr]
    reminders(store).clear_pending(FIRM, 1, winner.id)
    assert store.bills().get(FIRM, 1).pending_reminder is None  # type: ignore[union-attr]
    # The same slot again, or an earlier one, is refused; the next one is claimed.
    assert not reminders(store).claim(FIRM, 1, 1, T0, *draft(1, 1))
    assert reminders(store).claim(FIRM, 1, 2, T0 + timedelta(days=9), *draft(1, 2))
    stored = store.bills().get(FIRM, 1)
    assert stored is not None and stored.reminder_slot == 2 and stored.first_sent_at == T0


def test_given_a_paused_void_or_unknown_bill_then_no_claim_and_nothing_written(
    store: Store,  # noqa: F811
) -> None:
    store.bills().save_clio_bills(
        FIRM, [make_bill(1), make_bill(2, state=BillState.VOID), make_bill(3)], T0
    )
    assert reminders(store).set_paused(FIRM, 1, True)
    envelopes = DynamoSendingRepository(store.client, store.table)
    for bill_id in (1, 2, 4):
        batch, envelope = draft(bill_id, 1)
        assert not reminders(store).claim(FIRM, bill_id, 1, T0, batch, envelope)
        assert envelopes.get(FIRM, envelope.id) is None
        assert envelopes.get_batch(FIRM, batch.id) is None
    assert not reminders(store).set_paused(FIRM, 4, True)  # no such bill
    assert not reminders(store).set_paused("firm-b", 3, True)  # not that firm's
    assert reminders(store).set_paused(FIRM, 1, False)
    assert reminders(store).claim(FIRM, 1, 1, T0, *draft(1, 1))
    # A sync writes Clio's part of the bill only: the pause and the slot stay.
    reminders(store).set_paused(FIRM, 3, True)
    store.bills().save_clio_bills(
        FIRM, [replace(make_bill(3), etag="new", clio_updated_at=T0 + timedelta(hours=1))], T0
    )
    stored = store.bills().get(FIRM, 3)
    assert stored is not None and stored.reminders_paused


def test_when_envelopes_are_sent_then_the_bill_history_tells_first_sends_and_reminders_apart(
    store: Store,  # noqa: F811
) -> None:
    store.bills().save_clio_bills(FIRM, [make_bill(1)], T0)
    sending = DynamoSendingRepository(store.client, store.table, sleep=no_sleep)
    first_batch, first = draft(1, 1)
    first = replace(first, purpose=EnvelopePurpose.SEND, reminder_number=None, subject="Invoice")
    sending.create_batch(replace(first_batch), [first])

    def send(envelope: Envelope, when: Any) -> None:
        assert sending.claim(FIRM, envelope.id, "claim", when)
        sending.mark_sent(
            envelope,
            claim_token="claim",
            message_id=f"msg-{envelope.id}",
            link_id="lnk_1",
            url="https://pay.test/pay/x",
            now=when,
        )

    send(first, T0)
    batch, reminder = draft(1, 1)
    assert reminders(store).claim(FIRM, 1, 1, T0, batch, reminder)
    send(reminder, T0 + timedelta(days=15))

    history = reminders(store).history(FIRM, 1)
    assert [(r.purpose, r.reminder_number, r.subject) for r in history] == [
        ("send", None, "Invoice"),
        ("reminder", 1, "Reminder"),
    ]
    stored = store.bills().get(FIRM, 1)
    # Reminders count from the first send; the bill's last send is the reminder.
    assert stored is not None and stored.first_sent_at == T0
    assert stored.last_sent_at == T0 + timedelta(days=15)
    assert reminders(store).history("firm-b", 1) == []
