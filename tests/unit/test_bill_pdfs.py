"""Bill PDFs cached per Clio version, and the sync's prefetch within the Clio budget it leaves."""

from datetime import timedelta

from billbridge.adapters.clio import ClioRateLimited, ClioUnavailable
from billbridge.domain.bills import bill_from_clio
from billbridge.domain.sync import SyncStatus, SyncTrigger
from billbridge.services.bill_pdfs import BillPdfs, PrefetchPolicy
from billbridge.services.sync import SyncService
from tests.fakes import (
    T0,
    FakeBills,
    FakeClio,
    FakeConnections,
    FakeLauncher,
    FakePdfStore,
    FakeSyncs,
    clio_bill,
    connection,
)

FIRM = "firm-a"
HOST = "https://app.clio.com"


def _seeded(count: int, **kwargs):
    bills = FakeBills()
    clio = FakeClio(records={i: clio_bill(i, **kwargs) for i in range(1, count + 1)})
    bills.save_clio_bills(FIRM, [bill_from_clio(r, HOST) for r in clio.records.values()], T0)
    return bills, clio


def _change_in_clio(bills: FakeBills, clio: FakeClio, bill_id: int) -> None:
    """Clio changes the bill (a new etag) and the store learns it, as a sync or webhook does."""
    record = clio_bill(bill_id, updated=T0 + timedelta(days=2, seconds=bill_id))
    clio.records[bill_id] = record
    bills.save_clio_bills(FIRM, [bill_from_clio(record, HOST)], T0 + timedelta(days=2))


def _always() -> float:
    return 60.0


# -- the cache -------------------------------------------------------------------------------


def test_given_a_cached_version_when_its_pdf_is_asked_then_clio_is_not_asked_at_all():
    bills, clio = _seeded(1)
    pdfs = BillPdfs(bills=bills, store=FakePdfStore())
    first = pdfs.pdf(FIRM, bills.get(FIRM, 1), lambda: clio)
    made = []

    def no_clio():
        made.append(1)
        return clio

    again = pdfs.pdf(FIRM, bills.get(FIRM, 1), no_clio)

    assert again == first and clio.pdf_fetches == [1] and made == []


def test_given_a_bill_changed_in_clio_when_its_pdf_is_asked_then_the_new_version_is_fetched():
    bills, clio = _seeded(1)
    pdfs = BillPdfs(bills=bills, store=FakePdfStore())
    old = pdfs.pdf(FIRM, bills.get(FIRM, 1), lambda: clio)
    _change_in_clio(bills, clio, 1)

    new = pdfs.pdf(FIRM, bills.get(FIRM, 1), lambda: clio)

    assert new != old and clio.pdf_fetches == [1, 1]
    assert bills.get(FIRM, 1).pdf_etag == clio.records[1]["etag"]


def test_given_a_cached_pdf_expired_from_the_bucket_when_asked_then_it_is_fetched_again():
    bills, clio = _seeded(1)
    store = FakePdfStore()
    pdfs = BillPdfs(bills=bills, store=store)
    pdfs.pdf(FIRM, bills.get(FIRM, 1), lambda: clio)
    store.objects.clear()  # the lifecycle rule took it

    pdfs.pdf(FIRM, bills.get(FIRM, 1), lambda: clio)

    assert clio.pdf_fetches == [1, 1] and len(store.objects) == 1


# -- the prefetch ----------------------------------------------------------------------------


def test_given_a_window_with_budget_left_when_prefetching_then_it_stops_at_the_reserve():
    bills, clio = _seeded(80)
    clio.rate_limit, clio.rate_remaining = 50, 47
    pdfs = BillPdfs(bills=bills, store=FakePdfStore(), policy=PrefetchPolicy(per_run=100))

    outcome = pdfs.prefetch(FIRM, clio, _always)

    # 20% of the window (10) is kept for views, manual syncs and sends.
    assert outcome.budget == 37 and outcome.fetched == 37 and outcome.stopped == "budget"
    assert clio.rate_remaining == 10
    assert clio.pdf_fetches == list(range(80, 43, -1))  # newest bills first
    assert len(bills.pdf_wanted(FIRM, 100)) == 80 - 37


def test_given_no_rate_headers_seen_when_prefetching_then_nothing_is_fetched():
    bills, clio = _seeded(5)
    clio.rate_remaining = None
    outcome = BillPdfs(bills=bills, store=FakePdfStore()).prefetch(FIRM, clio, _always)
    assert outcome.stopped == "unknown_budget" and clio.pdf_fetches == []


def test_given_a_429_when_prefetching_then_it_stops_at_once_and_leaves_the_rest_wanted():
    bills, clio = _seeded(10)
    clio.rate_remaining = 45
    clio.pdf_fail_next = [ClioRateLimited("rate limited", retry_after=30)]
    outcome = BillPdfs(bills=bills, store=FakePdfStore()).prefetch(FIRM, clio, _always)
    assert outcome.stopped == "clio" and outcome.fetched == 0
    assert len(bills.pdf_wanted(FIRM, 100)) == 10


