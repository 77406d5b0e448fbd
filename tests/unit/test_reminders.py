"""Reminders (X3) on fakes: the slot rules of domain/reminders.py (Hypothesis), the stop rules,
and the use case end to end through the send step: exactly one email per (bill, slot) whatever
duplicate, concurrent or retried ticks happen, and none once a bill is paid (in Clio or in our
ledger), voided, deleted, paused or covered by a plan, in every order those can race a tick
and its send."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billbridge.domain.bills import BillState, StoredBill
from billbridge.domain.envelopes import EnvelopePurpose, EnvelopeStatus
from billbridge.domain.errors import NotFound
from billbridge.domain.payment_links import PaymentLink
from billbridge.domain.reminders import (
    latest_due_slot,
    next_reminder_at,
    reminder_text,
    slot_due_at,
    slot_to_send,
    stop_reason,
)
from billbridge.domain.settings import FirmSettings, ReminderSettings
from tests.fakes import FakeWorld, connection, stored_bill

FIRM = "firm-a"
SENT = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
ON = ReminderSettings(enabled=True, first_after_days=15, repeat_every_days=15, max_count=3)

policies = st.builds(
    ReminderSettings,
    enabled=st.just(True),
    first_after_days=st.integers(1, 365),
    repeat_every_days=st.integers(1, 365),
    max_count=st.integers(1, 12),
)
moments = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
)


def sent_bill(bill_id: int = 1, **changes: Any) -> StoredBill:
    stored = replace(
        stored_bill(bill_id), payment_link_id="lnk_first", last_sent_at=SENT, first_sent_at=SENT
    )
    return replace(stored, **changes)


# -- slots -------------------------------------------------------------------------------------


@given(policy=policies, anchor=moments, now=moments)
def test_the_latest_due_slot_is_due_and_the_next_one_is_not(
    policy: ReminderSettings, anchor: datetime, now: datetime
) -> None:
    slot = latest_due_slot(anchor, policy, now)
    if slot is None:
        assert now < slot_due_at(anchor, policy, 1)
        return
    assert 1 <= slot <= policy.max_count
    assert slot_due_at(anchor, policy, slot) <= now
    if slot < policy.max_count:
        assert now < slot_due_at(anchor, policy, slot + 1)


@given(policy=policies, anchor=moments, earlier=moments, later=moments)
def test_slots_never_go_back_as_time_passes(
    policy: ReminderSettings, anchor: datetime, earlier: datetime, later: datetime
) -> None:
    earlier, later = sorted((earlier, later))
    assert (latest_due_slot(anchor, policy, earlier) or 0) <= (
        latest_due_slot(anchor, policy, later) or 0
    )


@given(policy=policies, now=moments, claimed=st.integers(0, 12))
def test_a_tick_sends_the_slot_next_reminder_at_announced_and_nothing_before_it(
    policy: ReminderSettings, now: datetime, claimed: int
) -> None:
    stored = sent_bill(reminder_slot=claimed)
    upcoming = next_reminder_at(stored, policy, now, covered_by_plan=False)
    slot = slot_to_send(stored, policy, now, covered_by_plan=False)
    if upcoming is None:
        assert slot is None  # all sent: nothing more
        assert claimed >= policy.max_count
    elif upcoming <= now:
        assert slot is not None and slot > claimed
        assert slot_due_at(SENT, policy, slot) == upcoming
    else:
        assert slot is None


def test_given_the_peers_defaults_then_reminders_fall_15_days_apart_from_the_first_send() -> None:
    assert [slot_due_at(SENT, ON, k) for k in (1, 2, 3)] == [
        SENT + timedelta(days=15),
        SENT + timedelta(days=30),
        SENT + timedelta(days=45),
    ]
    assert latest_due_slot(SENT, ON, SENT + timedelta(days=14, hours=23)) is None
    assert latest_due_slot(SENT, ON, SENT + timedelta(days=15)) == 1
    # Slots missed (the schedule stopped for a month) are skipped, not sent in a burst.
    assert latest_due_slot(SENT, ON, SENT + timedelta(days=44)) == 2
    assert latest_due_slot(SENT, ON, SENT + timedelta(days=400)) == 3


def test_given_default_settings_then_reminders_are_off_and_follow_the_peers_cadence() -> None:
    settings = FirmSettings()
    assert settings.reminders.enabled is False
    assert (settings.reminders.first_after_days, settings.reminders.repeat_every_days) == (15, 15)
    later = SENT + timedelta(days=20)
    assert slot_to_send(sent_bill(), settings.reminders, later, covered_by_plan=False) is None
    assert next_reminder_at(sent_bill(), settings.reminders, later, covered_by_plan=False) is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("enabled", "true"),
        ("enabled", 1),
        ("first_after_days", 0),
        ("first_after_days", "15"),
        ("first_after_days", 1.5),
        ("repeat_every_days", 366),
        ("max_count", 0),
        ("max_count", 13),
        ("max_count", True),
    ],
)
def test_given_bad_reminder_settings_then_refused(field: str, value: Any) -> None:
    with pytest.raises(ValueError):
        ReminderSettings.model_validate({field: value})


# -- stop rules ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "covered", "words"),
    [
        ({"bill": "paid"}, False, "paid in Clio"),
        ({"bill": "void"}, False, "void in Clio"),
        ({"bill": "deleted"}, False, "deleted in Clio"),
        ({"paid_gl_cents": 10_000}, False, "is paid"),
        ({"reminders_paused": True}, False, "paused"),
        ({}, True, "payment plan"),
        ({"last_sent_at": None, "first_sent_at": None}, False, "never sent"),
        ({"email": None}, False, "no email address"),
    ],
)
def test_given_a_bill_no_longer_to_remind_then_a_reason_and_no_slot(
    changes: dict[str, Any], covered: bool, words: str
) -> None:
    stored = sent_bill()
    if "bill" in changes:
        state = BillState(changes.pop("bill"))
        stored = replace(stored, bill=replace(stored.bill, state=state))
    if "email" in changes:
        client = replace(stored.bill.client, email=changes.pop("email"))
        stored = replace(stored, bill=replace(stored.bill, client=client))
    stored = replace(stored, **changes)
    later = SENT + timedelta(days=16)
    reason = stop_reason(stored, covered_by_plan=covered)
    assert reason is not None and words in reason
    assert slot_to_send(stored, ON, later, covered_by_plan=covered) is None
    assert next_reminder_at(stored, ON, later, covered_by_plan=covered) is None


def test_given_a_bill_partly_paid_then_reminded_of_what_is_left() -> None:
    stored = sent_bill(paid_gl_cents=2_500)
    assert stop_reason(stored, covered_by_plan=False) is None
    subject, body = reminder_text(stored, FirmSettings(firm_name="Smith LLP"))
    assert "$75.00" in body and "$100.00" not in body
    assert subject == "Reminder: INV-00001 from Smith LLP is still open"
    assert "{{ pay_link }}" in body  # filled with the bill's own link at send time


# -- the use case through the send step ---------------------------------------------------------


class Reminders:
    def __init__(self, **policy: Any) -> None:
        self.world = world = FakeWorld()
        world.connections.save(connection(FIRM))
        world.settings.items[FIRM] = FirmSettings(
            firm_name="Smith LLP",
            reminders=ReminderSettings(**{"enabled": True, **policy}),
        )
        world.bills.items[(FIRM, 1)] = sent_bill(1)
        world.links.create(
            PaymentLink(id="lnk_first", firm_id=FIRM, bill_ids=(1,), created_at=SENT),
            "hash-first",
        )
        world.clock.now = SENT
        self.service = world.reminder_service()
        self.steps = world.send_steps()
        self.ran = 0

    def tick(self) -> int:
        return int(self.service.tick().reminders)

    def run_started(self) -> None:
        """The workflow runs of every started send not run yet (Step Functions' part)."""
        for firm_id, _, envelope_ids in self.world.send_starter.started[self.ran :]:
            self.ran += 1
            for envelope_id in envelope_ids:
                self.steps.send_step(firm_id, envelope_id, f"claim-{self.ran}")

    def bill(self) -> StoredBill:
        stored = self.world.bills.get(FIRM, 1)
        assert stored is not None
        return stored

    def change(self, **changes: Any) -> None:
        stored = self.bill()
        if "state" in changes:
            state = BillState(changes.pop("state"))
            outstanding = stored.bill.outstanding_clio_cents if state is BillState.VOID else 0
            stored = replace(
                stored, bill=replace(stored.bill, state=state, outstanding_clio_cents=outstanding)
            )
        self.world.bills.items[(FIRM, 1)] = replace(stored, **changes)

    def reminders(self) -> list[Any]:
        return [m for m in self.world.mailer.sent if m.subject.startswith("Reminder:")]


def test_when_slot_one_falls_due_then_one_reminder_with_the_pdf_and_the_same_pay_link() -> None:
    app = Reminders()
    app.world.clock.now = SENT + timedelta(days=15, minutes=1)

    assert app.tick() == 1
    app.run_started()

    (mail,) = app.reminders()
    assert mail.to == [app.bill().bill.client.email]
    assert [name for name, _ in mail.attachments] == ["INV-00001.pdf"]
    assert "https://pay.test/pay/" in mail.text
    envelope = app.world.envelopes.get(FIRM, mail.tags["envelope_id"])
    assert envelope.purpose is EnvelopePurpose.REMINDER and envelope.reminder_number == 1
    assert envelope.status is EnvelopeStatus.SENT and envelope.payment_link_id == "lnk_first"
    history = app.world.reminders.history(FIRM, 1)
    assert [(r.purpose, r.reminder_number) for r in history] == [("reminder", 1)]
    # Reminders still count from the first send, not from this one.
    assert app.bill().first_sent_at == SENT and app.bill().reminder_slot == 1


def test_given_duplicate_ticks_and_retried_steps_then_each_slot_is_emailed_once() -> None:
    app = Reminders(max_count=2)
    app.world.clock.now = SENT + timedelta(days=15)
    assert [app.tick(), app.tick(), app.tick()] == [1, 0, 0]
    app.run_started()
    app.run_started()
    # A retry of the same workflow step (same claim) and a second run (another claim).
    (_, _, (envelope_id,)) = app.world.send_starter.started[0]
    app.steps.send_step(FIRM, envelope_id, "claim-1")
    app.steps.send_step(FIRM, envelope_id, "claim-9")
    assert len(app.reminders()) == 1
    app.world.clock.now = SENT + timedelta(days=30)
    assert [app.tick(), app.tick()] == [1, 0]
    app.run_started()
    app.world.clock.now = SENT + timedelta(days=90)
    assert app.tick() == 0  # max_count reached
    assert [m.tags["envelope_id"] for m in app.reminders()] == [
        e for _, _, (e,) in app.world.send_starter.started
    ]
    assert len(app.reminders()) == 2
    assert app.service.next_reminders(FIRM, [app.bill()], app.world.settings.get(FIRM)) == {1: None}


def test_given_two_ticks_at_once_then_the_slot_is_claimed_by_one() -> None:
    app = Reminders()
    app.world.clock.now = SENT + timedelta(days=16)
    other = app.world.reminder_service()
    # The other tick reads the bill too, and claims first, between this tick's read and claim.
    app.world.reminders.before_claim = lambda: setattr(app, "other_claimed", other.tick())
    assert app.tick() == 0
    assert app.other_claimed.reminders == 1  # type: ignore[attr-defined]
    app.run_started()
    assert len(app.reminders()) == 1


STOPS: dict[str, dict[str, Any]] = {
    "paid in Clio": {"state": "paid"},
    "paid here": {"paid_gl_cents": 10_000},
    "voided": {"state": "void"},
    "deleted": {"state": "deleted"},
    "paused": {"reminders_paused": True},
    "on a plan": {},
}


@pytest.mark.parametrize("stop", list(STOPS))
def test_every_order_of_a_stop_a_tick_and_its_send_emails_only_before_the_stop(stop: str) -> None:
    """Each ordering of: the bill stops being remindable, a tick, the workflow's send step
    (which can run only after a tick started one). The reminder goes out exactly when the
    tick and the send both came before the stop; never twice."""
    for order in itertools.permutations(["stop", "tick", "send", "tick"]):
        app = Reminders()
        app.world.clock.now = SENT + timedelta(days=15, hours=1)
        for step in order:
            if step == "stop":
                if stop == "on a plan":
                    app.world.plans.covered.add((FIRM, 1))
                else:
                    app.change(**STOPS[stop])
            elif step == "tick":
                app.tick()
            else:
                app.run_started()
        app.run_started()  # whatever a late tick started runs in the end too
        first_tick, send, stopped = order.index("tick"), order.index("send"), order.index("stop")
        expected = 1 if first_tick < send < stopped else 0
        assert len(app.reminders()) == expected, order
        for _, _, (envelope_id,) in app.world.send_starter.started:
            envelope = app.world.envelopes.get(FIRM, envelope_id)
            if envelope.status is EnvelopeStatus.FAILED:
                assert envelope.error.startswith("Not sent: ")


def test_when_paused_and_resumed_then_the_next_reminder_comes_back() -> None:
    app = Reminders()
    settings = app.world.settings.get(FIRM)
    app.service.pause(FIRM, 1)
    assert app.bill().reminders_paused
    assert app.service.next_reminders(FIRM, [app.bill()], settings) == {1: None}
    app.world.clock.now = SENT + timedelta(days=16)
    assert app.tick() == 0
    resumed = app.service.resume(FIRM, 1)
    assert resumed.reminders_paused is False
    assert app.service.next_reminders(FIRM, [resumed], settings) == {1: SENT + timedelta(days=15)}
    assert app.tick() == 1
    with pytest.raises(NotFound):
        app.service.pause(FIRM, 999)
    with pytest.raises(NotFound):
        app.service.pause("firm-b", 1)  # another firm's bill is no bill of theirs


def test_given_reminders_turned_off_after_the_tick_then_the_send_step_sends_nothing() -> None:
    app = Reminders()
    app.world.clock.now = SENT + timedelta(days=16)
    assert app.tick() == 1
    app.world.settings.items[FIRM] = FirmSettings(firm_name="Smith LLP")
    app.run_started()
    assert app.reminders() == []
    (_, _, (envelope_id,)) = app.world.send_starter.started[0]
    assert "turned off" in app.world.envelopes.get(FIRM, envelope_id).error


def test_given_a_firm_whose_tick_fails_then_other_firms_still_get_their_reminders() -> None:
    app = Reminders()
    app.world.connections.save(connection("firm-broken"))
    app.world.settings.items["firm-broken"] = FirmSettings(reminders=ON)
    original = app.world.bills.page

    def page(firm_id: str, *args: Any) -> Any:
        if firm_id == "firm-broken":
            raise RuntimeError("the store failed for this firm")
        return original(firm_id, *args)

    app.world.bills.page = page  # type: ignore[method-assign]
    app.world.clock.now = SENT + timedelta(days=16)
    assert app.tick() == 1


def test_given_a_tick_that_dies_after_its_claim_then_a_later_tick_sends_that_slot_once() -> None:
    """The claim is written, then the function dies before starting the send (and Lambda's
    retry finds the slot claimed): a later tick finds the claimed draft and starts it."""
    app = Reminders()
    app.world.clock.now = SENT + timedelta(days=15, minutes=1)
    starter, calls = app.world.send_starter, []

    def dying_start(firm_id: str, batch_id: str, envelope_ids: Any) -> str:
        calls.append(batch_id)
        if len(calls) == 1:
            raise RuntimeError("the function died before starting the send")
        return starter.__class__.start(starter, firm_id, batch_id, envelope_ids)

    starter.start = dying_start  # type: ignore[method-assign]
    assert app.tick() == 0  # the firm's tick failed (and was logged)
    assert app.tick() == 0  # the retry: the slot is claimed, and too fresh to restart
    assert app.world.send_starter.started == []
    app.world.clock.advance(minutes=6)
    assert app.tick() == 1  # the left-behind reminder is started
    assert app.tick() == 1  # not yet sent: started again, harmlessly
    app.run_started()
    assert len(app.reminders()) == 1
    assert app.tick() == 0  # sent: nothing pending any more
    assert app.bill().pending_reminder is None
    assert app.bill().reminder_slot == 1
