"""The payment use cases (services/payments.py) on fakes: the pay page and checkout, Stripe's
events, refunds and reconciliation. Each finding of issue 9 on the money has its test here."""

from __future__ import annotations

from typing import Any

import pytest

from billbridge.domain.bills import BillState
from billbridge.domain.errors import Contended, RuleViolation
from billbridge.domain.payments import TxnStatus
from billbridge.services.ports import RefundResult, StaleTransaction
from tests.fakes import T0
from tests.unit.pay_harness import FIRM, Pay


@pytest.fixture
def pay() -> Pay:
    return Pay()


# --- finding 1: void and deleted bills --------------------------------------------------------


@pytest.mark.parametrize("state", [BillState.VOID, BillState.DELETED])
def test_given_a_bill_void_or_deleted_in_clio_then_the_pay_page_offers_nothing_to_pay(
    pay: Pay, state: BillState
) -> None:
    token = pay.link("pl_1", pay.bill(1), pay.bill(2))
    pay.set_state(1, state)
    (void, live) = pay.page.view(token).bills
    assert (void.payable_cents, live.payable_cents) == (0, 20_000)
    assert void.note == (
        "This bill can no longer be paid online: "
        f"the firm {'voided' if state is BillState.VOID else 'deleted'} it."
    )
    assert pay.page.view(token).total_payable_cents == 20_000


@pytest.mark.parametrize("state", [BillState.VOID, BillState.DELETED])
def test_given_a_bill_void_or_deleted_when_checking_it_out_then_it_is_refused(
    pay: Pay, state: BillState
) -> None:
    token = pay.link("pl_1", pay.bill(1))
    pay.set_state(1, state)
    with pytest.raises(RuleViolation) as refused:
        pay.checkout(token, [1])
    assert refused.value.code == "bill_not_payable"
    assert pay.world.stripe.sessions == {}


def test_given_a_bill_voided_between_checkout_and_payment_then_the_money_is_kept_and_flagged(
    pay: Pay,
) -> None:
    token = pay.link("pl_1", pay.bill(1))
    session = pay.checkout(token, [1])
    pay.set_state(1, BillState.VOID)  # the firm voids it in Clio; a sync brings it here

    assert pay.pay(session) == ["applied"]  # the money moved: it is recorded, never lost

    bill = pay.money(1)
    assert bill.paid_gl_cents == 20_000
    assert "paid_but_unpayable" in bill.all_flags()
    assert pay.report() == [(1, "refund_or_apply", 20_000)]


# --- finding 2: one bill, two payment links ----------------------------------------------------


def test_given_a_bill_on_two_links_when_both_check_it_out_then_the_second_is_refused(
    pay: Pay,
) -> None:
    """Issue 9 finding 2: [X] on link 1, [X, Y] on link 2, X checked out on both."""
    x, y = pay.bill(1, 20_000), pay.bill(2, 5_000)
    first, second = pay.link("pl_1", x), pay.link("pl_2", x, y)
    session = pay.checkout(first, [x])

    with pytest.raises(RuleViolation) as refused:
        pay.checkout(second, [x])
    assert refused.value.code == "bill_being_paid"
    held, free = pay.page.view(second).bills
    assert (held.payable_cents, free.payable_cents) == (0, 5_000)
    assert held.note is not None and "another checkout" in held.note

    pay.pay(session)
    assert pay.money(x).paid_gl_cents == 20_000
    assert pay.world.payments.holds(FIRM, [x], T0) == []  # the payment ended the hold
    assert [b.payable_cents for b in pay.page.view(second).bills] == [0, 5_000]


def test_given_a_second_checkout_on_the_same_link_then_the_first_session_is_closed(
    pay: Pay,
) -> None:
    token = pay.link("pl_1", pay.bill(1))
    first = pay.checkout(token, [1])
    second = pay.checkout(token, [1])
    assert pay.world.stripe.sessions[first]["status"] == "expired"
    assert [h.session_id for h in pay.world.payments.holds(FIRM, [1], T0)] == [second]


def test_given_a_completed_session_on_another_link_then_its_hold_stays_until_its_payment(
    pay: Pay,
) -> None:
    x = pay.bill(1)
    first, second = pay.link("pl_1", x), pay.link("pl_2", x, pay.bill(2))
    session = pay.checkout(first, [x])
    events = pay.world.stripe.pay(session)  # paid at Stripe; the webhook is still on its way
    with pytest.raises(RuleViolation):
        pay.checkout(second, [x])
    pay.deliver(events)
    with pytest.raises(RuleViolation) as refused:
        pay.checkout(second, [x])
    assert refused.value.code == "nothing_payable"


