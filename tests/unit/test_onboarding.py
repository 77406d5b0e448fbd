"""The onboarding checklist on fakes: each step from the real state (Clio, the two Stripe
accounts, the sender and its SES identity), what a person may mark, that real state wins over
a mark, and that the checklist remembers; and Stripe's Connect endpoint's own signing secret."""

from __future__ import annotations

import json
import time

import pytest
import stripe

from billbridge.domain.errors import RuleViolation, Unauthenticated
from billbridge.domain.onboarding import Mark, StepId, StepStatus
from billbridge.services.ports import PaymentAccounts
from tests.fakes import FakeWorld, connection

FIRM = "firm-a"


def statuses(world: FakeWorld) -> dict[str, str]:
    return {s.id.value: s.status.value for s in world.api().onboarding.checklist(FIRM).steps}


def test_given_a_new_firm_then_every_step_is_to_do_and_the_first_is_current() -> None:
    world = FakeWorld()

    checklist = world.api().onboarding.checklist(FIRM)

    assert [s.id for s in checklist.steps] == list(StepId)
    assert all(s.status is StepStatus.TODO for s in checklist.steps)
    assert checklist.current is StepId.CLIO and not checklist.complete
    assert checklist.facts["sender"] == {
        "sender_name": None,
        "reply_to": None,
        "sender_address": "billing@firm.test",
        "identity_status": "not_found",
    }
    sender = next(s for s in checklist.steps if s.id is StepId.SENDER)
    assert sender.detail == (
        "Set a sender name and a reply-to in Settings. billing@firm.test is not an SES "
        "identity yet."
    )


def test_given_the_real_state_set_up_then_the_steps_turn_done_and_the_templates_wait_for_a_person() -> (  # noqa: E501
    None
):
    world = FakeWorld()
    world.connections.save(connection(FIRM))
    world.payments.save_payment_accounts(PaymentAccounts(FIRM, "acct_t", "acct_o"))
    settings = world.settings.get(FIRM).model_copy(
        update={"sender_name": "Billing", "reply_to": "billing@firm.example"}
    )
    world.settings.put(FIRM, settings)
    assert statuses(world)["sender"] == "todo"  # SES has not verified the identity yet
    world.sender_identity.statuses["firm.test"] = "verified"  # the domain is verified

    checklist = world.api().onboarding.checklist(FIRM)

    assert {s.id.value: s.status.value for s in checklist.steps} == {
        "clio": "done",
        "trust_account": "done",
        "operating_account": "done",
        "sender": "done",
        "templates": "todo",
        "done": "todo",
    }
    assert checklist.current is StepId.TEMPLATES
    done = world.api().onboarding.mark(FIRM, StepId.TEMPLATES, Mark.DONE)
    assert done.complete and done.current is StepId.DONE
    assert statuses(world)["templates"] == "done"  # remembered


def test_given_marks_then_skips_are_kept_real_state_wins_and_computed_steps_cannot_be_marked_done() -> (  # noqa: E501
    None
):
    world = FakeWorld()
    onboarding = world.api().onboarding

    skipped = onboarding.mark(FIRM, StepId.CLIO, Mark.SKIPPED)
    assert skipped.current is StepId.TRUST_ACCOUNT
    for step in (StepId.CLIO, StepId.SENDER, StepId.DONE):
        with pytest.raises(RuleViolation) as refused:
            onboarding.mark(FIRM, step, Mark.DONE)
        assert refused.value.code == "step_not_markable"
    world.connections.save(connection(FIRM))
    assert statuses(world)["clio"] == "done"  # the state says so, whatever was marked
    world.connections.save(connection(FIRM, needs_reconnect=True))
    assert statuses(world)["clio"] == "skipped"  # the mark again, once the state is not done
    onboarding.mark(FIRM, StepId.CLIO, Mark.TODO)
    assert statuses(world)["clio"] == "todo"
    for step in (StepId.TRUST_ACCOUNT, StepId.OPERATING_ACCOUNT, StepId.SENDER, StepId.TEMPLATES):
        onboarding.mark(FIRM, step, Mark.SKIPPED)
    final = onboarding.checklist(FIRM)
    assert final.current is StepId.CLIO
    onboarding.mark(FIRM, StepId.CLIO, Mark.SKIPPED)
    assert onboarding.checklist(FIRM).complete  # everything done or skipped
    assert onboarding.checklist("firm-b").current is StepId.CLIO  # another firm's own


def test_given_an_event_signed_by_the_connect_endpoints_secret_then_verified_and_others_refused() -> (  # noqa: E501
    None
):
    world = FakeWorld()
    webhook = world.stripe_webhook()
    body = json.dumps({"id": "evt_1", "type": "account.updated", "data": {"object": {}}})
    now = int(time.time())

    def signed(secret: str) -> str:
        return stripe.WebhookSignature._compute_signature(f"{now}.{body}", secret)

    for secret in (world.secrets.webhook_secret, str(world.secrets.connect_webhook_secret)):
        header = f"t={now},v1={signed(secret)}"
        assert webhook.verify(body.encode(), header)["id"] == "evt_1"
    with pytest.raises(Unauthenticated):
        webhook.verify(body.encode(), f"t={now},v1={signed('whsec_someone_else')}")
