from dataclasses import replace
from datetime import timedelta

import pytest

from billbridge.domain.bills import BillState
from billbridge.domain.errors import ClioAuthorizationLost, ClioUnreachable, NotConnected
from billbridge.domain.sync import SyncMode, SyncStatus, SyncTrigger
from billbridge.services.sync import SyncService
from tests.fakes import (
    T0,
    FakeBills,
    FakeClio,
    FakeConnections,
    FakeLauncher,
    FakeSyncs,
    clio_bill,
    connection,
)

FIRM = "firm-a"


class World:
    def __init__(self, count: int = 0) -> None:
        self.bills = FakeBills()
        self.syncs = FakeSyncs()
        self.connections = FakeConnections()
        self.connections.save(connection(FIRM))
        self.launcher = FakeLauncher()
        self.clio = FakeClio(records={i: clio_bill(i) for i in range(1, count + 1)})
        self.now = T0 + timedelta(days=1)
        self.service = SyncService(
            bills=self.bills,
            syncs=self.syncs,
            connections=self.connections,
            clio_for=lambda conn: self.clio,
            clio_web_host_for=lambda conn: "https://app.clio.com",
            launcher=self.launcher,
            clock=lambda: self.now,
        )

    def sync(self, trigger: SyncTrigger = SyncTrigger.MANUAL, budget: int = 10_000):
        run = self.service.request_sync(FIRM, trigger)
        calls = iter(range(budget, -10_000_000, -1))
        outcome = None
        while self.launcher.launched:
            firm_id, run_id = self.launcher.launched.pop(0)
            outcome = self.service.run(firm_id, run_id, lambda: next(calls))
        return run, outcome

    def stored_states(self):
        return {bill_id: s.bill.state for (_, bill_id), s in self.bills.items.items()}


def test_given_a_new_firm_when_synced_then_every_bill_is_imported_in_a_full_run():
    world = World(count=450)
    run, outcome = world.sync()
    assert run.mode is SyncMode.FULL
    assert outcome.run.status is SyncStatus.SUCCEEDED
    assert outcome.run.bills_seen == 450 and outcome.run.bills_changed == 450
    assert len(world.bills.items) == 450
    assert world.syncs.checkpoint(FIRM).full_import_done
    assert world.syncs.checkpoint(FIRM).last_synced_at == world.now


def test_given_a_run_cut_off_by_the_clock_when_continued_then_it_resumes_from_the_checkpoint():
    world = World(count=1000)
    world.clio.page_size = 100
    # Each page check consumes one unit of the budget: the run hands over after 3 pages.
    _, outcome = world.sync(budget=3)
    assert outcome.run.status is SyncStatus.SUCCEEDED
    assert len(world.bills.items) == 1000
    resumed = [c for c in world.clio.calls if c["start_url"]]
    assert resumed, "a continuation must resume from the stored next-page URL"
    # Nothing was fetched twice: 10 pages + 1 deleted pass page.
    assert world.clio.requests_made == 11


def test_given_nothing_changed_when_resynced_then_nothing_is_written():
    world = World(count=300)
    world.sync()
    writes = world.bills.write_calls
    _, outcome = world.sync()
    assert outcome.run.mode is SyncMode.INCREMENTAL
    assert outcome.run.bills_changed == 0
    assert world.bills.write_calls == writes


def test_given_an_incremental_run_then_it_asks_only_for_bills_updated_since_the_high_water():
    world = World(count=50)
    world.sync()
    world.clio.calls.clear()
    world.clio.records[7] = clio_bill(7, state="paid", balance="0", updated=T0 + timedelta(hours=5))
    _, outcome = world.sync()
    since = world.clio.calls[0]["updated_since"]
    assert since is not None and since < T0 + timedelta(hours=5)
    assert outcome.run.bills_changed == 1
    assert world.bills.get(FIRM, 7).bill.state is BillState.PAID
    assert world.bills.get(FIRM, 7).bill.outstanding_clio_cents == 0


def test_given_bills_voided_and_deleted_in_clio_when_synced_then_their_state_changes():
    world = World(count=10)
    world.sync()
    later = T0 + timedelta(hours=3)
    world.clio.records[3] = clio_bill(3, state="void", updated=later)
    world.clio.records[4] = clio_bill(4, state="deleted", updated=later)
    world.sync()
    states = world.stored_states()
    assert states[3] is BillState.VOID
    assert states[4] is BillState.DELETED, "a deleted bill must not stay unpaid here"
    assert any(c["state"] == "deleted" for c in world.clio.calls)