@pytest.mark.parametrize("same_link", [False, True])
def test_given_two_checkouts_in_the_same_instant_then_only_one_session_can_be_paid(
    pay: Pay, same_link: bool
) -> None:
    """Both read the bill before either writes: the second write finds the bill changed,
    re-plans, and either is refused (another link's hold) or closes the first (same link)."""
    x = pay.bill(1)
    first = pay.link("pl_1", x)
    second = first if same_link else pay.link("pl_2", x, pay.bill(2))
    winner: list[str] = []

    def the_other_checkout_goes_first(change: object) -> None:
        winner.append(pay.checkout(second, [x]))

    pay.world.payments.before_hold = the_other_checkout_goes_first
    if same_link:
        loser = pay.checkout(first, [x])
        assert pay.world.stripe.sessions[winner[0]]["status"] == "expired"
        open_ = [loser]
    else:
        with pytest.raises(RuleViolation) as refused:
            pay.checkout(first, [x])
        assert refused.value.code == "bill_being_paid"
        open_ = winner
    sessions = pay.world.stripe.sessions
    assert [s for s, v in sessions.items() if v["status"] == "open"] == open_
    assert sum(h.amount_cents for h in pay.world.payments.holds(FIRM, [x], T0)) == 20_000


def test_given_an_overpayment_that_slips_through_then_it_is_flagged_and_to_refund(
    pay: Pay,
) -> None:
    """Two sessions on one bill both paid (a hold that lapsed before its webhook came): the
    money is recorded, the bill flagged overpaid, the excess listed to refund."""
    x = pay.bill(1)
    first, second = pay.link("pl_1", x), pay.link("pl_2", x, pay.bill(2))
    late = pay.checkout(first, [x])
    late_events = pay.world.stripe.pay(late)
    pay.world.clock.advance(hours=2)  # the first webhook is delayed past its hold
    pay.pay(pay.checkout(second, [x]))
    pay.deliver(late_events)

    bill = pay.money(x)
    assert bill.paid_gl_cents == 40_000
    assert "overpaid" in bill.all_flags()
    assert pay.report() == [(1, "record_payment", 20_000), (1, "refund_overpayment", 20_000)]


# --- finding 10: the refund's API answer racing its webhooks -----------------------------------


def test_given_the_refund_webhook_planned_before_the_api_answer_then_it_counts_once(
    pay: Pay,
) -> None:
    """The interleaving of the flaky e2e run, forced: refund.created is planned while our refund
    is still pending, the API records Stripe's answer before that plan is written, then the
    webhook writes. Its write is conditional on the versions it read, so it fails, re-reads and
    changes nothing: Paid (GL) is 5,000, one refund entry."""
    token = pay.link("pl_1", pay.bill(1, 8_000))
    session = pay.checkout(token, [1])
    pay.pay(session)
    stripe, store, links = pay.world.stripe, pay.world.payments, pay.api.payment_links
    original = stripe.create_refund
    answers: list[tuple[str, RefundResult]] = []

    def answer_later(*args: Any, **kwargs: Any) -> RefundResult:
        result = original(*args, **kwargs)
        answers.append((kwargs["metadata"]["refund_id"], result))
        return RefundResult(result.stripe_refund_id, "pending")  # the answer is held back

    stripe.create_refund = answer_later  # type: ignore[method-assign]
    links.refund(FIRM, "pl_1", f"pay_{session}", 3_000)
    ((refund_id, answer),) = answers
    webhook = stripe.refund_event(answer.stripe_refund_id, "refund.created", "succeeded")

    def api_answer_lands_first(change: object) -> None:
        links.record_refund_answer(FIRM, "pl_1", refund_id, answer)

    store.before_apply = api_answer_lands_first
    assert pay.deliver([webhook]) == ["stale"]

    assert pay.money(1).paid_gl_cents == 5_000
    assert [e.kind.value for e in store.ledger] == ["payment", "refund"]
    assert store.get_transaction(FIRM, "pl_1", refund_id).status is TxnStatus.SUCCEEDED  # type: ignore[union-attr]


# --- finding 9: disputes ---------------------------------------------------------------------


def dispute(pay: Pay, pi: str, type_: str, status: str, amount: int, *balance: int) -> str:
    (outcome,) = pay.deliver(
        [pay.world.stripe.dispute_event(pi, type_, status, amount, tuple(balance))]
    )
    return outcome


@pytest.fixture
def paid(pay: Pay) -> str:
    token = pay.link("pl_1", pay.bill(1, 6_500))
    session = pay.checkout(token, [1])
    pay.pay(session)
    return f"pi_{session}"


