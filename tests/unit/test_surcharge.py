"""Card surcharges (domain/surcharge.py) on fakes: who pays one and how much (Hypothesis
properties), the operating card session carrying it, trust, bank and excluded states never,
and the ledger keeping it apart from the bill so Paid (GL) and reconciliation count only what
pays the bill."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from billbridge.domain.ledger import EntryKind
from billbridge.domain.payments import Account, Method
from billbridge.domain.surcharge import (
    DEFAULT_EXCLUDED_STATES,
    SurchargeSettings,
    applies,
    card_surcharge,
    surcharge_cents,
)
from tests.unit.pay_harness import FIRM, Pay

ON = SurchargeSettings(enabled=True, percent=3)


@given(
    amount=st.integers(min_value=0, max_value=10**10),
    basis_points=st.integers(min_value=0, max_value=300),
)
def test_property_a_surcharge_is_the_rate_rounded_to_the_cent_and_never_above_3_percent(
    amount: int, basis_points: int
) -> None:
    cents = surcharge_cents(amount, basis_points)
    assert isinstance(cents, int)
    assert abs(cents * 10_000 - amount * basis_points) <= 5_000  # within half a cent
    assert cents <= (amount * 3 + 99) // 100


@given(
    enabled=st.booleans(),
    percent=st.sampled_from([0, 0.5, 2.5, 3]),
    account=st.sampled_from(list(Account)),
    method=st.sampled_from(list(Method)),
    state=st.one_of(st.none(), st.sampled_from(["CT", "ME", "MA", "PR", "NY", "CA", "tx"])),
)
def test_property_only_card_payments_of_invoices_outside_excluded_states_carry_one(
    enabled: bool, percent: float, account: Account, method: Method, state: str | None
) -> None:
    settings = SurchargeSettings(enabled=enabled, percent=percent)
    expected = (
        enabled
        and percent > 0
        and account is Account.OPERATING
        and method is Method.CARD
        and state is not None
        and state.upper() not in DEFAULT_EXCLUDED_STATES
    )
    assert applies(settings, account, method, state) is expected
    assert (card_surcharge(settings, account, method, state, 10_000) > 0) is expected


def test_given_the_defaults_then_off_at_3_percent_with_lawpays_and_clios_excluded_states() -> None:
    settings = SurchargeSettings()
    assert not settings.enabled and settings.percent == 3
    assert settings.excluded_states == ["CT", "ME", "MA", "PR"]


@pytest.mark.parametrize("percent", [3.01, -1, 2.555, True, "3"])
def test_given_a_percent_outside_0_to_3_or_finer_than_a_hundredth_then_refused(
    percent: object,
) -> None:
    with pytest.raises(ValidationError):
        SurchargeSettings(enabled=True, percent=percent)  # type: ignore[arg-type]


def test_given_a_state_that_is_not_two_letters_then_refused() -> None:
    with pytest.raises(ValidationError):
        SurchargeSettings(excluded_states=["Conn"])
    assert SurchargeSettings(excluded_states=["ny", "NY"]).excluded_states == ["NY"]


# --- checkout and the ledger ---------------------------------------------------------------


class Surcharged(Pay):
    def __init__(self, state: str | None = "CA") -> None:
        super().__init__()
        settings = self.world.settings.get(FIRM)
        self.world.settings.put(FIRM, settings.model_copy(update={"surcharge": ON}))
        self.state = state

    def bill(self, bill_id: int, total: int = 20_000, kind: str = "invoice") -> int:
        super().bill(bill_id, total, kind)
        stored = self.money(bill_id)
        client = replace(stored.bill.client, state=self.state)
        self.world.bills.items[(FIRM, bill_id)] = replace(
            stored, bill=replace(stored.bill, client=client)
        )
        return bill_id


def test_given_a_card_payment_of_an_invoice_then_the_session_carries_the_surcharge_apart() -> None:
    pay = Surcharged()
    token = pay.link("pl_1", pay.bill(1, 10_000))

    ((account, session),) = pay.page.checkout(token, [1], None, Method.CARD)

    assert account is Account.OPERATING
    assert (session.amount_cents, session.surcharge_cents) == (10_300, 300)
    stripe_session = pay.world.stripe.sessions[session.id]
    assert stripe_session["amount_total"] == 10_300
    assert stripe_session["metadata"]["surcharge_cents"] == "300"

    assert pay.pay(session.id) == ["applied"]

    assert pay.money(1).money.paid_gl_cents == 10_000  # Paid (GL): the bill's money only
    kinds = {e.kind: e.amount_cents for e in pay.world.payments.ledger}
    assert kinds == {EntryKind.PAYMENT: 10_000, EntryKind.SURCHARGE: 300}
    surcharge_entry = next(e for e in pay.world.payments.ledger if e.kind is EntryKind.SURCHARGE)
    assert surcharge_entry.allocations == () and surcharge_entry.account is Account.OPERATING
    (line,) = pay.report()
    assert line == (1, "record_payment", 10_000)  # reconciliation: not the surcharge
    (txn,) = pay.world.payments.transactions.values()
    assert (txn.amount_cents, txn.surcharge_cents, txn.refundable_cents) == (10_000, 300, 10_000)


def test_given_trust_and_operating_bills_by_card_then_only_the_operating_session_carries_one() -> (
    None
):
    pay = Surcharged()
    token = pay.link("pl_1", pay.bill(1, 10_000), pay.bill(2, 5_000, kind="trust_request"))

    sessions = dict(pay.page.checkout(token, [1, 2], None, Method.CARD))

    assert sessions[Account.OPERATING].surcharge_cents == 300
    assert sessions[Account.TRUST].surcharge_cents == 0
    assert sessions[Account.TRUST].amount_cents == 5_000


@pytest.mark.parametrize(
    ("state", "method"),
    [("CT", Method.CARD), ("ma", Method.CARD), (None, Method.CARD), ("CA", Method.ACH)],
)
def test_given_an_excluded_state_an_unknown_one_or_a_bank_payment_then_no_surcharge(
    state: str | None, method: Method
) -> None:
    pay = Surcharged(state)
    token = pay.link("pl_1", pay.bill(1, 10_000))
    ((_, session),) = pay.page.checkout(token, [1], None, method)
    assert (session.amount_cents, session.surcharge_cents) == (10_000, 0)


def test_given_surcharges_off_then_nothing_is_added() -> None:
    pay = Pay()
    token = pay.link("pl_1", pay.bill(1, 10_000))
    ((_, session),) = pay.page.checkout(token, [1], None, Method.CARD)
    assert session.surcharge_cents == 0 and session.amount_cents == 10_000


def test_given_a_surcharged_payments_events_twice_then_the_surcharge_is_recorded_once() -> None:
    pay = Surcharged()
    token = pay.link("pl_1", pay.bill(1, 10_000))
    ((_, session),) = pay.page.checkout(token, [1], None, Method.CARD)
    events = pay.world.stripe.pay(session.id)
    assert pay.deliver(events + events) == ["applied", "duplicate"]
    surcharges = [e for e in pay.world.payments.ledger if e.kind is EntryKind.SURCHARGE]
    assert len(surcharges) == 1


def test_given_a_surcharged_payment_then_its_receipt_shows_the_surcharge_and_the_total() -> None:
    from billbridge.domain.receipts import ReceiptKind, facts_of, receipt_email

    pay = Surcharged()
    token = pay.link("pl_1", pay.bill(1, 10_000))
    ((_, session),) = pay.page.checkout(token, [1], None, Method.CARD)
    pay.pay(session.id)
    (txn,) = pay.world.payments.transactions.values()
    bills = {1: pay.money(1).bill}

    mail = receipt_email(
        ReceiptKind.PAYMENT_SUCCEEDED,
        facts_of(txn, bills),
        firm_name="Demo Law",
        client_name="Ann",
        reply_to=None,
        pay_url=None,
    )

    assert mail.subject == "Receipt: your payment of $103.00 to Demo Law"
    assert "Amount: $103.00\nCard surcharge: $3.00 (included)\n" in mail.text
    assert "Invoice INV-00001: $100.00" in mail.text  # the bill got the bill's money only


# --- refunds give the surcharge back in proportion (card-network rules) -----------------------


@given(
    surcharge=st.integers(min_value=0, max_value=30_000),
    paid=st.integers(min_value=1, max_value=1_000_000),
    data=st.data(),
)
def test_property_refunds_give_back_the_surcharge_in_proportion_never_more_than_was_charged(
    surcharge: int, paid: int, data: st.DataObject
) -> None:
    """Several partial refunds, some of which fail (their claim released), then the rest: each
    share is an integer of cents; what the refunds that stand claim is the surcharge times
    their share of the bills' money, rounded half up (within half a cent), never more than the
    surcharge; and once all the bills' money is refunded, exactly all of the surcharge is."""
    from billbridge.domain.surcharge import refund_share

    claimed = surcharge_claimed = 0
    standing: list[tuple[int, int]] = []  # (bills' money, surcharge) of refunds not failed
    failed_any = False
    for _ in range(data.draw(st.integers(min_value=0, max_value=6))):
        if claimed >= paid:
            break
        amount = data.draw(st.integers(min_value=1, max_value=paid - claimed))
        share = refund_share(surcharge, paid, claimed + amount, surcharge_claimed)
        assert isinstance(share, int) and share >= 0
        claimed, surcharge_claimed = claimed + amount, surcharge_claimed + share
        standing.append((amount, share))
        assert surcharge_claimed <= surcharge
        if not failed_any:  # the surcharge times the refunded share, rounded half up
            assert abs(2 * surcharge_claimed * paid - 2 * surcharge * claimed) <= paid
        if data.draw(st.booleans()):  # a refund failed: its claim is released
            amount, share = standing.pop(data.draw(st.integers(0, len(standing) - 1)))
            claimed, surcharge_claimed = claimed - amount, surcharge_claimed - share
            failed_any = True
    last = refund_share(surcharge, paid, paid, surcharge_claimed)  # the rest of the money
    assert surcharge_claimed + last == surcharge