def test_given_a_sync_running_when_another_is_requested_then_the_running_one_is_answered():
    world = World(count=5)
    first = world.service.request_sync(FIRM, SyncTrigger.VIEW)
    second = world.service.request_sync(FIRM, SyncTrigger.MANUAL)
    assert second.id == first.id
    assert len(world.launcher.launched) == 1


def test_given_a_stale_lock_when_a_sync_is_requested_then_a_new_run_starts():
    world = World(count=5)
    first = world.service.request_sync(FIRM, SyncTrigger.VIEW)
    world.now += timedelta(hours=1)
    second = world.service.request_sync(FIRM, SyncTrigger.VIEW)
    assert second.id != first.id


def test_given_clio_unavailable_mid_import_then_the_run_fails_and_the_next_resumes():
    world = World(count=600)
    world.clio.fail_after_pages = 2
    world.clio.fail_with = ClioUnreachable("Clio answered 503 five times")
    _, outcome = world.sync()
    assert outcome.run.status is SyncStatus.FAILED
    assert "503" in outcome.run.error
    assert world.syncs.checkpoint(FIRM).next_page_url is not None
    assert world.syncs.checkpoint(FIRM).lock_run_id is None
    world.clio.fail_after_pages = None
    world.clio.calls.clear()
    _, outcome = world.sync()
    assert outcome.run.status is SyncStatus.SUCCEEDED
    assert world.clio.calls[0]["start_url"] is not None
    assert len(world.bills.items) == 600


def test_given_clio_refuses_the_tokens_then_the_firm_is_marked_to_reconnect():
    world = World(count=5)
    world.clio.fail_after_pages = 0
    world.clio.fail_with = ClioAuthorizationLost("refresh token revoked")
    _, outcome = world.sync()
    assert outcome.run.status is SyncStatus.FAILED
    assert world.connections.get(FIRM).needs_reconnect
    with pytest.raises(NotConnected):
        world.service.request_sync(FIRM, SyncTrigger.VIEW)


def test_given_a_duplicate_invocation_of_a_finished_run_then_nothing_happens():
    world = World(count=5)
    run, _ = world.sync()
    assert world.service.run(FIRM, run.id, lambda: 100) is None


def test_given_a_view_just_after_a_sync_then_no_new_sync_starts_but_the_button_does():
    world = World(count=5)
    first, _ = world.sync(SyncTrigger.MANUAL)
    world.now += timedelta(seconds=10)
    viewed = world.service.request_sync(FIRM, SyncTrigger.VIEW)
    assert viewed.id == first.id and not world.launcher.launched
    pressed = world.service.request_sync(FIRM, SyncTrigger.MANUAL)
    assert pressed.id != first.id and world.launcher.launched
    firm_id, run_id = world.launcher.launched.pop()
    world.service.run(firm_id, run_id, lambda: 100)
    world.now += timedelta(minutes=5)
    assert world.service.request_sync(FIRM, SyncTrigger.VIEW).id != pressed.id


def test_given_no_connection_when_a_sync_is_requested_then_not_connected():
    world = World()
    with pytest.raises(NotConnected):
        world.service.request_sync("firm-without-clio", SyncTrigger.MANUAL)


def test_given_no_connection_when_the_list_is_viewed_then_no_run_and_no_error():
    world = World()
    assert world.service.sync_on_view("firm-without-clio") == (None, None)


def test_given_a_view_then_it_reports_the_run_and_when_the_firm_last_synced():
    world = World(count=3)
    first, _ = world.sync()
    run, synced_at = world.service.sync_on_view(FIRM)
    assert run.id == first.id and synced_at == world.now


def test_given_a_webhook_keeper_when_a_run_succeeds_then_it_is_asked_to_keep_the_subscription():
    world = World(count=3)
    kept = []
    world.service._webhooks = lambda conn, clio: kept.append(conn.firm_id) or conn
    world.sync()
    assert kept == [FIRM]


def test_given_a_product_owned_field_when_a_bill_resyncs_then_it_survives():
    world = World(count=3)
    world.sync()
    stored = world.bills.items[(FIRM, 2)]
    world.bills.items[(FIRM, 2)] = replace(stored, paid_gl_cents=2500, payment_link_id="pl_1")
    world.clio.records[2] = clio_bill(2, balance="50.00", updated=T0 + timedelta(hours=9))
    world.sync()
    again = world.bills.items[(FIRM, 2)]
    assert again.paid_gl_cents == 2500 and again.payment_link_id == "pl_1"
    assert again.bill.outstanding_clio_cents == 5000