def test_given_an_inquiry_closed_as_warning_closed_then_its_flag_clears_and_no_money_moved(
    pay: Pay, paid: str
) -> None:
    """Issue 9 finding 9: an inquiry is not a chargeback, and warning_closed ends it."""
    dispute(pay, paid, "charge.dispute.created", "warning_needs_response", 6_500)
    assert "inquiry" in pay.money(1).all_flags()
    assert "disputed" not in pay.money(1).all_flags()
    assert pay.money(1).paid_gl_cents == 6_500
    dispute(pay, paid, "charge.dispute.updated", "warning_under_review", 6_500)
    dispute(pay, paid, "charge.dispute.closed", "warning_closed", 6_500)
    bill = pay.money(1)
    assert not {"inquiry", "disputed"} & set(bill.all_flags())
    assert bill.paid_gl_cents == 6_500


@pytest.mark.parametrize(
    ("ending", "paid_after", "flags"),
    [("won", 6_500, set()), ("lost", 0, {"chargeback_lost"})],
)
def test_given_a_chargeback_then_paid_gl_follows_the_money_until_the_bank_decides(
    pay: Pay, paid: str, ending: str, paid_after: int, flags: set[str]
) -> None:
    dispute(pay, paid, "charge.dispute.created", "needs_response", 6_500)
    dispute(pay, paid, "charge.dispute.funds_withdrawn", "needs_response", 6_500, -6_500)
    bill = pay.money(1)
    assert (bill.paid_gl_cents, bill.disputed_cents, bill.payable_cents) == (0, 6_500, 0)
    assert "disputed" in bill.all_flags()
    dispute(pay, paid, "charge.dispute.closed", ending, 6_500)
    if ending == "won":
        dispute(pay, paid, "charge.dispute.funds_reinstated", "won", 6_500, -6_500, 6_500)
    bill = pay.money(1)
    assert (bill.paid_gl_cents, bill.disputed_cents) == (paid_after, 0)
    assert {"inquiry", "disputed", "chargeback_lost"} & set(bill.all_flags()) == flags


def test_given_an_inquiry_then_prevented_then_nothing_moved_and_no_flag_is_left(
    pay: Pay, paid: str
) -> None:
    dispute(pay, paid, "charge.dispute.created", "warning_needs_response", 6_500)
    dispute(pay, paid, "charge.dispute.closed", "prevented", 6_500)
    bill = pay.money(1)
    assert (bill.paid_gl_cents, set(bill.all_flags()) & {"inquiry", "disputed"}) == (6_500, set())


def test_a_checkout_session_expired_event_ends_its_holds(pay: Pay) -> None:
    x = pay.bill(1)
    first, second = pay.link("pl_1", x), pay.link("pl_2", x, pay.bill(2))
    session = pay.checkout(first, [x])
    pay.world.stripe.sessions[session]["status"] = "expired"
    assert pay.deliver(pay.world.stripe.expire_event(session)) == ["applied"]
    assert pay.checkout(second, [x])


def test_a_hold_lapses_with_its_session(pay: Pay) -> None:
    x = pay.bill(1)
    first, second = pay.link("pl_1", x), pay.link("pl_2", x, pay.bill(2))
    pay.checkout(first, [x])
    pay.world.clock.advance(hours=1, minutes=11)
    assert pay.checkout(second, [x])
    (hold,) = pay.world.payments.holds(FIRM, [x], pay.world.clock())
    assert hold.link_id == "pl_2"


# --- a race lost every time: a 409 to try again, never a 500, and nothing half done -----------


def test_given_the_bills_changing_at_every_try_when_checking_out_then_409_try_again_and_no_session(
    pay: Pay,
) -> None:
    token = pay.link("pl_1", pay.bill(1))
    store = pay.world.payments

    def always_stale(change: object) -> None:
        store.before_hold = always_stale  # again at the next try
        raise StaleTransaction("another checkout moved the bill")

    store.before_hold = always_stale
    with pytest.raises(Contended) as refused:
        pay.checkout(token, [1])
    assert refused.value.code == "try_again"
    assert refused.value.message == (
        "The bills changed while this payment was being prepared, so nothing was charged. "
        "Please try again."
    )
    # Every session opened on a try was closed again: none can be paid.
    assert pay.world.stripe.sessions
    assert all(s["status"] == "expired" for s in pay.world.stripe.sessions.values())
    assert pay.money(1).paid_gl_cents == 0


def test_given_the_payment_changing_at_every_try_when_refunding_then_409_and_nothing_refunded(
    pay: Pay,
) -> None:
    token = pay.link("pl_1", pay.bill(1, 8_000))
    session = pay.checkout(token, [1])
    pay.pay(session)
    store = pay.world.payments

    def always_stale(change: object) -> None:
        store.before_apply = always_stale
        raise StaleTransaction("another refund moved the payment")

    store.before_apply = always_stale
    with pytest.raises(Contended) as refused:
        pay.api.payment_links.refund(FIRM, "pl_1", f"pay_{session}", 3_000)
    store.before_apply = None
    assert refused.value.code == "try_again"
    assert "nothing was refunded" in refused.value.message
    assert pay.world.stripe.refunds == {}
    assert pay.money(1).paid_gl_cents == 8_000
