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
