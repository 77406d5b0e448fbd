"""Receipts by email (X5) on fakes: what each transaction's state sends, exactly once whatever
Stripe delivers again or out of order, and the words the client reads."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from billbridge.domain.errors import SesThrottled
from billbridge.domain.payments import Method, TxnStatus
from billbridge.domain.receipts import ReceiptKind, reference
from billbridge.domain.settings import FirmSettings
from tests.unit.pay_harness import FIRM, Pay

CLIENT = "client@example.com"


class Receipting(Pay):
    """The harness, with each delivery followed by what the webhook handler does next."""

    def __init__(self) -> None:
        super().__init__()
        self.receipts = self.world.stripe_webhook().receipts

    def deliver(self, events: list[dict[str, Any]]) -> list[str]:
        outcomes = []
        for event in events:
            outcome = self.events.handle(event)
            self.receipts.send_for(outcome.touched)
            outcomes.append(outcome.outcome)
        return outcomes

    def subjects(self) -> list[str]:
        return [m.subject for m in self.world.mailer.sent]


@pytest.fixture
def pay() -> Receipting:
    world = Receipting()
    world.world.settings.put(
        FIRM, FirmSettings(firm_name="Smith & Jones LLP", reply_to="billing@smith-jones.com")
    )
    return world


def test_given_a_card_payment_then_one_receipt_with_every_fact_in_money_format(
    pay: Receipting,
) -> None:
    token = pay.link("pl_1", pay.bill(1, 113_025), pay.bill(2, 5_000))
    session = pay.checkout(token, [1, 2])
    events = pay.world.stripe.pay(session)

    pay.deliver(events + events)  # Stripe delivers the same event twice

    (email,) = pay.world.mailer.sent
    assert email.to == [CLIENT]
    assert email.subject == "Receipt: your payment of $1,180.25 to Smith & Jones LLP"
    assert email.reply_to == "billing@smith-jones.com"
    text = email.text
    assert "Thank you: your payment of $1,180.25 was received." in text
    assert "Payment date: November 1, 2026" in text
    assert "Method: Card" in text
    assert "Paid into: Smith & Jones LLP's operating account" in text
    assert f"Reference: {reference('pay_' + session)}" in text
    assert "Invoice INV-00001: $1,130.25" in text and "Invoice INV-00002: $50.00" in text
    assert "cents" not in text and "113025" not in text
    assert "&amp;" in email.html and "<script" not in email.html


def test_given_an_ach_payment_then_processing_then_succeeded_each_once(pay: Receipting) -> None:
    token = pay.link("pl_1", pay.bill(1, 40_000))
    session = pay.checkout(token, [1], method="ach")
    started = pay.world.stripe.pay(session)
    pay.deliver(started + started)
    assert pay.subjects() == ["Your bank payment of $400.00 to Smith & Jones LLP is processing"]
    assert "take a few business days to clear" in pay.world.mailer.sent[0].text
    assert "Method: Bank account (ACH)" in pay.world.mailer.sent[0].text

    settled = pay.world.stripe.settle(session)
    pay.deliver(settled + started + settled)  # a late, repeated completion changes nothing

    assert pay.subjects() == [
        "Your bank payment of $400.00 to Smith & Jones LLP is processing",
        "Receipt: your payment of $400.00 to Smith & Jones LLP",
    ]


def test_given_an_ach_payment_that_fails_then_the_client_is_told_and_may_pay_again(
    pay: Receipting,
) -> None:
    token = pay.link("pl_1", pay.bill(1, 40_000))
    session = pay.checkout(token, [1], method="ach")
    pay.deliver(pay.world.stripe.pay(session))
    assert pay.page.view(token).bills[0].status == "processing"

    failed = pay.world.stripe.fail(session)
    pay.deliver(failed + failed)

    assert pay.subjects()[1:] == [
        "Your bank payment of $400.00 to Smith & Jones LLP did not go through"
    ]
    failure = pay.world.mailer.sent[1]
    assert "can be paid again from the same payment link" in failure.text
    assert f"Pay again: https://pay.test/pay/{token}" in failure.text
    (bill,) = pay.page.view(token).bills
    assert (bill.status, bill.payable_cents) == ("payable", 40_000)


@pytest.mark.parametrize(
    "order",
    # Every distinct ordering of two deliveries of each event.
    sorted(set(itertools.permutations(["completed", "settled", "completed", "settled"]))),
)
def test_given_ach_events_in_any_order_with_duplicates_then_one_succeeded_receipt(
    pay: Receipting, order: tuple[str, ...]
) -> None:
    token = pay.link("pl_1", pay.bill(1, 40_000))
    session = pay.checkout(token, [1], method="ach")
    completed = pay.world.stripe.pay(session)
    settled = pay.world.stripe.settle(session)
    events = {"completed": completed, "settled": settled}

    for name in order:
        pay.deliver(events[name])

    subjects = pay.subjects()
    assert subjects.count("Receipt: your payment of $400.00 to Smith & Jones LLP") == 1
    assert len(subjects) == len(set(subjects))  # no kind twice
    if order[0] == "settled":  # settled first: "processing" would be news from the past
        assert len(subjects) == 1


def test_given_a_refund_from_the_firm_then_one_refund_receipt(pay: Receipting) -> None:
    token = pay.link("pl_1", pay.bill(1, 8_000))
    session = pay.checkout(token, [1])
    pay.deliver(pay.world.stripe.pay(session))
    links = pay.api.payment_links

    refund = links.refund(FIRM, "pl_1", f"pay_{session}", 3_000)
    assert refund.status is TxnStatus.SUCCEEDED
    pay.api.receipts.send_due(FIRM, "pl_1", refund.id)  # what the refund route does
    event = pay.world.stripe.refund_event(refund.stripe_refund_id, "refund.updated", "succeeded")
    pay.deliver([event, event])

    assert pay.subjects() == [
        "Receipt: your payment of $80.00 to Smith & Jones LLP",
        "Refund of $30.00 from Smith & Jones LLP",
    ]
    text = pay.world.mailer.sent[1].text
    assert "Smith & Jones LLP refunded $30.00 to you." in text
    assert "Refunded from: Smith & Jones LLP's operating account" in text
    assert "Invoice INV-00001: $30.00" in text


def test_given_ses_throttles_then_the_receipt_waits_for_stripes_retry_and_goes_once(
    pay: Receipting,
) -> None:
    token = pay.link("pl_1", pay.bill(1, 8_000))
    session = pay.checkout(token, [1])
    events = pay.world.stripe.pay(session)
    pay.world.mailer.refuse_next = [SesThrottled("slow down")]

    with pytest.raises(SesThrottled):
        pay.deliver(events)  # the handler answers 503: Stripe sends the event again
    assert pay.world.mailer.sent == []
    pay.deliver(events)
    pay.deliver(events)

    assert pay.subjects() == ["Receipt: your payment of $80.00 to Smith & Jones LLP"]


def test_given_a_firm_name_with_a_line_break_then_the_subject_stays_one_line(
    pay: Receipting,
) -> None:
    # Settings saved before the header check existed may hold one.
    pay.world.settings.put(
        FIRM,
        FirmSettings.model_construct(**{**FirmSettings().__dict__, "firm_name": "A\r\nBcc: x"}),
    )
    token = pay.link("pl_1", pay.bill(1, 8_000))
    pay.deliver(pay.world.stripe.pay(pay.checkout(token, [1])))

    (email,) = pay.world.mailer.sent
    assert "\r" not in email.subject and "\n" not in email.subject
    assert email.subject == "Receipt: your payment of $80.00 to A Bcc: x"


def test_given_a_bill_without_a_usable_address_then_no_email_and_nothing_breaks(
    pay: Receipting,
) -> None:
    token = pay.link("pl_1", pay.bill(1, 8_000))
    stored = pay.money(1)
    from dataclasses import replace

    bad = replace(stored.bill.client, email="not an address\r\nBcc: x@y.z")
    pay.world.bills.items[(FIRM, 1)] = replace(stored, bill=replace(stored.bill, client=bad))
    session = pay.checkout(token, [1])

    assert pay.deliver(pay.world.stripe.pay(session)) == ["applied"]
    assert pay.world.mailer.sent == []
    ((status, _),) = pay.world.receipts.records.values()
    assert status == "not_sent"


def test_reference_is_short_stable_and_unambiguous() -> None:
    first = reference("pay_cs_test_1")
    assert first == reference("pay_cs_test_1") != reference("pay_cs_test_2")
    assert len(first) == len("BB-XXXX-XXXX") and not set(first[3:]) & set("01OI")


def test_given_a_card_payment_pending_then_no_receipt_kind() -> None:
    from billbridge.domain.payments import Account, Transaction, TxnKind
    from billbridge.domain.receipts import receipt_due
    from tests.fakes import T0

    txn = Transaction(
        "pay_x",
        FIRM,
        "pl_1",
        TxnKind.PAYMENT,
        Method.CARD,
        Account.OPERATING,
        TxnStatus.PENDING,
        100,
        "USD",
        (),
        T0,
        T0,
    )
    assert receipt_due(txn) is None
    assert receipt_due(txn.__class__(**{**txn.__dict__, "method": Method.ACH})) is (
        ReceiptKind.PAYMENT_PROCESSING
    )


@pytest.mark.parametrize(
    "order", sorted(set(itertools.permutations(["completed", "failed", "completed", "failed"])))
)
def test_given_a_failing_ach_payment_in_any_order_then_one_failure_email_and_payable_again(
    pay: Receipting, order: tuple[str, ...]
) -> None:
    token = pay.link("pl_1", pay.bill(1, 40_000))
    session = pay.checkout(token, [1], method="ach")
    events = {"completed": pay.world.stripe.pay(session), "failed": pay.world.stripe.fail(session)}

    for name in order:
        pay.deliver(events[name])

    subjects = pay.subjects()
    failure = "Your bank payment of $400.00 to Smith & Jones LLP did not go through"
    assert subjects.count(failure) == 1 and len(subjects) == len(set(subjects))
    assert subjects[-1] == failure
    (bill,) = pay.page.view(token).bills
    assert (bill.status, bill.payable_cents) == ("payable", 40_000)