def test_given_half_up_rounding_then_the_shares_of_three_partial_refunds_add_up_to_the_whole() -> (
    None
):
    from billbridge.domain.surcharge import refund_share

    # A $100.00 payment with a $3.00 surcharge, refunded $33.33, $33.33 and $33.34.
    shares = []
    claimed = surcharge_claimed = 0
    for amount in (3_333, 3_333, 3_334):
        share = refund_share(300, 10_000, claimed + amount, surcharge_claimed)
        shares.append(share)
        claimed, surcharge_claimed = claimed + amount, surcharge_claimed + share
    assert shares == [100, 100, 100]
    assert refund_share(300, 10_000, 5_000, 0) == 150
    assert refund_share(3, 10_000, 5_000, 0) == 2  # 1.5 cents: half up
    assert refund_share(3, 10_000, 4_999, 0) == 1  # 1.4997 cents: down


def refunded(pay: Surcharged, status: str = "succeeded") -> tuple[str, str]:
    """A surcharged card payment of $100.00 (+ $3.00); answers its transaction and token."""
    token = pay.link("pl_1", pay.bill(1, 10_000))
    ((_, session),) = pay.page.checkout(token, [1], None, Method.CARD)
    pay.pay(session.id)
    pay.world.stripe.refund_status = status
    return f"pay_{session.id}", token


