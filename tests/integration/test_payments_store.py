"""The ledger on DynamoDB (moto): Stripe events recorded once, in any order, in one transaction
each; concurrent deliveries and payments; refunds and reconciliation through the services."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import moto.dynamodb.models
import pytest

from billbridge.adapters.dynamo import DynamoBillRepository, DynamoPaymentLinkRepository
from billbridge.adapters.dynamo_payments import DynamoPaymentStore
from billbridge.domain.bills import BillKind
from billbridge.domain.errors import PaymentProviderError, RuleViolation
from billbridge.domain.ledger import refund_change
from billbridge.domain.payment_links import PaymentLink
from billbridge.domain.payments import Account, Allocation, Method, TxnStatus, encode_allocations
from billbridge.services.payments import PaymentLinks, StripeEvents
from billbridge.services.ports import RefundResult, StaleTransaction
from billbridge.services.reconciliation import Reconciliation
from local import moto_speedups
from local.aws_template import create_dynamodb_tables
from tests.integration.test_store import make_bill, no_sleep, template

FIRM = "firm-pay"
LINK = "pl_test"
NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
_numbers = itertools.count(1)


@dataclass
class Ledger:
    client: Any
    table: str
    store: DynamoPaymentStore
    bills: DynamoBillRepository

    def paid(self, bill_id: int) -> int:
        stored = self.bills.get(FIRM, bill_id)
        assert stored is not None
        return stored.paid_gl_cents

    def money(self, bill_id: int) -> Any:
        stored = self.bills.get(FIRM, bill_id)
        assert stored is not None
        return stored

    def entries(self) -> list[dict[str, Any]]:
        return self.store.ledger(FIRM)


@pytest.fixture
def ledger(aws: Any) -> Iterator[Ledger]:
    number = next(_numbers)
    tables = create_dynamodb_tables(aws, template(), name_for=lambda t: f"pay-{t}-{number}")
    table = tables["AppTable"]
    bills = DynamoBillRepository(aws, table, sleep=no_sleep)
    bills.save_clio_bills(
        FIRM,
        [
            make_bill(1, total_cents=10_000),
            replace(make_bill(2, total_cents=4_000), kind=BillKind.TRUST_REQUEST),
        ],
        NOW,
    )
    DynamoPaymentLinkRepository(aws, table).create(
        PaymentLink(id=LINK, firm_id=FIRM, bill_ids=(1, 2), created_at=NOW), "hash-of-token"
    )
    yield Ledger(aws, table, DynamoPaymentStore(aws, table, sleep=no_sleep), bills)
    aws.delete_table(TableName=table)


def session_event(
    event_type: str,
    session_id: str,
    allocations: tuple[Allocation, ...],
    *,
    paid: bool,
    method: Method = Method.CARD,
    event_id: str | None = None,
) -> dict[str, Any]:
    metadata = {
        "firm_id": FIRM,
        "link_id": LINK,
        "account": allocations[0].account.value,
        "method": method.value,
        "allocations": encode_allocations(allocations),
    }
    return {
        "id": event_id or f"evt_{event_type}_{session_id}",
        "object": "event",
        "type": event_type,
        "data": {
            "object": {
                "id": session_id,
                "object": "checkout.session",
                "amount_total": sum(a.amount_cents for a in allocations),
                "currency": "usd",
                "metadata": metadata,
                "payment_intent": f"pi_{session_id}",
                "payment_status": "paid" if paid else "unpaid",
                "status": "complete",
            }
        },
    }


OPERATING_3000 = (Allocation(1, Account.OPERATING, 3_000),)


def test_a_card_payment_is_recorded_once_in_one_transaction(ledger: Ledger) -> None:
    events = StripeEvents(ledger.store)
    event = session_event("checkout.session.completed", "cs_1", OPERATING_3000, paid=True)
    writes, reads = ledger.store.write_requests, ledger.store.read_requests

    assert events.handle(event).outcome == "applied"
    # One TransactWriteItems (ledger entry, transaction, bill, dedupe together) and one read.
    assert (ledger.store.write_requests - writes, ledger.store.read_requests - reads) == (1, 1)
    assert events.handle(event).outcome == "duplicate"

    assert ledger.paid(1) == 3_000
    bill = ledger.money(1)
    assert bill.baseline_outstanding_cents == 10_000
    assert bill.payable_cents == 7_000
    assert [(e["kind"], e["amount_cents"]) for e in ledger.entries()] == [("payment", 3_000)]


def test_ach_events_out_of_order_count_the_money_once(ledger: Ledger) -> None:
    events = StripeEvents(ledger.store)
    completed = session_event(
        "checkout.session.completed", "cs_2", OPERATING_3000, paid=False, method=Method.ACH
    )
    settled = session_event(
        "checkout.session.async_payment_succeeded",
        "cs_2",
        OPERATING_3000,
        paid=True,
        method=Method.ACH,
    )
    assert events.handle(settled).outcome == "applied"
    assert events.handle(completed).outcome == "stale"
    assert events.handle(completed).outcome == "duplicate"
    assert ledger.paid(1) == 3_000
    assert ledger.money(1).pending_cents == 0


def test_a_pending_ach_payment_is_not_paid_and_a_failure_frees_the_balance(ledger: Ledger) -> None:
    events = StripeEvents(ledger.store)
    events.handle(
        session_event(
            "checkout.session.completed", "cs_3", OPERATING_3000, paid=False, method=Method.ACH
        )
    )
    assert (ledger.paid(1), ledger.money(1).pending_cents, ledger.money(1).payable_cents) == (
        0,
        3_000,
        7_000,
    )
    events.handle(
        session_event(
            "checkout.session.async_payment_failed",
            "cs_3",
            OPERATING_3000,
            paid=False,
            method=Method.ACH,
        )
    )
    assert (ledger.paid(1), ledger.money(1).pending_cents, ledger.money(1).payable_cents) == (
        0,
        0,
        10_000,
    )
    txns = ledger.store.transactions_for_link(FIRM, LINK)
    assert [t.status for t in txns] == [TxnStatus.FAILED]
    assert ledger.entries() == []


def test_fifty_parallel_deliveries_of_one_event_record_it_once(ledger: Ledger) -> None:
    events = StripeEvents(ledger.store)
    event = session_event("checkout.session.completed", "cs_4", OPERATING_3000, paid=True)
    with ThreadPoolExecutor(max_workers=10) as pool:
        outcomes = list(pool.map(lambda _: events.handle(event).outcome, range(50)))
    assert outcomes.count("applied") == 1
    assert ledger.paid(1) == 3_000
    assert len(ledger.entries()) == 1


def test_parallel_payments_on_one_bill_all_add_up(ledger: Ledger) -> None:
    events = StripeEvents(ledger.store)
    payments = [
        session_event(
            "checkout.session.completed",
            f"cs_p{i}",
            (Allocation(1, Account.OPERATING, 100 + i),),
            paid=True,
        )
        for i in range(20)
    ]
    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(lambda e: events.handle(e).outcome, payments))
    assert outcomes == ["applied"] * 20
    assert ledger.paid(1) == sum(100 + i for i in range(20))


class FakeStripe:
    def __init__(self, status: str = "succeeded", error: Exception | None = None) -> None:
        self.status = status
        self.error = error
        self.calls: list[tuple[str, int, str]] = []

    def create_checkout_session(self, request: Any) -> Any:
        raise AssertionError("not used")

    def create_refund(
        self,
        payment_intent_id: str,
        amount_cents: int,
        metadata: dict[str, str],
        idempotency_key: str,
    ) -> RefundResult:
        self.calls.append((payment_intent_id, amount_cents, idempotency_key))
        if self.error:
            raise self.error
        return RefundResult(stripe_refund_id=f"re_{len(self.calls)}", status=self.status)


def links(ledger: Ledger, stripe: FakeStripe) -> PaymentLinks:
    return PaymentLinks(
        links=DynamoPaymentLinkRepository(ledger.client, ledger.table),
        bills=ledger.bills,
        store=ledger.store,
        gateway=lambda: stripe,
        link_url=lambda link: f"https://pay.test/{link.id}",
    )


def paid_by_card(ledger: Ledger, session: str = "cs_r") -> str:
    StripeEvents(ledger.store).handle(
        session_event("checkout.session.completed", session, OPERATING_3000, paid=True)
    )
    return f"pay_{session}"


def test_a_partial_card_refund_lowers_paid_gl_and_is_reported_for_clio(ledger: Ledger) -> None:
    txn_id = paid_by_card(ledger)
    stripe = FakeStripe()
    refund = links(ledger, stripe).refund(FIRM, LINK, txn_id, 1_000)
    assert refund.status is TxnStatus.SUCCEEDED
    assert stripe.calls == [("pi_cs_r", 1_000, refund.id)]
    assert ledger.paid(1) == 2_000
    payment = ledger.store.get_transaction(FIRM, LINK, txn_id)
    assert payment is not None and payment.refundable_cents == 2_000
    lines = Reconciliation(ledger.store, ledger.bills).report(FIRM)
    # Clio was never told of the payment: staff record 20.00 net (the refund included).
    assert [(line.bill.bill.id, line.action.value, line.amount_cents) for line in lines] == [
        (1, "record_payment", 2_000)
    ]
    assert [e["kind"] for e in ledger.entries()] == ["payment", "refund"]


def test_a_refund_stripe_refuses_leaves_the_money_refundable(ledger: Ledger) -> None:
    txn_id = paid_by_card(ledger)
    stripe = FakeStripe(error=PaymentProviderError("no"))
    with pytest.raises(PaymentProviderError):
        links(ledger, stripe).refund(FIRM, LINK, txn_id, 1_000)
    payment = ledger.store.get_transaction(FIRM, LINK, txn_id)
    assert payment is not None and payment.refundable_cents == 3_000
    assert ledger.paid(1) == 3_000


def test_concurrent_refunds_never_exceed_the_payment(ledger: Ledger) -> None:
    txn_id = paid_by_card(ledger)
    service = links(ledger, FakeStripe())

    def attempt(_: int) -> str:
        try:
            service.refund(FIRM, LINK, txn_id, 1_000)
            return "refunded"
        except RuleViolation as exc:
            return exc.code

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(attempt, range(6)))
    assert outcomes.count("refunded") == 3
    assert ledger.paid(1) == 0


class WatchedLock:
    """The emulator's store lock, telling when a thread had to wait for it."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.waited = threading.Event()

    def __enter__(self) -> WatchedLock:
        if not self._lock.acquire(blocking=False):
            self.waited.set()
            self._lock.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


