"""The money invariants, for every ordering of the events that can race (on fakes).

Each scenario prepares a payment situation and lists the events that can race in it: Stripe's
webhooks, the API's answer, the client paying, a checkout, Clio changing the bill. Every
ordering of them is replayed (a depth-first walk over orderings from one saved state, so each
prefix runs once), with every event that can be delivered twice also replayed as a duplicate
at every position. After every step of every ordering:
- for every bill, Paid (GL) equals the sum of its settled ledger entries;
- no ledger entry exists twice;
- no payment is refunded (or charged back) beyond its amount, per bill or in all;
- no bill is collected beyond what it owes across all its links; or, in the one scenario where
  an overpayment can slip through (a hold that lapsed before its webhook), it is flagged and
  its settled excess is listed in reconciliation as money to refund;
and every ordering ends in the same state (what a user sees: money, flags, statuses, report).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from billbridge.domain.bills import BillState
from billbridge.domain.errors import RuleViolation
from billbridge.domain.payments import TxnKind
from billbridge.services.ports import RefundResult
from tests.unit.pay_harness import FIRM, Pay

Steps = dict[str, Callable[[], object]]


def check_invariants(pay: Pay, *, guarded: bool = True) -> None:
    world, store = pay.world, pay.world.payments
    ids = [e.id for e in store.ledger]
    assert len(ids) == len(set(ids)), "a ledger entry exists twice"
    settled: Counter[int] = Counter()
    for entry in store.ledger:
        for allocation in entry.allocations:
            settled[allocation.bill_id] += allocation.amount_cents
    report: dict[tuple[int, str], int] = {}
    for (_, bill_id), stored in world.bills.items.items():
        assert stored.paid_gl_cents == settled[bill_id], f"bill {bill_id}: Paid (GL) != ledger"
        for name in ("pending_cents", "disputed_cents", "refunded_cents", "inquiries_open"):
            assert getattr(stored, name) >= 0, f"bill {bill_id}: {name} below zero"
        assert min(stored.chargebacks_open, stored.chargebacks_lost) >= 0
        money = stored.money
        collected = stored.paid_gl_cents + stored.pending_cents + stored.disputed_cents
        owed = stored.bill.outstanding_clio_cents  # Clio's balance never moves in these tests
        if collected > owed or not money.payable_state:
            report = report or {(b, action): cents for b, action, cents in pay.report()}
        if money.payable_state and collected > owed:
            assert not guarded, f"bill {bill_id} collected {collected} of {owed}"
            assert "overpaid" in stored.all_flags()
            excess = money.overpaid_settled_cents
            assert report.get((bill_id, "refund_overpayment"), 0) == excess
        if not money.payable_state and stored.paid_gl_cents > 0:
            assert "paid_but_unpayable" in stored.all_flags()
            assert report[(bill_id, "refund_or_apply")] == stored.paid_gl_cents
    refunded: Counter[str] = Counter()
    for txn in store.transactions.values():
        if txn.kind is TxnKind.REFUND and txn.status.value == "succeeded":
            refunded[txn.payment_id or ""] += txn.amount_cents
    for txn in store.transactions.values():
        if txn.kind is not TxnKind.PAYMENT:
            continue
        assert 0 <= txn.refunded_cents <= txn.amount_cents
        assert refunded[txn.id] <= txn.amount_cents, f"{txn.id} refunded beyond its amount"
        assert txn.claimed_cents <= txn.amount_cents
        # A surcharge goes back with refunds, never beyond what was charged.
        assert 0 <= txn.surcharge_refunded_cents <= txn.surcharge_claimed_cents
        assert txn.surcharge_claimed_cents <= txn.surcharge_cents
        for allocation in txn.allocations:
            assert 0 <= txn.refund_claims.get(allocation.bill_id, 0) <= allocation.amount_cents


def end_state(pay: Pay) -> tuple[Any, ...]:
    """What a user could see: each bill's money and flags, the transactions, reconciliation.
    (The ledger's path may differ: a refund that failed before Stripe's "succeeded" arrived
    leaves no entries, one that failed after leaves a refund and its reversal; its sum per bill
    is Paid (GL), checked at every step.)"""
    bills = tuple(
        (b, s.paid_gl_cents, s.pending_cents, s.disputed_cents, s.refunded_cents, s.all_flags())
        for (_, b), s in sorted(pay.world.bills.items.items())
    )
    txns = tuple(
        sorted(
            (t.kind.value, t.status.value, t.amount_cents, t.refunded_cents, t.dispute_status)
            + ((t.surcharge_cents, t.surcharge_refunded_cents) if t.surcharge_cents else ())
            for t in pay.world.payments.transactions.values()
        )
    )
    return bills, txns, tuple(pay.report())


@dataclass
class Walk:
    orderings: int = 0
    steps: int = 0
    ends: set[tuple[Any, ...]] = field(default_factory=set)


def every_ordering(
    setup: Callable[[Pay], Steps],
    events: Sequence[str],
    *,
    twice: Sequence[str] = (),
    after: Sequence[str] = (),
    guarded: bool = True,
    make: Callable[[], Pay] = Pay,
) -> Walk:
    """Replay every ordering of `events`, and of `events` plus one of `twice` delivered a second
    time; `after` rules "a<b" say b can only happen once a has (a client pays a session only
    after the checkout made it)."""
    pay = make()
    steps = setup(pay)
    start = pay.world.snapshot()
    rules = [tuple(rule.split("<")) for rule in after]
    walk = Walk()

    def explore(done: list[str], left: Counter[str]) -> None:
        if not +left:
            walk.orderings += 1
            walk.ends.add(end_state(pay))
            return
        for name in sorted(+left):
            if any(b == name and a not in done for a, b in rules):
                continue
            saved = pay.world.snapshot()
            steps[name]()
            walk.steps += 1
            check_invariants(pay, guarded=guarded)
            left[name] -= 1
            explore([*done, name], left)
            left[name] += 1
            pay.world.restore(saved)

    for extra in [None, *twice]:
        pay.world.restore(start)
        explore([], Counter([*events, *([extra] if extra else [])]))
    return walk


def count(n: int, twice: int) -> int:
    """Orderings of n distinct events, plus those with one of `twice` of them delivered twice."""
    from math import factorial

    return factorial(n) + twice * factorial(n + 1) // 2


def brute_count(events: Sequence[str], twice: Sequence[str] = (), after: Sequence[str] = ()) -> int:
    """The orderings every_ordering must visit, counted the slow way (itertools)."""
    import itertools

    rules = [tuple(rule.split("<")) for rule in after]
    found = set()
    for extra in [None, *twice]:
        for order in itertools.permutations([*events, *([extra] if extra else [])]):
            if all(a in order[: order.index(b)] for a, b in rules if b in order):
                found.add((extra, order))
    return len(found)


def final(
    setup: Callable[[Pay], Steps], events: Sequence[str], make: Callable[[], Pay] = Pay
) -> Pay:
    pay = make()
    steps = setup(pay)
    for name in events:
        steps[name]()
    return pay


def delivering(pay: Pay, events: dict[str, list[dict[str, Any]]]) -> Steps:
    return {name: (lambda e=e: pay.deliver(e)) for name, e in events.items()}


# --- checkout completion, async success and failure -------------------------------------------

CHECKOUT_EVENTS = [
    "card.completed",
    "ach.completed",
    "ach.succeeded",
    "bad.completed",
    "bad.failed",
]


def three_sessions(pay: Pay) -> Steps:
    """A card payment, a bank payment that settles, one that fails: three bills of one link."""
    token = pay.link("pl_1", pay.bill(1, 10_000), pay.bill(2, 20_000), pay.bill(3, 30_000))
    stripe = pay.world.stripe
    card = stripe.pay(pay.checkout(token, [1]))
    ach_ok = pay.checkout(token, [2], method="ach")
    ach_bad = pay.checkout(token, [3], method="ach")
    return delivering(
        pay,
        {
            "card.completed": card,
            "ach.completed": stripe.pay(ach_ok),
            "ach.succeeded": stripe.settle(ach_ok),
            "bad.completed": stripe.pay(ach_bad),
            "bad.failed": stripe.fail(ach_bad),
        },
    )


def test_every_ordering_of_checkout_completions_settlements_and_failures() -> None:
    walk = every_ordering(three_sessions, CHECKOUT_EVENTS, twice=CHECKOUT_EVENTS)
    assert walk.orderings == count(5, 5) == 1_920
    assert len(walk.ends) == 1
    end = final(three_sessions, CHECKOUT_EVENTS)
    assert [end.money(b).paid_gl_cents for b in (1, 2, 3)] == [10_000, 20_000, 0]
    assert [end.money(b).payable_cents for b in (1, 2, 3)] == [0, 0, 30_000]
    assert end.world.payments.holds(FIRM, [1, 2, 3], end.world.clock()) == []


# --- refunds: the API's answer racing Stripe's three refund events -----------------------------


def refund_race(method: str, webhooks: dict[str, tuple[str, str]]) -> Callable[[Pay], Steps]:
    """A settled payment of 8,000 and a refund of 3,000 (card) or all of it (bank). "stripe":
    the refund is claimed and Stripe makes it; "answer": the API records Stripe's answer;
    each webhook can arrive before or after that answer, and twice."""

    def setup(pay: Pay) -> Steps:
        token = pay.link("pl_1", pay.bill(1, 8_000))
        session = pay.checkout(token, [1], method=method)
        stripe = pay.world.stripe
        pay.deliver(stripe.pay(session))
        pay.deliver(stripe.settle(session))
        stripe.refund_status = "pending" if method == "ach" else "succeeded"
        made = pay.world.scratch
        original = stripe.create_refund

        def stripe_makes_it(*args: Any, **kwargs: Any) -> RefundResult:
            result = original(*args, **kwargs)
            made["answer"] = (
                kwargs["metadata"]["refund_id"],
                result.stripe_refund_id,
                result.status,
            )
            for name, (type_, status) in webhooks.items():
                made[name] = [
                    stripe.charge_refunded_event(result.stripe_refund_id)
                    if type_ == "charge.refunded"
                    else stripe.refund_event(result.stripe_refund_id, type_, status)
                ]
            return RefundResult(result.stripe_refund_id, "pending")  # its answer comes later

        stripe.create_refund = stripe_makes_it  # type: ignore[method-assign]
        links = pay.api.payment_links

        def answer() -> None:
            refund_id, stripe_id, status = made["answer"]
            links.record_refund_answer(FIRM, "pl_1", refund_id, RefundResult(stripe_id, status))

        steps: Steps = {name: (lambda n=name: pay.deliver(made[n])) for name in webhooks}
        steps["stripe"] = lambda: links.refund(
            FIRM, "pl_1", f"pay_{session}", None if method == "ach" else 3_000
        )
        steps["answer"] = answer
        return steps

    return setup


def refund_orderings(
    method: str, webhooks: dict[str, tuple[str, str]], make: Callable[[], Pay] = Pay
) -> Walk:
    names = list(webhooks)
    return every_ordering(
        refund_race(method, webhooks),
        ["stripe", "answer", *names],
        twice=names,
        after=[f"stripe<{n}" for n in ["answer", *names]],
        make=make,
    )


def test_every_ordering_of_a_card_refund_the_bank_returns() -> None:
    """Finding 10's scenario: 3,000 of 8,000 refunded, Stripe answers succeeded, then the bank
    returns it (refund.updated and refund.failed, both saying failed): Paid (GL) ends at
    8,000 and the refund failed, whatever the order, and never goes below 5,000 on the way."""
    webhooks = {
        "created": ("refund.created", "succeeded"),
        "updated": ("refund.updated", "failed"),
        "failed": ("refund.failed", "failed"),
    }
    walk = refund_orderings("card", webhooks)
    assert walk.orderings == count(4, 3) == 204  # "stripe" always first
    ((bills, txns, _),) = walk.ends
    assert bills[0][1] == 8_000
    assert ("refund", "failed", 3_000, 0, None) in txns


def test_every_ordering_of_a_card_refund_that_succeeds() -> None:
    walk = refund_orderings("card", {"created": ("refund.created", "succeeded")})
    assert walk.orderings == count(2, 1) == 5
    ((bills, _, _),) = walk.ends
    assert bills[0][1] == 5_000


def test_every_ordering_of_a_surcharged_card_refund_succeeded_then_returned() -> None:
    """Issue 12: a card payment of 8,000 with a 3% surcharge (240), 3,000 refunded with its
    share of the surcharge (90), Stripe's refund.created (succeeded), charge.refunded and the
    bank's return in every order and twice: the surcharge's share leaves and comes back once."""
    from tests.unit.test_surcharge import Surcharged

    webhooks = {
        "created": ("refund.created", "succeeded"),
        "charge": ("charge.refunded", "succeeded"),
        "returned": ("refund.updated", "failed"),
    }
    walk = refund_orderings("card", webhooks, make=Surcharged)
    assert walk.orderings == count(4, 3) == 204
    ((bills, txns, _),) = walk.ends
    assert bills[0][1] == 8_000
    assert ("payment", "succeeded", 8_000, 0, None, 240, 0) in txns
    assert ("refund", "failed", 3_000, 0, None, 90, 0) in txns
    settled = final(refund_race("card", {}), ["stripe", "answer"], make=Surcharged)
    kinds = [(e.kind.value, e.amount_cents) for e in settled.world.payments.ledger]
    assert kinds == [
        ("payment", 8_000),
        ("surcharge", 240),
        ("refund", -3_000),
        ("surcharge_refund", -90),
    ]


def test_every_ordering_of_a_bank_refund_pending_then_succeeded_then_returned() -> None:
    webhooks = {
        "created": ("refund.created", "pending"),
        "succeeded": ("refund.updated", "succeeded"),
        "returned": ("refund.updated", "failed"),
        "failed": ("refund.failed", "failed"),
    }
    walk = refund_orderings("ach", webhooks)
    assert walk.orderings == count(5, 4) == 1_560
    # Whether the money left and came back or the refund failed before it left, the end is
    # the same: nothing refunded, the whole payment refundable again.
    ((bills, _, _),) = walk.ends
    assert bills[0][1] == 8_000


# --- disputes of every status -----------------------------------------------------------------

Dispute = dict[str, tuple[str, str, tuple[int, ...]]]


def disputed(events: Dispute) -> Callable[[Pay], Steps]:
    """A card payment of 6,500 over two bills, then a dispute of 3,000 and its events."""

    def setup(pay: Pay) -> Steps:
        token = pay.link("pl_1", pay.bill(1, 4_000), pay.bill(2, 2_500))
        session = pay.checkout(token, [1, 2])
        pay.deliver(pay.world.stripe.pay(session))
        stripe = pay.world.stripe
        return delivering(
            pay,
            {
                name: [stripe.dispute_event(f"pi_{session}", type_, status, 3_000, balance)]
                for name, (type_, status, balance) in events.items()
            },
        )

    return setup


WITHDRAWN, REINSTATED = (-3_000,), (-3_000, 3_000)
DISPUTES: dict[str, tuple[Dispute, tuple[int, int], set[str], list[str]]] = {
    # name: (events, Paid (GL) of bills 1 and 2 at the end, their flags, ledger entry kinds)
    "inquiry closed": (
        {
            "created": ("charge.dispute.created", "warning_needs_response", ()),
            "review": ("charge.dispute.updated", "warning_under_review", ()),
            "closed": ("charge.dispute.closed", "warning_closed", ()),
        },
        (4_000, 2_500),
        set(),
        ["payment"],
    ),
    "inquiry prevented": (
        {
            "created": ("charge.dispute.created", "warning_needs_response", ()),
            "closed": ("charge.dispute.closed", "prevented", ()),
        },
        (4_000, 2_500),
        set(),
        ["payment"],
    ),
    "inquiry open": (
        {
            "created": ("charge.dispute.created", "warning_needs_response", ()),
            "review": ("charge.dispute.updated", "warning_under_review", ()),
        },
        (4_000, 2_500),
        {"inquiry"},
        ["payment"],
    ),
    "inquiry escalated, won": (
        {
            "created": ("charge.dispute.created", "warning_needs_response", ()),
            "escalated": ("charge.dispute.updated", "needs_response", ()),
            "withdrawn": ("charge.dispute.funds_withdrawn", "needs_response", WITHDRAWN),
            "review": ("charge.dispute.updated", "under_review", WITHDRAWN),
            "closed": ("charge.dispute.closed", "won", WITHDRAWN),
            "reinstated": ("charge.dispute.funds_reinstated", "won", REINSTATED),
        },
        (4_000, 2_500),
        set(),
        ["chargeback", "chargeback_reversal", "payment"],
    ),
    "chargeback won": (
        {
            "created": ("charge.dispute.created", "needs_response", ()),
            "withdrawn": ("charge.dispute.funds_withdrawn", "needs_response", WITHDRAWN),
            "closed": ("charge.dispute.closed", "won", WITHDRAWN),
            "reinstated": ("charge.dispute.funds_reinstated", "won", REINSTATED),
        },
        (4_000, 2_500),
        set(),
        ["chargeback", "chargeback_reversal", "payment"],
    ),
    "chargeback lost": (
        {
            "created": ("charge.dispute.created", "needs_response", ()),
            "withdrawn": ("charge.dispute.funds_withdrawn", "needs_response", WITHDRAWN),
            "review": ("charge.dispute.updated", "under_review", WITHDRAWN),
            "closed": ("charge.dispute.closed", "lost", WITHDRAWN),
        },
        (3_500, 0),  # latest-due bill first: all of bill 2 (2,500), then 500 of bill 1
        {"chargeback_lost"},
        ["chargeback", "payment"],
    ),
    "chargeback open": (
        {
            "created": ("charge.dispute.created", "needs_response", ()),
            "withdrawn": ("charge.dispute.funds_withdrawn", "needs_response", WITHDRAWN),
        },
        (3_500, 0),
        {"disputed"},
        ["chargeback", "payment"],
    ),
}


@pytest.mark.parametrize("name", list(DISPUTES))
def test_every_ordering_of_a_disputes_events(name: str) -> None:
    events, paid, flags, ledger = DISPUTES[name]
    setup = disputed(events)
    # Every ordering; duplicates of every event for up to five, of the money events beyond.
    twice = list(events) if len(events) <= 5 else ["withdrawn", "closed", "reinstated"]
    walk = every_ordering(setup, list(events), twice=twice)
    assert walk.orderings == count(len(events), len(twice))
    assert len(walk.ends) == 1
    end = final(setup, list(events))
    assert (end.money(1).paid_gl_cents, end.money(2).paid_gl_cents) == paid
    assert set(end.money(1).all_flags()) & {"inquiry", "disputed", "chargeback_lost"} == flags
    assert sorted(e.kind.value for e in end.world.payments.ledger) == ledger


# --- a bill's state changing in Clio between checkout and webhook ------------------------------


@pytest.mark.parametrize("state", [BillState.VOID, BillState.DELETED])
@pytest.mark.parametrize("method", ["card", "ach"])
def test_every_ordering_of_a_payment_and_its_bill_leaving_awaiting_payment(
    state: BillState, method: str
) -> None:
    def setup(pay: Pay) -> Steps:
        token = pay.link("pl_1", pay.bill(1, 9_000))
        session = pay.checkout(token, [1], method=method)
        events = {"completed": pay.world.stripe.pay(session)}
        if method == "ach":
            events["settled"] = pay.world.stripe.settle(session)
        return {**delivering(pay, events), "clio": lambda: pay.set_state(1, state)}

    webhooks = ["completed", *(["settled"] if method == "ach" else [])]
    walk = every_ordering(setup, ["clio", *webhooks], twice=webhooks)
    assert walk.orderings == count(1 + len(webhooks), len(webhooks))
    assert len(walk.ends) == 1
    end = final(setup, ["clio", *webhooks])
    assert end.money(1).paid_gl_cents == 9_000  # recorded, never lost
    assert end.report() == [(1, "refund_or_apply", 9_000)]


# --- one bill on two payment links --------------------------------------------------------------


def two_links(pay: Pay) -> Steps:
    """[X] on link 1, [X, Y] on link 2 (issue 9 finding 2): a checkout of X on each, the client
    paying each session that is still open, each webhook; "parallel": both checkouts in the
    same instant (the second runs between the first's reads and its write)."""
    x, y = pay.bill(1, 20_000), pay.bill(2, 5_000)
    tokens = {"1": pay.link("pl_1", x), "2": pay.link("pl_2", x, y)}
    state = pay.world.scratch
    state.update(sessions={}, paid={})

    def checkout(n: str) -> None:
        try:
            state["sessions"][n] = pay.checkout(tokens[n], [x])
        except RuleViolation as refused:
            assert refused.code in ("bill_being_paid", "nothing_payable")

    def client_pays(n: str) -> None:
        session = state["sessions"].get(n)
        if session and pay.world.stripe.sessions[session]["status"] == "open":
            state["paid"][n] = pay.world.stripe.pay(session)

    def webhook(n: str) -> None:
        pay.deliver(state["paid"].get(n, []))

    def parallel() -> None:
        pay.world.payments.before_hold = lambda change: checkout("2")
        checkout("1")

    steps: Steps = {"parallel": parallel, "lapse": lambda: pay.world.clock.advance(hours=2)}
    for n in "12":
        steps[f"checkout{n}"] = lambda n=n: checkout(n)
        steps[f"pays{n}"] = lambda n=n: client_pays(n)
        steps[f"webhook{n}"] = lambda n=n: webhook(n)
    return steps


PAYS = ["pays1<webhook1", "pays2<webhook2"]


def test_every_ordering_of_two_links_checking_out_one_bill_never_collects_it_twice() -> None:
    names = ["checkout1", "checkout2", "pays1", "pays2", "webhook1", "webhook2"]
    twice, after = ["webhook1", "webhook2"], ["checkout1<pays1", "checkout2<pays2", *PAYS]
    walk = every_ordering(two_links, names, twice=twice, after=after)
    assert walk.orderings == brute_count(names, twice, after) == 90
    # Whichever checkout came first is the one paid: 20,000 collected once, every time.
    assert {ends[0][0][1] + ends[0][0][2] for ends in walk.ends} == {20_000}


def test_every_ordering_after_two_checkouts_in_the_same_instant() -> None:
    names = ["parallel", "pays1", "pays2", "webhook1", "webhook2"]
    twice, after = ["webhook1", "webhook2"], ["parallel<pays1", "parallel<pays2", *PAYS]
    walk = every_ordering(two_links, names, twice=twice, after=after)
    assert walk.orderings == brute_count(names, twice, after)
    assert len(walk.ends) == 1


def test_every_ordering_with_a_lapsed_hold_flags_the_overpayment_and_lists_the_refund() -> None:
    """The one way past the holds: a session paid at Stripe whose webhook comes after its hold
    lapsed, while the other link checks out and pays. The money is kept, flagged, listed."""
    names = ["checkout1", "pays1", "lapse", "checkout2", "pays2", "webhook1", "webhook2"]
    after = [
        *("checkout1<pays1", "pays1<lapse", "lapse<checkout2", "lapse<webhook1"),
        *("checkout2<pays2", *PAYS),
    ]
    walk = every_ordering(two_links, names, after=after, guarded=False)
    assert walk.orderings == brute_count(names, (), after)
    # The first webhook before the second checkout: refused, collected once. After it: both
    # payments are kept, the bill is flagged and the excess is listed to refund.
    outcomes = {(bills[0][1], "overpaid" in bills[0][5], report) for bills, _, report in walk.ends}
    assert outcomes == {
        (20_000, False, ((1, "record_payment", 20_000),)),
        (40_000, True, ((1, "record_payment", 20_000), (1, "refund_overpayment", 20_000))),
    }


# --- a plan's installment and a one-off checkout on the same bill -----------------------------


def installment_and_checkout(pay: Pay) -> Steps:
    """A bill of 20,000 in a card plan of 15,000 installments, and the client's one-off
    payment of all of it from the bill's own link. "tick": the installment is charged, but
    the tick dies before Stripe's answer is recorded (only the webhook tells); "tick2": the
    next tick asks Stripe again with the same key; "checkout", "pay", "session": the one-off
    checkout, the client paying it, its webhook; "intent": the installment's webhook."""
    from billbridge.domain.errors import PaymentProviderError
    from billbridge.domain.payments import Method
    from tests.unit.test_plans import TODAY, Plans

    assert isinstance(pay, Plans)
    bill = pay.bill(1, 20_000)
    token = pay.link("pl_1", bill)
    pay.active_plan([bill], 15_000)
    stripe, scratch = pay.world.stripe, pay.world.scratch
    charge = type(stripe).charge_off_session

    def answer_lost_once(request: Any) -> Any:
        result = charge(stripe, request)
        if not scratch.get("lost"):
            scratch["lost"] = True
            raise PaymentProviderError("Stripe did not answer", definitive=False)
        return result

    stripe.charge_off_session = answer_lost_once  # type: ignore[method-assign]

    def checkout() -> None:
        try:
            ((_, session),) = pay.page.checkout(token, [bill], None, Method.CARD)
        except RuleViolation as refused:  # held by the installment, or nothing left
            assert refused.code in ("bill_being_paid", "nothing_payable")
            return
        scratch["session"] = session.id

    def client_pays() -> None:
        if "session" in scratch:
            scratch["paid"] = stripe.pay(scratch["session"])

    return {
        "tick": lambda: pay.tick(TODAY),  # type: ignore[attr-defined]
        "tick2": lambda: pay.tick(TODAY),  # type: ignore[attr-defined]
        "checkout": checkout,
        "pay": client_pays,
        "session": lambda: pay.deliver(scratch.get("paid", [])),
        "intent": lambda: pay.deliver(
            [e for intent in list(stripe.intents) for e in stripe.intent_events(intent)]
        ),
    }


def test_every_ordering_of_an_installment_and_a_one_off_checkout_never_collects_twice() -> None:
    """Finding: an installment took no checkout hold, so a checkout between its charge and
    the record of Stripe's answer took the whole bill again (35,000 collected on a 20,000
    bill). Now the installment holds its money on the bill before Stripe is asked, in the same
    conditional write as a checkout's holds: whatever the order, the bill is collected at most
    once, and the one-off payment takes only what the installment left."""
    from tests.unit.test_plans import Plans

    events = ["tick", "tick2", "checkout", "pay", "session", "intent"]
    walk = every_ordering(
        installment_and_checkout,
        events,
        twice=["session", "intent", "tick2"],
        after=["checkout<pay", "pay<session", "tick<tick2", "tick<intent"],
        make=Plans,
    )
    assert walk.orderings == brute_count(
        events,
        ["session", "intent", "tick2"],
        ["checkout<pay", "pay<session", "tick<tick2", "tick<intent"],
    )
    collected = {bills[0][1] + bills[0][2] for bills, _, _ in walk.ends}
    assert collected <= {15_000, 20_000}  # never beyond the bill
    assert 20_000 in collected
    end = final(installment_and_checkout, events, make=Plans)  # tick first, then the checkout
    payments = sorted(t.amount_cents for t in end.world.payments.transactions.values())
    assert payments == [5_000, 15_000]  # the checkout took only what the installment left
    assert end.world.payments.holds(FIRM, [1], end.world.clock()) == []


# --- a payment on a saved card and a one-off checkout on the same bill ------------------------


def saved_and_checkout(pay: Pay) -> Steps:
    """A bill of 20,000 on two links of one client, who saved a card earlier (paying another
    bill). "saved": the client pays the whole bill with the saved card from link 2 (off-session,
    answered at once); "checkout", "pay", "session": a one-off checkout of the whole bill from
    link 1, the client paying it, its webhook; "intent": the saved payment's webhook."""
    from billbridge import bootstrap
    from billbridge.config import PayConfig
    from billbridge.domain.payments import Method
    from tests.fakes import fake_config

    saved = bootstrap.build_saved_methods(fake_config(PayConfig), pay.world.adapters())
    earlier = pay.link("pl_0", pay.bill(9, 5_000))
    ((_, first),) = pay.page.checkout(earlier, [9], None, Method.CARD, save_method=True)
    pay.pay(first.id)
    bill = pay.bill(1, 20_000)
    one, two = pay.link("pl_1", bill), pay.link("pl_2", bill, 9)  # links differ by their bills
    (card,) = saved.for_token(two)[1]
    stripe, scratch = pay.world.stripe, pay.world.scratch

    def pay_saved() -> None:
        try:
            saved.pay(two, card.id, [bill], None, "attempt-1")
        except RuleViolation as refused:  # held by the checkout, or nothing left
            assert refused.code in ("bill_being_paid", "nothing_payable")

    def checkout() -> None:
        try:
            ((_, session),) = pay.page.checkout(one, [bill], None, Method.CARD)
        except RuleViolation as refused:
            assert refused.code in ("bill_being_paid", "nothing_payable")
            return
        scratch["session"] = session.id

    def client_pays() -> None:
        if "session" in scratch:
            scratch["paid"] = stripe.pay(scratch["session"])

    def intent() -> None:
        ours = [i for i, v in stripe.intents.items() if v["metadata"].get("link_id") == "pl_2"]
        pay.deliver([e for i in ours for e in stripe.intent_events(i)])

    def saved_then_checkout_between() -> None:  # a checkout between the saved read and write
        pay.world.payments.before_hold = lambda change: checkout()
        pay_saved()

    def checkout_then_saved_between() -> None:  # and the other way round
        pay.world.payments.before_hold = lambda change: pay_saved()
        checkout()

    return {
        "saved": pay_saved,
        "checkout": checkout,
        "pay": client_pays,
        "session": lambda: pay.deliver(scratch.get("paid", [])),
        "intent": intent,
        "parallel_saved_first": saved_then_checkout_between,
        "parallel_checkout_first": checkout_then_saved_between,
    }


def test_every_ordering_of_a_saved_card_payment_and_a_one_off_checkout_never_collects_twice() -> (
    None
):
    """A payment on a saved method holds its bills as a checkout does, in the same conditional
    write: whatever the order of it, a one-off checkout of the same bill on another link, the
    client paying that and both webhooks (each also twice), the bill is collected once."""
    events = ["saved", "checkout", "pay", "session", "intent"]
    rules = ["checkout<pay", "pay<session", "saved<intent"]
    walk = every_ordering(saved_and_checkout, events, twice=["session", "intent"], after=rules)
    assert walk.orderings == brute_count(events, ["session", "intent"], rules)
    collected = {bills[0][1] + bills[0][2] for bills, _, _ in walk.ends}
    assert collected == {20_000}  # every ordering: the bill once, never more
    end = final(saved_and_checkout, events)  # the saved card first: the checkout is refused
    assert sorted(t.id[:6] for t in end.world.payments.transactions.values()) == [
        "pay_cs",
        "pay_sv",
    ]
    assert end.world.payments.holds(FIRM, [1], end.world.clock()) == []


@pytest.mark.parametrize("parallel", ["parallel_saved_first", "parallel_checkout_first"])
def test_every_ordering_after_a_saved_card_payment_and_a_checkout_in_the_same_instant(
    parallel: str,
) -> None:
    """The two start together: one of them reads the bill, the other writes its hold first.
    The loser's conditional write fails, it reads again and finds the winner's hold."""
    events = [parallel, "pay", "session", "intent"]
    rules = [f"{parallel}<pay", "pay<session", f"{parallel}<intent"]
    walk = every_ordering(saved_and_checkout, events, twice=["session", "intent"], after=rules)
    assert walk.orderings == brute_count(events, ["session", "intent"], rules)
    assert {bills[0][1] + bills[0][2] for bills, _, _ in walk.ends} == {20_000}
    assert len(walk.ends) == 1
    # The one that wrote its hold first is the payment; the other was refused, not charged.
    end = final(saved_and_checkout, events)
    winner = "pay_cs" if parallel == "parallel_saved_first" else "pay_sv"
    paid = {t.id[:6] for t in end.world.payments.transactions.values() if t.link_id != "pl_0"}
    assert paid == {winner}
    assert len(end.world.stripe.charges) == (1 if winner == "pay_sv" else 0)