def test_given_a_partial_refund_of_a_surcharged_payment_then_the_surcharge_goes_back_in_part() -> (
    None
):
    """Finding 1: a refund gave back the bills' money only; the surcharge stayed charged."""
    pay = Surcharged()
    txn_id, _ = refunded(pay)
    links = pay.api.payment_links

    first = links.refund(FIRM, "pl_1", txn_id, 5_000)

    assert (first.amount_cents, first.surcharge_cents) == (5_000, 150)
    (stripe_refund,) = pay.world.stripe.refunds.values()
    assert stripe_refund["amount"] == 5_150  # Stripe refunds the bills' part and the surcharge's
    assert stripe_refund["metadata"]["surcharge_cents"] == "150"
    assert pay.money(1).money.paid_gl_cents == 5_000  # Paid (GL): the bills' money only
    kinds = [(e.kind, e.amount_cents) for e in pay.world.payments.ledger]
    assert kinds[-2:] == [(EntryKind.REFUND, -5_000), (EntryKind.SURCHARGE_REFUND, -150)]
    refund_entry = pay.world.payments.ledger[-1]
    assert refund_entry.allocations == () and refund_entry.account is Account.OPERATING
    assert pay.report() == [(1, "record_payment", 5_000)]  # the surcharge is not reconciled

    second = links.refund(FIRM, "pl_1", txn_id, None)  # the rest

    assert (second.amount_cents, second.surcharge_cents) == (5_000, 150)
    payment = pay.world.payments.get_transaction(FIRM, "pl_1", txn_id)
    assert payment is not None
    assert (payment.surcharge_refunded_cents, payment.surcharge_claimed_cents) == (300, 300)
    assert sum(r["amount"] for r in pay.world.stripe.refunds.values()) == 10_300  # all charged
    assert pay.money(1).money.paid_gl_cents == 0