def test_given_a_stale_refund_write_in_flight_then_a_read_never_sees_its_money(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 9 finding 10 (Paid (GL) 2,000 after refunding 3,000 of 8,000), forced: the refund
    webhook plans from the refund still pending, the API records the refund first, and the
    webhook's transaction then fails its version conditions. The emulator (moto) applies a
    transaction's actions one by one and rolls back at the end, so the bill's -3,000 is in the
    table for a moment; a read in that moment (the e2e test's GET /invoices) saw 2,000. Reads
    must wait for writes, as DynamoDB's read-committed isolation guarantees."""
    events = StripeEvents(ledger.store)
    eight = (Allocation(1, Account.OPERATING, 8_000),)
    events.handle(session_event("checkout.session.completed", "cs_10", eight, paid=True))
    stripe = FakeStripe()
    stale: list[Any] = []

    def webhook_plans_meanwhile(*args: Any, **kwargs: Any) -> RefundResult:
        # refund.created is planned now, from our refund still pending...
        answer = FakeStripe.create_refund(stripe, *args, **kwargs)
        (refund,) = [t for t in ledger.store.transactions_for_link(FIRM, LINK) if t.payment_id]
        payment = ledger.store.get_transaction(FIRM, LINK, "pay_cs_10")
        assert payment is not None
        stale.append(refund_change(refund, payment, TxnStatus.SUCCEEDED, NOW, "evt_created"))
        return answer

    stripe.create_refund = webhook_plans_meanwhile  # type: ignore[method-assign]
    links(ledger, stripe).refund(FIRM, LINK, "pay_cs_10", 3_000)  # ...the API's answer wins
    assert ledger.paid(1) == 5_000

    lock = WatchedLock()
    monkeypatch.setattr(moto_speedups, "_write_lock", lock)
    seen: list[int] = []
    backend = moto.dynamodb.models.DynamoDBBackend
    update_item = backend.update_item

    def pause_after_the_bill_update(self: Any, table_name: str, key: Any, **kw: Any) -> Any:
        result = update_item(self, table_name, key, **kw)
        if key["sk"]["S"].startswith("BILL#") and not seen:
            reader = threading.Thread(target=lambda: seen.append(ledger.paid(1)))
            reader.start()
            while not (lock.waited.is_set() or not reader.is_alive()):
                reader.join(0.01)
            threads.append(reader)
        return result

    threads: list[threading.Thread] = []
    monkeypatch.setattr(backend, "update_item", pause_after_the_bill_update)
    with pytest.raises(StaleTransaction):
        ledger.store.apply(stale[0], NOW)
    for reader in threads:
        reader.join()
    assert seen == [5_000]
    assert ledger.paid(1) == 5_000


def dispute_event(event_type: str, payment_intent: str, status: str, amount: int) -> dict[str, Any]:
    dispute = {
        "id": f"dp_{payment_intent}",
        "object": "dispute",
        "amount": amount,
        "payment_intent": payment_intent,
        "status": status,
        "balance_transactions": [],
    }
    return {
        "id": f"evt_{event_type}_{status}",
        "object": "event",
        "type": event_type,
        "data": {"object": dispute},
    }


def test_given_an_inquiry_closed_as_warning_closed_then_the_bill_is_no_longer_flagged(
    ledger: Ledger,
) -> None:
    """Issue 9 finding 9 on the real store: an inquiry moves no money and, once closed as
    warning_closed, leaves no flag behind."""
    events = StripeEvents(ledger.store)
    events.handle(session_event("checkout.session.completed", "cs_9", OPERATING_3000, paid=True))
    opened = dispute_event("charge.dispute.created", "pi_cs_9", "warning_needs_response", 3_000)
    assert events.handle(opened).outcome == "applied"
    assert ledger.paid(1) == 3_000
    closed = dispute_event("charge.dispute.closed", "pi_cs_9", "warning_closed", 3_000)
    events.handle(closed)
    assert ledger.paid(1) == 3_000
    assert ledger.money(1).all_flags() == ("payment_not_in_clio",)


def test_given_two_links_checking_out_one_bill_in_parallel_then_only_one_holds_it(
    ledger: Ledger,
) -> None:
    """Issue 9 finding 2 on DynamoDB: both checkouts read the bill (nothing held) before either
    writes; the bill's money_version condition lets one write and sends the other back to
    re-read, where it finds the first one's hold (another link) and is refused."""
    from billbridge.domain.payment_links import link_token, token_hash
    from billbridge.services.payments import PayPage
    from billbridge.services.ports import PaymentAccounts
    from tests.fakes import FakeSettings
    from tests.fakes import FakeStripe as Gateway

    key = b"link-key"
    links_repo = DynamoPaymentLinkRepository(ledger.client, ledger.table)
    ledger.bills.save_clio_bills(FIRM, [make_bill(3, total_cents=5_000)], NOW)
    tokens = {}
    for link_id, bills in (("pl_one", (1,)), ("pl_two", (1, 3))):
        tokens[link_id] = link_token(key, FIRM, link_id)
        links_repo.create(
            PaymentLink(id=link_id, firm_id=FIRM, bill_ids=bills, created_at=NOW),
            token_hash(tokens[link_id]),
        )
    ledger.store.save_payment_accounts(PaymentAccounts(FIRM, "acct_t", "acct_o"))
    gateway = Gateway(clock=lambda: NOW)
    both_read = threading.Barrier(2)
    gateway.before_create_session = lambda request: both_read.wait(timeout=30)
    page = PayPage(
        links=links_repo,
        bills=ledger.bills,
        store=ledger.store,
        gateway=lambda: gateway,
        pay_base_url="https://pay.test",
        settings=FakeSettings(),
        clock=lambda: NOW,
    )

    def checkout(link_id: str) -> str:
        try:
            page.checkout(tokens[link_id], [1], None, Method.CARD)
            return "held"
        except RuleViolation as refused:
            return refused.code
        finally:
            gateway.before_create_session = None  # the re-read goes on without waiting

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = sorted(pool.map(checkout, ["pl_one", "pl_two"]))

    assert outcomes == ["bill_being_paid", "held"]
    (hold,) = ledger.store.holds(FIRM, [1], NOW)
    assert hold.amount_cents == 10_000
    opened = [s for s, v in gateway.sessions.items() if v["status"] == "open"]
    assert opened == [hold.session_id]  # the refused checkout closed the session it made


# --- receipts (X5) --------------------------------------------------------------------------


def test_given_concurrent_claims_of_one_receipt_then_exactly_one_wins(ledger: Ledger) -> None:
    from billbridge.adapters.dynamo_receipts import DynamoReceiptLog

    log = DynamoReceiptLog(ledger.client, ledger.table, sleep=no_sleep)
    with ThreadPoolExecutor(max_workers=8) as pool:
        won = list(
            pool.map(lambda _: log.claim(FIRM, "pay_cs_1", "payment_succeeded", NOW), range(8))
        )
    assert won.count(True) == 1
    assert log.claim(FIRM, "pay_cs_1", "payment_processing", NOW)  # another kind: its own

    log.finish(FIRM, "pay_cs_1", "payment_succeeded", "sent", "msg-1")
    log.release(FIRM, "pay_cs_1", "payment_succeeded")  # only a claim still sending goes
    assert not log.claim(FIRM, "pay_cs_1", "payment_succeeded", NOW)

    log.release(FIRM, "pay_cs_1", "payment_processing")  # throttled: SES took nothing
    assert log.claim(FIRM, "pay_cs_1", "payment_processing", NOW)
    item = ledger.client.get_item(
        TableName=ledger.table,
        Key={"pk": {"S": f"FIRM#{FIRM}"}, "sk": {"S": "RECEIPT#pay_cs_1#payment_succeeded"}},
    )["Item"]
    assert (item["status"]["S"], item["detail"]["S"]) == ("sent", "msg-1")
