"""Reconciliation lines for the clerk (issue 13, item 7): the payments and refunds behind each
line (date, method, account, reference), and "recorded in Clio" until a sync confirms it."""

from dataclasses import replace
from datetime import timedelta

import pytest

from billbridge.domain.errors import NotFound, RuleViolation
from billbridge.domain.oauth_state import ConnectingUser
from billbridge.domain.payments import ReconciliationAction
from billbridge.domain.reconciliation import RecordedNote, RecordedStatus
from tests.fakes import T0
from tests.unit.pay_harness import FIRM, Pay

CLERK = ConnectingUser(user_id="u-1", email="clerk@firm.example")


def paid(amount: int, total: int = 20_000) -> Pay:
    pay = Pay()
    pay.bill(1, total=total)
    token = pay.link("lnk_1", 1)
    pay.pay(pay.checkout(token, [1], amount))
    return pay


def test_given_a_payment_not_in_clio_then_its_line_names_date_method_account_and_reference():
    pay = paid(5_000)
    (line,) = pay.api.reconciliation.report(FIRM)
    assert (line.action, line.amount_cents) == (ReconciliationAction.RECORD_PAYMENT, 5_000)
    (txn,) = line.transactions
    (payment,) = pay.world.payments.all_transactions(FIRM)
    assert (txn.id, txn.method.value, txn.account.value, txn.amount_cents) == (
        payment.id,
        "card",
        "operating",
        5_000,
    )
    assert txn.reference == payment.payment_intent_id and txn.reference.startswith("pi_")
    assert txn.date == payment.created_at
    assert line.recorded is None


def test_given_a_clerk_marks_a_line_recorded_then_it_says_who_and_when_until_clio_catches_up():
    pay = paid(5_000)
    marked = pay.api.reconciliation.mark_recorded(
        FIRM, 1, ReconciliationAction.RECORD_PAYMENT, 5_000, CLERK
    )
    assert marked.recorded is not None and marked.recorded.email == "clerk@firm.example"
    assert marked.recorded_status is RecordedStatus.WAITING_FOR_SYNC
    (line,) = pay.api.reconciliation.report(FIRM)
    assert line.recorded == marked.recorded

    # Clio catches up (the next sync brings its lower balance): the line drops out.
    stored = pay.money(1)
    pay.world.bills.items[(FIRM, 1)] = replace(
        stored, bill=replace(stored.bill, outstanding_clio_cents=15_000)
    )
    assert pay.api.reconciliation.report(FIRM) == []


def test_given_a_line_that_changed_since_the_report_then_marking_it_is_refused_in_words():
    pay = paid(5_000)
    with pytest.raises(RuleViolation) as refused:
        pay.api.reconciliation.mark_recorded(
            FIRM, 1, ReconciliationAction.RECORD_PAYMENT, 4_000, CLERK
        )
    assert refused.value.code == "line_changed"
    assert refused.value.message == (
        "This line changed: INV-00001 now has $50.00 to record, not $40.00. Reload the report."
    )
    assert pay.world.payments.recorded_notes(FIRM) == []
    with pytest.raises(NotFound):
        pay.api.reconciliation.mark_recorded(
            FIRM, 2, ReconciliationAction.RECORD_PAYMENT, 5_000, CLERK
        )
    with pytest.raises(RuleViolation):
        pay.api.reconciliation.mark_recorded(
            FIRM, 1, ReconciliationAction.REFUND_OVERPAYMENT, 5_000, CLERK
        )


def test_given_a_second_payment_then_a_note_on_the_first_amount_no_longer_matches_the_line():
    pay = Pay()
    pay.bill(1, total=20_000)
    token = pay.link("lnk_1", 1)
    pay.pay(pay.checkout(token, [1], 5_000))
    pay.api.reconciliation.mark_recorded(FIRM, 1, ReconciliationAction.RECORD_PAYMENT, 5_000, CLERK)
    pay.world.clock.advance(minutes=5)
    pay.pay(pay.checkout(token, [1], 3_000))
    (line,) = pay.api.reconciliation.report(FIRM)
    assert line.amount_cents == 8_000 and line.recorded is None
    assert [t.amount_cents for t in line.transactions] == [3_000, 5_000]


def test_given_a_note_then_a_sync_after_it_that_still_finds_clio_behind_says_so():
    note = RecordedNote(1, ReconciliationAction.RECORD_PAYMENT, 5_000, "u-1", None, T0)
    assert note.status(None) is RecordedStatus.WAITING_FOR_SYNC
    assert note.status(T0 - timedelta(minutes=1)) is RecordedStatus.WAITING_FOR_SYNC
    assert note.status(T0 + timedelta(minutes=1)) is RecordedStatus.NOT_IN_CLIO