def test_given_a_surcharged_refund_then_its_receipt_and_the_clerk_show_the_surcharge_part() -> None:
    from billbridge.domain.receipts import ReceiptKind, facts_of, receipt_email
    from billbridge.domain.surcharge import surcharge_note

    pay = Surcharged()
    txn_id, _ = refunded(pay)
    refund = pay.api.payment_links.refund(FIRM, "pl_1", txn_id, 2_500)

    mail = receipt_email(
        ReceiptKind.REFUND_SUCCEEDED,
        facts_of(refund, {1: pay.money(1).bill}),
        firm_name="Demo Law",
        client_name="Ann",
        reply_to=None,
        pay_url=None,
    )
    assert mail.subject == "Refund of $25.75 from Demo Law"
    assert "Amount: $25.75\nCard surcharge refunded: $0.75 (included)\n" in mail.text
    assert "Invoice INV-00001: $25.00" in mail.text
    assert surcharge_note(refund) == (
        "With it, $0.75 of the card surcharge was given back in proportion: the client gets "
        "$25.75 in all."
    )
    payment = pay.world.payments.get_transaction(FIRM, "pl_1", txn_id)
    assert payment is not None
    assert surcharge_note(payment) == (
        "The client also paid a $3.00 card surcharge ($103.00 in all), kept apart from the "
        "bills. $0.75 of it has been refunded."
    )


def test_given_a_surcharged_refunds_events_twice_and_out_of_order_then_counted_once() -> None:
    """refund.updated (succeeded) before refund.created (pending), each twice, and Stripe's
    charge.refunded: the surcharge's share is refunded once, and a refund that the bank
    returns afterwards gives it back once."""
    pay = Surcharged()
    txn_id, _ = refunded(pay, status="pending")
    refund = pay.api.payment_links.refund(FIRM, "pl_1", txn_id, 4_000)
    assert (refund.status.value, refund.surcharge_cents) == ("pending", 120)
    stripe = pay.world.stripe
    (stripe_id,) = stripe.refunds
    succeeded = stripe.refund_event(stripe_id, "refund.updated", "succeeded")
    created = stripe.refund_event(stripe_id, "refund.created", "pending")
    charge_refunded = stripe.charge_refunded_event(stripe_id)

    outcomes = pay.deliver([succeeded, succeeded, created, charge_refunded, created])

    assert outcomes == ["applied", "duplicate", "stale", "ignored", "duplicate"]
    surcharge_entries = [
        e.amount_cents
        for e in pay.world.payments.ledger
        if e.kind in (EntryKind.SURCHARGE_REFUND, EntryKind.SURCHARGE_REVERSAL)
    ]
    assert surcharge_entries == [-120]
    assert pay.money(1).money.paid_gl_cents == 6_000

    returned = stripe.refund_event(stripe_id, "refund.updated", "failed")
    assert pay.deliver([returned, returned]) == ["applied", "duplicate"]
    surcharge_entries = [
        e.amount_cents
        for e in pay.world.payments.ledger
        if e.kind in (EntryKind.SURCHARGE_REFUND, EntryKind.SURCHARGE_REVERSAL)
    ]
    assert surcharge_entries == [-120, 120]
    payment = pay.world.payments.get_transaction(FIRM, "pl_1", txn_id)
    assert payment is not None
    assert (payment.surcharge_claimed_cents, payment.surcharge_refunded_cents) == (0, 0)
    assert pay.money(1).money.paid_gl_cents == 10_000
