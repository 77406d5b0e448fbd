"""Stripe Connect onboarding of a firm's trust and operating accounts, on fakes: the status
rules, creating each account once (even when two requests race), a new Account Link each
time, `account.updated` in every order and with duplicates, checkout only into ready accounts,
and the platform's fee never on a trust charge (a Hypothesis property over bill mixes)."""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billbridge.domain.errors import RuleViolation
from billbridge.domain.fees import application_fee_cents
from billbridge.domain.payment_accounts import (
    AccountStatus,
    ConnectedAccount,
    StripeAccountState,
    accept_observation,
    needs_ready,
    parse_stripe_account,
)
from billbridge.domain.payments import Account, Method
from tests.fakes import FakeWorld
from tests.unit.pay_harness import FIRM, Pay

TRUST, OPERATING = Account.TRUST, Account.OPERATING
REFRESH, RETURN = "https://app.test/#/onboarding?r", "https://app.test/#/onboarding?b"


def account(**fields: Any) -> ConnectedAccount:
    base: dict[str, Any] = {
        "firm_id": FIRM,
        "account": TRUST,
        "stripe_account_id": "acct_1",
        "charges_enabled": True,
        "payouts_enabled": True,
    }
    return ConnectedAccount(**{**base, **fields})


# -- the status rules --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"stripe_account_id": None}, AccountStatus.NOT_STARTED),
        ({}, AccountStatus.READY),
        ({"currently_due": ("company.tax_id",)}, AccountStatus.READY),  # due later, not yet
        ({"past_due": ("external_account",)}, AccountStatus.PENDING),
        ({"disabled_reason": "under_review"}, AccountStatus.PENDING),
        ({"charges_enabled": False}, AccountStatus.PENDING),
        ({"payouts_enabled": False}, AccountStatus.PENDING),
        ({"charges_enabled": False, "payouts_enabled": False}, AccountStatus.PENDING),
    ],
)
def test_given_stripes_account_fields_then_the_status_rules(
    fields: dict[str, Any], status: AccountStatus
) -> None:
    assert account(**fields).status is status


def test_given_requirements_then_listed_past_due_first_once_and_said_in_a_sentence() -> None:
    pending = account(
        charges_enabled=False,
        currently_due=("external_account", "business_profile.url"),
        past_due=("external_account",),
        disabled_reason="requirements.past_due",
    )

    assert pending.requirements == ["external_account", "business_profile.url"]
    assert pending.message == (
        "Stripe still needs the bank account payouts go to and the business website for the "
        "trust account."
    )
    assert account().message == "The trust account is ready to take payments."
    assert "not been connected" in account(stripe_account_id=None).message


def test_given_stripes_wire_shape_then_parsed_and_other_objects_refused() -> None:
    state = parse_stripe_account(
        {
            "id": "acct_9",
            "object": "account",
            "charges_enabled": True,
            "payouts_enabled": False,
            "details_submitted": True,
            "metadata": {"firm_id": "firm-a", "account": "operating"},
            "requirements": {
                "currently_due": ["external_account"],
                "past_due": [],
                "disabled_reason": None,
            },
        }
    )

    assert state == StripeAccountState(
        "acct_9", True, False, True, ("external_account",), (), None, "firm-a", OPERATING
    )
    with pytest.raises(ValueError):
        parse_stripe_account({"id": "cs_1", "object": "checkout.session"})


def test_given_an_older_or_unchanged_or_foreign_observation_then_nothing_changes() -> None:
    current = account(charges_enabled=False, observed_at=200)
    newer = StripeAccountState("acct_1", True, True, True, (), (), None)

    assert accept_observation(current, newer, 199) is None  # older than what we keep
    assert accept_observation(current, replace(newer, stripe_account_id="acct_2"), 300) is None
    applied = accept_observation(current, newer, 200)
    assert applied is not None and applied.status is AccountStatus.READY
    assert accept_observation(applied, newer, 201) is None  # nothing new


def test_given_bills_needing_an_account_not_ready_then_payments_not_set_up() -> None:
    ready = {TRUST: account(), OPERATING: account(account=OPERATING, past_due=("x",))}

    needs_ready(ready, {TRUST})
    with pytest.raises(RuleViolation) as refused:
        needs_ready(ready, {TRUST, OPERATING})
    assert refused.value.code == "payments_not_set_up"
    assert "operating account is not set up" in refused.value.message
    with pytest.raises(RuleViolation):
        needs_ready({}, {TRUST})


# -- onboarding through the API's services ---------------------------------------------------