def test_given_clio_down_when_prefetching_then_it_backs_off_until_the_next_run():
    bills, clio = _seeded(10)
    clio.rate_remaining = 45
    clio.pdf_fail_next = [ClioUnavailable("down")]
    pdfs = BillPdfs(bills=bills, store=FakePdfStore())
    assert pdfs.prefetch(FIRM, clio, _always).stopped == "clio"
    assert pdfs.prefetch(FIRM, clio, _always).fetched == 10


def test_given_a_replayed_version_already_cached_when_prefetching_then_no_request_is_made():
    bills, clio = _seeded(3)
    clio.rate_remaining = 45
    pdfs = BillPdfs(bills=bills, store=FakePdfStore())
    pdfs.prefetch(FIRM, clio, _always)
    # A webhook delivers the same version again: the store wants its PDF once more.
    bills.save_clio_bills(FIRM, [bill_from_clio(clio.records[2], HOST)], T0)
    fetched_before = list(clio.pdf_fetches)

    outcome = pdfs.prefetch(FIRM, clio, _always)

    assert outcome.already_cached == 1 and outcome.fetched == 0
    assert clio.pdf_fetches == fetched_before and bills.pdf_wanted(FIRM, 10) == []


def test_given_bills_nobody_can_send_when_prefetching_then_their_pdfs_are_not_fetched():
    bills, clio = _seeded(2, state="paid", balance="0")
    clio.rate_remaining = 45
    outcome = BillPdfs(bills=bills, store=FakePdfStore()).prefetch(FIRM, clio, _always)
    assert outcome.fetched == 0 and clio.pdf_fetches == []


def test_given_the_lambda_clock_running_out_when_prefetching_then_it_stops():
    bills, clio = _seeded(10)
    clio.rate_remaining = 45
    left = iter([1.0, 1.0, 0.0])
    outcome = BillPdfs(bills=bills, store=FakePdfStore()).prefetch(FIRM, clio, lambda: next(left))
    assert outcome.fetched == 2 and outcome.stopped == "time"


def test_given_a_bill_changed_while_its_pdf_was_fetched_then_the_new_version_stays_wanted():
    bills, clio = _seeded(1)
    stale = bills.get(FIRM, 1)
    _change_in_clio(bills, clio, 1)
    pdfs = BillPdfs(bills=bills, store=FakePdfStore())

    pdfs.pdf(FIRM, stale, lambda: clio)  # the old version's PDF, asked before the change landed

    assert [w.bill_id for w in bills.pdf_wanted(FIRM, 10)] == [1]
    assert bills.get(FIRM, 1).pdf_etag is None


# -- within a sync ---------------------------------------------------------------------------


def test_given_a_sync_when_it_succeeds_then_pdfs_are_prefetched_after_its_lock_is_released():
    bills, syncs, connections, launcher = (
        FakeBills(),
        FakeSyncs(),
        FakeConnections(),
        FakeLauncher(),
    )
    connections.save(connection(FIRM))
    clio = FakeClio(records={i: clio_bill(i) for i in range(1, 301)})
    locks_seen = []
    fetch = clio.bill_pdf

    def watching_fetch(bill_id, *, wait_for_budget=True):
        locks_seen.append((syncs.checkpoint(FIRM).lock_run_id, wait_for_budget))
        return fetch(bill_id, wait_for_budget=wait_for_budget)

    clio.bill_pdf = watching_fetch  # type: ignore[method-assign]
    service = SyncService(
        bills=bills,
        syncs=syncs,
        connections=connections,
        clio_for=lambda conn: clio,
        clio_web_host_for=lambda conn: HOST,
        launcher=launcher,
        pdfs=BillPdfs(bills=bills, store=FakePdfStore()),
        clock=lambda: T0 + timedelta(days=1),
    )
    service.request_sync(FIRM, SyncTrigger.MANUAL)
    outcome = service.run(*launcher.launched.pop(), lambda: 60.0)

    assert outcome.run.status is SyncStatus.SUCCEEDED
    # The sync's own pages (2 + the deleted pass) came first; the rest of the window, less
    # the reserve, went to PDFs, each asked never to wait for Clio's window.
    assert outcome.prefetch.budget == 50 - 3 - 10 == outcome.prefetch.fetched
    assert locks_seen and all(lock is None and not wait for lock, wait in locks_seen)


def test_given_the_prefetch_turned_off_when_synced_then_no_pdf_is_fetched():
    bills, syncs, connections, launcher = (
        FakeBills(),
        FakeSyncs(),
        FakeConnections(),
        FakeLauncher(),
    )
    connections.save(connection(FIRM))
    clio = FakeClio(records={i: clio_bill(i) for i in range(1, 5)})
    service = SyncService(
        bills=bills,
        syncs=syncs,
        connections=connections,
        clio_for=lambda conn: clio,
        clio_web_host_for=lambda conn: HOST,
        launcher=launcher,
        clock=lambda: T0 + timedelta(days=1),
    )
    service.request_sync(FIRM, SyncTrigger.MANUAL)
    outcome = service.run(*launcher.launched.pop(), lambda: 60.0)
    assert outcome.prefetch is None and clio.pdf_fetches == []
    assert outcome.run.status is SyncStatus.SUCCEEDED
