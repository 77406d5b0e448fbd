"""The client's pay page use cases on fakes (issue 13): bill statuses (payable, processing,
paid), the confirmation after Checkout (recorded, or read from Stripe when the client is back
before the webhook), and the bill PDFs a link serves."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from billbridge.domain.bills import BillState
from billbridge.domain.errors import NotFound, RuleViolation
from billbridge.domain.payments import Method
from billbridge.domain.receipts import reference
from tests.fakes import connection
from tests.unit.pay_harness import FIRM, Pay


@pytest.fixture
def pay() -> Pay:
    return Pay()


def test_given_an_ach_payment_pending_then_the_bill_is_processing_not_paid(pay: Pay) -> None:
    token = pay.link("pl_1", pay.bill(1, 40_000), pay.bill(2, 10_000))
    session = pay.checkout(token, [1], method="ach")
    pay.pay(session)

    (first, second) = pay.page.view(token).bills
    assert (first.status, first.payable_cents, first.processing_cents) == ("processing", 0, 40_000)
    assert first.note is not None and "A bank payment of $400.00 is processing" in first.note
    assert (second.status, second.payable_cents) == ("payable", 10_000)

    pay.deliver(pay.world.stripe.settle(session))
    assert pay.page.view(token).bills[0].status == "paid"


def test_given_part_of_a_bill_processing_then_the_rest_is_payable_and_says_so(pay: Pay) -> None:
    token = pay.link("pl_1", pay.bill(1, 40_000))
    pay.pay(pay.checkout(token, [1], amount=15_000, method="ach"))

    (bill,) = pay.page.view(token).bills
    assert (bill.status, bill.payable_cents, bill.processing_cents) == ("payable", 25_000, 15_000)
    assert bill.note == "A bank payment of $150.00 is processing; the amount due is what is left."


def test_given_a_bill_paid_in_clio_then_paid_and_a_void_one_unavailable(pay: Pay) -> None:
    token = pay.link("pl_1", pay.bill(1), pay.bill(2))
    pay.set_state(1, BillState.PAID)
    pay.set_state(2, BillState.VOID)
    assert [b.status for b in pay.page.view(token).bills] == ["paid", "unavailable"]


def test_given_too_much_when_checking_out_then_the_message_is_in_money_format(pay: Pay) -> None:
    token = pay.link("pl_1", pay.bill(1, 37_210))
    with pytest.raises(RuleViolation) as refused:
        pay.checkout(token, [1], amount=50_000)
    assert refused.value.message == (
        "The amount, $500.00, is more than is due on the chosen bills: at most $372.10 can be paid."
    )


def test_given_a_card_payment_recorded_then_the_confirmation_has_every_fact(pay: Pay) -> None:
    token = pay.link("pl_1", pay.bill(1, 12_000), pay.bill(2, 8_000, kind="invoice"))
    session = pay.checkout(token, [1, 2], amount=15_000)
    pay.pay(session)

    done = pay.page.confirmation(token, session)
    assert done.state == "succeeded" and done.facts is not None
    facts = done.facts
    assert (facts.amount_cents, facts.method, facts.account.value) == (
        15_000,
        Method.CARD,
        "operating",
    )
    assert facts.reference == reference(f"pay_{session}")
    # Oldest due first: bill 1 in full, then part of bill 2.
    assert [(line.bill_number, line.amount_cents) for line in facts.lines] == [
        ("INV-00001", 12_000),
        ("INV-00002", 3_000),
    ]


def test_given_the_client_back_before_the_webhook_then_stripes_session_is_shown(pay: Pay) -> None:
    token = pay.link("pl_1", pay.bill(1, 12_000))
    session = pay.checkout(token, [1], method="ach")
    pay.world.stripe.pay(session)  # paid at Stripe; its webhook has not arrived

    done = pay.page.confirmation(token, session)
    assert done.state == "processing" and done.facts is not None
    assert done.facts.amount_cents == 12_000 and done.facts.method is Method.ACH
    assert done.facts.reference == reference(f"pay_{session}")  # the receipt's, to come


def test_given_an_unpaid_session_then_not_paid_and_another_links_session_not_found(
    pay: Pay,
) -> None:
    mine = pay.link("pl_1", pay.bill(1))
    theirs = pay.link("pl_2", pay.bill(2))
    session = pay.checkout(theirs, [2])

    assert pay.page.confirmation(theirs, session).state == "not_paid"
    with pytest.raises(NotFound):
        pay.page.confirmation(mine, session)
    with pytest.raises(NotFound):
        pay.page.confirmation(mine, "cs_test_nobody")


def test_given_a_bill_of_the_link_then_its_pdf_from_the_cache_else_from_clio(pay: Pay) -> None:
    token = pay.link("pl_1", pay.bill(1), pay.bill(2))
    pay.bill(3)  # on no link of this token
    pay.world.connections.save(connection(FIRM))
    stored = pay.money(1)
    pay.world.bills.items[(FIRM, 1)] = replace(stored, pdf_etag=stored.bill.etag)
    pay.world.pdfs.put(FIRM, 1, stored.bill.etag, b"%PDF cached")

    assert pay.page.bill_pdf(token, 1) == ("INV-00001.pdf", b"%PDF cached")
    name, pdf = pay.page.bill_pdf(token, 2)  # not cached: fetched from Clio, then kept
    assert name == "INV-00002.pdf" and pdf.startswith(b"%PDF")
    assert pay.world.pdfs.get(FIRM, 2, pay.money(2).bill.etag) == pdf
    with pytest.raises(NotFound):
        pay.page.bill_pdf(token, 3)


def test_given_due_dates_then_only_payable_bills_past_their_date_are_past_due(pay: Pay) -> None:
    token = pay.link("pl_1", pay.bill(1), pay.bill(2))  # due 2026-10-02 and 2026-10-03
    pay.set_state(2, BillState.PAID)
    first, second = pay.page.view(token).bills
    assert first.past_due(date(2026, 10, 3)) and not first.past_due(date(2026, 10, 2))
    assert not second.past_due(date(2027, 1, 1))  # paid: nothing is late