def test_given_onboarding_twice_then_one_account_and_a_new_link_each_time() -> None:
    world = FakeWorld()
    accounts = world.api().payment_accounts

    assert [a.status for a in accounts.list(FIRM)] == [AccountStatus.NOT_STARTED] * 2
    first, url_one = accounts.start_onboarding(FIRM, TRUST, REFRESH, RETURN)
    again, url_two = accounts.start_onboarding(FIRM, TRUST, REFRESH, RETURN)

    assert first.stripe_account_id == again.stripe_account_id
    assert url_one != url_two
    assert len(world.stripe.accounts) == 1
    made = world.stripe.accounts[str(first.stripe_account_id)]
    assert made["metadata"] == {"firm_id": FIRM, "account": "trust"}
    assert made["type"] == "express"
    assert world.stripe.account_links == [(first.stripe_account_id, REFRESH, RETURN)] * 2
    listed = accounts.list(FIRM)
    assert [a.status for a in listed] == [AccountStatus.PENDING, AccountStatus.NOT_STARTED]
    assert "external_account" in listed[0].requirements


def test_given_two_onboardings_racing_then_the_loser_uses_the_account_stored_first() -> None:
    world = FakeWorld()
    accounts = world.api().payment_accounts

    def other_request_first(_: ConnectedAccount) -> None:
        world.payments.save_connected_account(
            ConnectedAccount(firm_id=FIRM, account=TRUST, stripe_account_id="acct_winner")
        )
        world.stripe.accounts["acct_winner"] = {"id": "acct_winner", "object": "account"}

    world.payments.before_save_account = other_request_first
    made, _ = accounts.start_onboarding(FIRM, TRUST, REFRESH, RETURN)

    assert made.stripe_account_id == "acct_winner"
    assert world.payments.connected_accounts(FIRM)[TRUST].stripe_account_id == "acct_winner"
    assert world.stripe.account_links[-1][0] == "acct_winner"


def onboarded_world() -> tuple[FakeWorld, Any, str]:
    world = FakeWorld()
    made, _ = world.api().payment_accounts.start_onboarding(FIRM, TRUST, REFRESH, RETURN)
    return world, world.stripe_webhook().events, str(made.stripe_account_id)


def test_given_account_updated_when_onboarding_completes_then_ready_and_a_repeat_changes_nothing() -> (  # noqa: E501
    None
):
    world, events, stripe_id = onboarded_world()
    world.clock.advance(seconds=5)
    event = world.stripe.onboard(stripe_id)

    assert events.handle(event).outcome == "applied"
    stored = world.payments.connected_accounts(FIRM)[TRUST]
    assert stored.status is AccountStatus.READY and stored.requirements == []
    assert events.handle(event).outcome == "stale"
    assert world.payments.connected_accounts(FIRM)[TRUST] == stored


def test_given_account_updated_events_in_every_order_with_repeats_then_the_newest_state_wins() -> (
    None
):
    """Stripe's account went: part filled (t1), ready (t2), asked for a document (t3). Each
    event is delivered, some twice, in every order: the end state is Stripe's latest, and once
    the newest event is in, no older one changes anything."""
    world, events, stripe_id = onboarded_world()
    sent = []
    for step, (due, past) in enumerate(
        [(("external_account",), ()), ((), ()), ((), ("company.verification.document",))]
    ):
        world.clock.advance(seconds=10 + step)
        sent.append(world.stripe.onboard(stripe_id, due=due, past_due=past))
    latest = parse_stripe_account(world.stripe.accounts[stripe_id])
    start = dict(world.payments.connected)
    for order in itertools.permutations([*sent, sent[0], sent[2]]):
        world.payments.connected = dict(start)
        newest_seen = False
        for event in order:
            before = world.payments.connected_accounts(FIRM)[TRUST]
            outcome = events.handle(event).outcome
            after = world.payments.connected_accounts(FIRM)[TRUST]
            if newest_seen:
                assert (outcome, after) == ("stale", before)
            newest_seen = newest_seen or event is sent[2]
        final = world.payments.connected_accounts(FIRM)[TRUST]
        assert final.status is AccountStatus.PENDING
        assert final.past_due == latest.past_due
        assert final.charges_enabled is latest.charges_enabled is False


def test_given_an_event_carrying_a_state_stripe_no_longer_has_then_stripes_current_state_is_kept() -> (  # noqa: E501
    None
):
    """Two events in the same second, the older delivered last: the handler reads the account
    from Stripe, so the state it keeps is Stripe's now, not the stale copy in the event."""
    world, events, stripe_id = onboarded_world()
    world.clock.advance(seconds=3)
    older = world.stripe.onboard(stripe_id, past_due=("external_account",))
    newer = world.stripe.onboard(stripe_id)  # same second

    assert events.handle(newer).outcome == "applied"
    assert events.handle(older).outcome == "stale"
    assert world.payments.connected_accounts(FIRM)[TRUST].status is AccountStatus.READY