# -- Clio's rate limit within the invocation's time (finding 12) --------------------------------


class Invocations:
    """The sync worker's invocations on a fake clock: each has its own time (the Lambda's
    remaining time minus the reserve), the last given repeating; Clio's Retry-After waits
    advance the clock."""

    def __init__(self, world: World, *seconds: float) -> None:
        self.world, self.seconds, self.elapsed, self.count = world, list(seconds), 0.0, 0
        self.outcomes: list = []
        world.clio.sleep = self.advance

    def advance(self, wait: float) -> None:
        self.elapsed += wait
        self.world.now += timedelta(seconds=wait)

    def run_all(self):
        outcome = None
        while self.world.launcher.launched:
            firm_id, run_id = self.world.launcher.launched.pop(0)
            time_left = self.seconds[min(self.count, len(self.seconds) - 1)]
            self.count += 1
            deadline = self.elapsed + time_left
            outcome = self.world.service.run(firm_id, run_id, lambda: deadline - self.elapsed)
            self.outcomes.append(outcome)
        return outcome


def test_given_429s_whose_waits_fit_the_time_left_when_syncing_then_they_are_waited_out():
    world = World(count=450)
    world.clio.rate_limited = [1.0] * 8  # more in a row than the client's old retry cap
    invocations = Invocations(world, 60)
    world.service.request_sync(FIRM, SyncTrigger.MANUAL)

    outcome = invocations.run_all()

    assert outcome.run.status is SyncStatus.SUCCEEDED and outcome.run.error is None
    assert world.clio.waits == [1.0] * 8 and invocations.count == 1
    assert len(world.bills.items) == 450


def test_given_a_retry_after_longer_than_the_time_left_then_the_run_hands_over_and_finishes():
    world = World(count=450)
    first_pages = world.clio.iter_bill_pages

    def rate_limited_after_the_first_page(**kwargs):
        for number, page in enumerate(first_pages(**kwargs)):
            yield page
            if number == 0 and not world.clio.waits:
                world.clio.rate_limited = [30.0]  # Clio asks for 30 s before the next page

    world.clio.iter_bill_pages = rate_limited_after_the_first_page  # type: ignore[method-assign]
    invocations = Invocations(world, 20, 60)  # 20 s left in the first invocation
    world.service.request_sync(FIRM, SyncTrigger.MANUAL)

    outcome = invocations.run_all()

    handed, finished = invocations.outcomes
    assert handed.continued and handed.run.status is SyncStatus.RUNNING
    assert handed.run.bills_seen == 200  # the first page, kept in the checkpoint
    assert finished.run.status is SyncStatus.SUCCEEDED and outcome is finished
    assert world.clio.waits == [30.0]  # waited by the second invocation, which had the time
    assert len(world.bills.items) == 450 and finished.run.bills_seen == 450


def test_given_a_rate_limit_that_never_fits_then_the_run_fails_after_a_few_handovers():
    world = World(count=10)
    world.clio.rate_limited = [120.0]
    invocations = Invocations(world, 5)
    world.service.request_sync(FIRM, SyncTrigger.MANUAL)

    outcome = invocations.run_all()

    assert outcome.run.status is SyncStatus.FAILED
    assert "rate-limited" in outcome.run.error and "120 s" in outcome.run.error
    assert invocations.count == 4  # the first, then three handovers
    # The next run starts afresh: its own handovers, not the failed run's.
    assert "rate_limit_handovers" not in world.syncs.checkpoint(FIRM).extra


def test_given_a_live_run_when_a_view_brings_the_firm_header_then_nothing_more_is_read():
    world = World(count=3)
    started = world.service.request_sync(FIRM, SyncTrigger.MANUAL)  # left running
    header_checkpoint = world.syncs.checkpoint(FIRM)
    reads = []
    world.syncs.checkpoint = lambda firm_id: reads.append("checkpoint")  # type: ignore[method-assign]
    world.syncs.get_run = lambda firm_id, run_id: reads.append("run")  # type: ignore[method-assign]

    run, _ = world.service.sync_on_view(FIRM, header_checkpoint)

    assert run.id == started.id and run.status is SyncStatus.RUNNING
    assert reads == []