def test_given_account_updated_for_an_account_we_did_not_record_then_ignored() -> None:
    world, events, stripe_id = onboarded_world()
    event = world.stripe.onboard(stripe_id)
    # Another firm's metadata on our account, or an account this firm never recorded.
    forged = {**event, "data": {"object": {**event["data"]["object"]}}}
    forged["data"]["object"]["metadata"] = {"firm_id": "firm-b", "account": "trust"}
    other_kind = {**event, "data": {"object": {**event["data"]["object"]}}}
    other_kind["data"]["object"]["metadata"] = {"firm_id": FIRM, "account": "operating"}
    no_metadata = {**event, "data": {"object": {**event["data"]["object"], "metadata": {}}}}

    outcomes = [events.handle(e).outcome for e in (forged, other_kind, no_metadata)]

    assert outcomes == ["ignored"] * 3
    assert world.payments.connected_accounts(FIRM)[TRUST].status is AccountStatus.PENDING
    assert world.payments.connected_accounts("firm-b") == {}


# -- checkout needs ready accounts -------------------------------------------------------------


def test_given_accounts_not_ready_then_checkout_refused_then_allowed_once_ready() -> None:
    pay = Pay()
    pay.world.payments.connected.clear()  # a firm that has not onboarded
    pay.bill(1, kind="trust_request")
    pay.bill(2, kind="invoice")
    token = pay.link("pl_1", 1, 2)
    accounts = pay.api.payment_accounts

    with pytest.raises(RuleViolation) as refused:
        pay.checkout(token, [1])
    assert refused.value.code == "payments_not_set_up"
    trust, _ = accounts.start_onboarding(FIRM, TRUST, REFRESH, RETURN)
    with pytest.raises(RuleViolation):
        pay.checkout(token, [1])  # begun, not ready
    pay.world.clock.advance(seconds=1)
    pay.deliver([pay.world.stripe.onboard(str(trust.stripe_account_id))])

    session_id = pay.checkout(token, [1])  # trust only: the operating account is not needed
    assert pay.world.stripe.sessions[session_id]["destination"] == trust.stripe_account_id
    with pytest.raises(RuleViolation) as both:
        pay.page.checkout(token, [1, 2], None, Method.CARD)
    assert "operating account" in both.value.message
    assert pay.world.stripe.sessions.keys() == {session_id}  # nothing half made


# -- fees: never from trust ----------------------------------------------------------------------


bill_mix = st.lists(
    st.tuples(st.sampled_from(["invoice", "trust_request"]), st.integers(50, 5_000_000)),
    min_size=1,
    max_size=6,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bills=bill_mix, method=st.sampled_from(["card", "ach"]), pay_all=st.booleans())
def test_given_any_mix_of_bills_then_no_trust_charge_ever_carries_an_application_fee(
    bills: list[tuple[str, int]], method: str, pay_all: bool
) -> None:
    pay = Pay()
    ids = [pay.bill(100 + i, total=total, kind=kind) for i, (kind, total) in enumerate(bills)]
    token = pay.link("pl_mix", *ids)
    chosen = ids if pay_all else ids[: max(1, len(ids) // 2)]

    made = pay.page.checkout(token, chosen, None, Method(method))

    for account_kind, session in made:
        sent = pay.world.stripe.sessions[session.id]["payment_intent_data"]
        if account_kind is TRUST:
            assert "application_fee_amount" not in sent
        else:
            fee = sent["application_fee_amount"]
            assert fee == application_fee_cents(OPERATING, Method(method), session.amount_cents)
            assert 0 < fee < session.amount_cents
    assert {a for a, _ in made} == {
        TRUST if kind == "trust_request" else OPERATING
        for kind, _ in (bills[ids.index(i)] for i in chosen)
    }


@given(amount=st.integers(0, 10**9), method=st.sampled_from(list(Method)))
def test_given_any_amount_then_a_trust_fee_is_zero_and_an_operating_fee_never_beyond_the_charge(
    amount: int, method: Method
) -> None:
    assert application_fee_cents(TRUST, method, amount) == 0
    fee = application_fee_cents(OPERATING, method, amount)
    assert 0 <= fee <= amount
    if method is Method.ACH:
        assert fee <= 500


def test_given_a_fee_amount_that_is_not_cents_then_refused() -> None:
    from billbridge.domain.errors import InvalidInput

    for bad in (True, 1.5, "100", -1):
        with pytest.raises(InvalidInput):
            application_fee_cents(OPERATING, Method.CARD, bad)  # type: ignore[arg-type]
