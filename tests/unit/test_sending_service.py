"""Sending (S3-S5, P1) on in-memory fakes of every port: services/sending.py's guarantees, each
path of an envelope's send, and SES's events in every order. No AWS, no network.

`run_workflow` plays the shipped ASL's part for one run (statemachines/send_envelopes.asl.json,
itself tested on moto's interpreter in tests/integration/test_stepfunctions.py): the send step,
retried on SesThrottled and TransientSendError up to four attempts; anything else, or the last
retry, goes to the fail step with "<Error>: <message>".
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from billbridge.domain.bills import Bill, BillKind, BillState, Client, StoredBill
from billbridge.domain.envelopes import EnvelopeStatus, can_move
from billbridge.domain.errors import (
    ClioUnreachable,
    Conflict,
    EmailNotSent,
    RuleViolation,
    SesThrottled,
    TransientSendError,
)
from billbridge.domain.settings import FirmSettings
from tests.fakes import T0, FakeClio, FakeWorld, connection

FIRM = "firm-a"
PAY_BASE = "https://pay.test"  # the fake config's PUBLIC_PAY_BASE_URL
RETRIED = (SesThrottled, TransientSendError)
MAX_ATTEMPTS = 4  # the ASL's MaxAttempts on the send task


class SendApp:
    """The app on FakeWorld (every port a fake, built by the composition root): drafting and
    send requests (the API), the workflow's steps, SES's events."""

    def __init__(self) -> None:
        self.world = world = FakeWorld()
        for bill_id in (1, 2, 3):
            world.bills.items[(FIRM, bill_id)] = bill(bill_id)
        world.settings.items[FIRM] = FirmSettings(
            firm_name="Smith & Jones LLP", reply_to="office@sj.example"
        )
        world.connections.save(connection(FIRM))
        api = world.api()
        self.drafting, self.requests = api.envelopes, api.sending
        self.steps, self.events = world.send_steps(), world.delivery_events()
        self.envelopes, self.mailer, self.bills = world.envelopes, world.mailer, world.bills
        self.links, self.settings, self.starter = world.links, world.settings, world.send_starter
        self.clio: FakeClio = world.clio.for_connection(connection(FIRM))

    def draft(self, *bill_ids: int) -> list[str]:
        _, envelopes = self.drafting.draft(FIRM, list(bill_ids))
        return [e.id for e in envelopes]

    def envelope(self, envelope_id: str) -> Any:
        return self.envelopes.get(FIRM, envelope_id)

    def status(self, envelope_id: str) -> EnvelopeStatus:
        return self.envelope(envelope_id).status

    def ses_started(self, envelope_id: str) -> bool:
        return (FIRM, envelope_id) in self.envelopes.ses_started


def bill(bill_id: int, email: str | None = None) -> StoredBill:
    return StoredBill(
        bill=Bill(
            id=bill_id,
            etag="e",
            number=f"INV-{bill_id}",
            state=BillState.AWAITING_PAYMENT,
            kind=BillKind.INVOICE,
            client=Client(
                id=bill_id, name=f"Client {bill_id}", email=email or f"c{bill_id}@client.example"
            ),
            matter=None,
            total_cents=10_000,
            outstanding_clio_cents=10_000,
            currency="USD",
            issued_at=date(2026, 10, 1),
            due_at=date(2026, 11, 30),
            clio_updated_at=T0,
            clio_url=f"https://app.clio.com/nc/#/bills/{bill_id}",
        )
    )


@pytest.fixture
def app() -> SendApp:
    return SendApp()


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {getattr(exc, 'message', exc)}"


def run_workflow(app: SendApp, envelope_ids: list[str], claim_token: str = "claim-1") -> list:
    results = []
    for envelope_id in envelope_ids:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                results.append(app.steps.send_step(FIRM, envelope_id, claim_token))
                break
            except RETRIED as exc:
                if attempt == MAX_ATTEMPTS:
                    results.append(
                        app.steps.fail_step(FIRM, envelope_id, claim_token, _reason(exc))
                    )
            except Exception as exc:  # the ASL's Catch on States.ALL
                results.append(app.steps.fail_step(FIRM, envelope_id, claim_token, _reason(exc)))
                break
    return results


def ses_event(app: SendApp, kind: str, envelope_id: str, *, tagged: bool = True) -> bool:
    message_id = app.envelopes.message_of(FIRM, envelope_id) or "unknown"
    tags = {"firm_id": FIRM, "envelope_id": envelope_id} if tagged else None
    return app.events.ses_event(kind, message_id, tags)


# -- sent --------------------------------------------------------------------------------------


def test_given_a_draft_when_sent_then_one_email_with_its_pdf_and_pay_link_and_the_bill_marked(
    app,
):
    (envelope_id,) = app.draft(1)

    (result,) = run_workflow(app, [envelope_id])

    assert result["outcome"] == "sent"
    (mail,) = app.mailer.sent
    sent = app.envelope(envelope_id)
    assert sent.status is EnvelopeStatus.SENT and sent.error is None
    assert sent.payment_url.startswith(f"{PAY_BASE}/pay/") and sent.payment_url in mail.text
    assert "{{ pay_link }}" not in mail.text and sent.payment_url in mail.html
    assert mail.to == ["c1@client.example"] and mail.subject == sent.subject
    assert (mail.sender_name, mail.reply_to) == ("Smith & Jones LLP", "office@sj.example")
    assert [name for name, _ in mail.attachments] == ["INV-1.pdf"]
    assert mail.tags == {"firm_id": FIRM, "envelope_id": envelope_id}
    stored = app.bills.get(FIRM, 1)
    assert stored.payment_link_id == sent.payment_link_id and stored.last_sent_at is not None


def test_given_a_bill_paid_through_billbridge_after_drafting_then_its_envelope_is_not_sent(app):
    (envelope_id,) = app.draft(1)
    stored = app.bills.items[(FIRM, 1)]
    # The client paid it all (another link) before this draft was sent; Clio not told yet.
    app.bills.items[(FIRM, 1)] = replace(
        stored, paid_gl_cents=10_000, baseline_outstanding_cents=10_000
    )

    (result,) = run_workflow(app, [envelope_id])

    assert result["outcome"] == "cancelled"
    assert app.mailer.sent == []
    failed = app.envelope(envelope_id)
    assert failed.status is EnvelopeStatus.FAILED
    assert failed.error == (
        "Not sent: INV-1 cannot be sent: it is already paid through BillBridge ($100.00 in "
        "Paid (GL)), which Clio does not show yet, so nothing is payable on it."
    )


def _paid_in_part(app: SendApp, bill_id: int, cents: int) -> None:
    """A payment through BillBridge that Clio does not show yet (Paid (GL) grows)."""
    stored = app.bills.items[(FIRM, bill_id)]
    app.bills.items[(FIRM, bill_id)] = replace(
        stored, paid_gl_cents=cents, baseline_outstanding_cents=stored.bill.outstanding_clio_cents
    )


def test_given_a_partial_payment_after_drafting_when_sent_then_the_email_asks_for_the_rest(app):
    (envelope_id,) = app.draft(1)
    assert "$100.00" in app.envelope(envelope_id).body
    _paid_in_part(app, 1, 3_000)

    (result,) = run_workflow(app, [envelope_id])

    assert result["outcome"] == "sent"
    (mail,) = app.mailer.sent
    assert "$70.00" in mail.text and "$100.00" not in mail.text
    sent = app.envelope(envelope_id)
    assert "$70.00" in sent.body and sent.subject == mail.subject
    assert sent.drafted_amounts == ((1, 7_000),)
    assert sent.send_note == (
        "Updated when sent to ask for what was payable then. INV-1 was $100.00 and is now $70.00."
    )


def test_given_an_edited_draft_whose_amount_changed_when_sent_then_refused_and_not_emailed(app):
    (envelope_id,) = app.draft(1)
    app.drafting.edit(FIRM, envelope_id, None, "Dear client, please pay $100.00 today.")
    _paid_in_part(app, 1, 3_000)

    with pytest.raises(Conflict) as refused:
        app.requests.send_envelope(FIRM, envelope_id)

    assert refused.value.code == "amounts_changed"
    assert refused.value.message == (
        "What is payable changed since this envelope was drafted. INV-1 was $100.00 and is now "
        "$70.00. It is not sent, because its subject or message was edited, so BillBridge does "
        "not rewrite them: draft INV-1 again to send what is payable now."
    )
    assert app.status(envelope_id) is EnvelopeStatus.DRAFT and app.starter.started == []
    # The same race after the API's check: the send step fails it, saying the same.
    (result,) = run_workflow(app, [envelope_id])
    assert result["outcome"] == "cancelled" and app.mailer.sent == []
    assert app.envelope(envelope_id).error == f"Not sent: {refused.value.message}"


def test_given_an_edit_that_changes_nothing_then_the_draft_is_still_the_templates(app):
    (envelope_id,) = app.draft(1)
    draft = app.envelope(envelope_id)
    app.drafting.edit(FIRM, envelope_id, draft.subject, draft.body)
    assert app.envelope(envelope_id).edited is False
    _paid_in_part(app, 1, 1_000)

    envelope, _ = app.requests.send_envelope(FIRM, envelope_id)

    assert "$90.00" in envelope.body and "$100.00" not in envelope.body


def test_given_an_aggregate_envelope_when_one_bill_was_paid_then_it_is_left_out_of_the_email(
    app,
):
    for bill_id in (1, 2):
        stored = app.bills.items[(FIRM, bill_id)]
        app.bills.items[(FIRM, bill_id)] = replace(
            stored, bill=replace(stored.bill, client=bill(1).bill.client)
        )
    app.settings.items[FIRM] = app.settings.items[FIRM].model_copy(
        update={"aggregate_payment_links": True}
    )
    (envelope_id,) = app.draft(1, 2)
    _paid_in_part(app, 2, 10_000)

    envelope, _ = app.requests.send_envelope(FIRM, envelope_id)
    assert envelope.bill_ids == (1,)
    (result,) = run_workflow(app, [envelope_id])

    assert result["outcome"] == "sent"
    (mail,) = app.mailer.sent
    assert [name for name, _ in mail.attachments] == ["INV-1.pdf"]
    assert "INV-2" not in mail.text and "INV-2" not in mail.subject
    sent = app.envelope(envelope_id)
    assert sent.bill_ids == (1,) and app.links.for_bills(FIRM, (1,)) is not None
    assert sent.send_note is not None and "Left out: INV-2 cannot be sent" in sent.send_note


def test_given_nothing_payable_when_sent_through_the_api_then_409_and_nothing_started(app):
    (envelope_id,) = app.draft(1)
    _paid_in_part(app, 1, 10_000)

    with pytest.raises(Conflict) as refused:
        app.requests.send_envelope(FIRM, envelope_id)

    assert refused.value.code == "nothing_payable"
    assert refused.value.message.startswith("INV-1 cannot be sent: it is already paid")
    assert app.starter.started == [] and app.status(envelope_id) is EnvelopeStatus.DRAFT


def test_given_the_same_bills_sent_twice_then_the_second_email_carries_the_same_link(app):
    (first,) = app.draft(1)
    run_workflow(app, [first])
    (second,) = app.draft(1)

    run_workflow(app, [second], claim_token="claim-2")

    assert app.envelope(second).payment_url == app.envelope(first).payment_url
    assert len(app.links.items) == 1 and len(app.mailer.sent) == 2


def test_given_a_sent_envelope_when_sent_again_then_422_and_no_workflow_starts(app):
    (envelope_id,) = app.draft(1)
    run_workflow(app, [envelope_id])

    with pytest.raises(RuleViolation) as refused:
        app.requests.send_envelope(FIRM, envelope_id)

    assert refused.value.code == "envelope_already_sent"
    assert app.starter.started == []


def test_given_a_batch_with_sent_and_failed_envelopes_when_sent_then_only_the_failed_go(app):
    sent, failing = app.draft(1, 2)
    run_workflow(app, [sent])
    app.mailer.refuse_next = [EmailNotSent("SES refused the email (MessageRejected)")]
    run_workflow(app, [failing])
    batch_id = app.envelope(sent).batch_id

    app.requests.send_batch(FIRM, batch_id)

    assert app.starter.started == [(FIRM, batch_id, (failing,))]


# -- failed before SES -------------------------------------------------------------------------


def test_given_clio_refusing_a_pdf_then_failed_before_ses_with_a_readable_error_and_resendable(
    app,
):
    (envelope_id,) = app.draft(1)
    app.clio.pdf_fail_next = [ClioUnreachable("Clio answered GET /bills/1/preview with HTTP 404")]

    (result,) = run_workflow(app, [envelope_id])

    failed = app.envelope(envelope_id)
    assert result["outcome"] == "failed" and failed.status is EnvelopeStatus.FAILED
    assert failed.error == "ClioUnreachable: Clio answered GET /bills/1/preview with HTTP 404"
    assert app.mailer.calls == 0
    app.requests.send_envelope(FIRM, envelope_id)  # allowed: it failed
    assert run_workflow(app, [envelope_id], claim_token="claim-2")[0]["outcome"] == "sent"
    assert len(app.mailer.sent) == 1 and app.envelope(envelope_id).error is None


def test_given_clio_briefly_unavailable_then_the_pdf_fetch_is_retried_and_the_email_sent(app):
    (envelope_id,) = app.draft(1)
    transient = ClioUnreachable("Clio rate-limited")
    transient.transient = True
    app.clio.pdf_fail_next = [transient, transient]

    (result,) = run_workflow(app, [envelope_id])

    assert result["outcome"] == "sent" and len(app.mailer.sent) == 1


def test_given_a_stored_subject_with_a_line_break_then_failed_before_ses_then_edited_and_sent(
    app,
):
    (envelope_id,) = app.draft(1)
    # Written before input was checked: the subject would break the email's header.
    key = (FIRM, envelope_id)
    app.envelopes.envelopes[key] = replace(
        app.envelopes.envelopes[key], subject="Invoice\r\nBcc: everyone@example.com"
    )

    (result,) = run_workflow(app, [envelope_id])

    failed = app.envelope(envelope_id)
    assert result["outcome"] == "failed" and failed.status is EnvelopeStatus.FAILED
    assert "The subject contains a line break" in failed.error
    assert "edit the envelope's subject" in failed.error
    assert app.mailer.calls == 0
    app.drafting.edit(FIRM, envelope_id, "Your invoice", None)
    assert run_workflow(app, [envelope_id], claim_token="claim-2")[0]["outcome"] == "sent"
    assert [m.subject for m in app.mailer.sent] == ["Your invoice"]


def test_given_a_stored_sender_name_with_a_line_break_then_the_envelope_fails_naming_settings(
    app,
):
    (envelope_id,) = app.draft(1)
    app.settings.items[FIRM] = FirmSettings(sender_name="Smith\nJones")  # saved before checks

    run_workflow(app, [envelope_id])

    failed = app.envelope(envelope_id)
    assert failed.status is EnvelopeStatus.FAILED and "correct it in Settings" in failed.error
    assert app.mailer.calls == 0


def test_given_clio_not_connected_when_sending_then_failed_and_nothing_emailed(app):
    (envelope_id,) = app.draft(1)
    app.world.connections.items.clear()

    run_workflow(app, [envelope_id])

    assert app.status(envelope_id) is EnvelopeStatus.FAILED and app.mailer.calls == 0


def test_given_a_failed_envelope_when_sent_again_then_it_waits_as_a_draft_its_error_cleared(app):
    (envelope_id,) = app.draft(1)
    app.clio.pdf_fail_next = [ClioUnreachable("Clio answered HTTP 404")]
    run_workflow(app, [envelope_id])
    assert app.status(envelope_id) is EnvelopeStatus.FAILED

    answered, _ = app.requests.send_envelope(FIRM, envelope_id)

    # What staff see until the new run ends is that run's, not the old failure.
    assert answered.status is EnvelopeStatus.DRAFT and answered.error is None
    assert app.status(envelope_id) is EnvelopeStatus.DRAFT and len(app.starter.started) == 1


# -- failed at SES -----------------------------------------------------------------------------


def test_given_ses_refusing_the_email_then_failed_not_stuck_and_sent_once_when_sent_again(app):
    (envelope_id,) = app.draft(1)
    app.mailer.refuse_next = [EmailNotSent("SES refused the email (MessageRejected): bad")]

    (result,) = run_workflow(app, [envelope_id])

    failed = app.envelope(envelope_id)
    assert result["outcome"] == "failed" and failed.status is EnvelopeStatus.FAILED
    assert "unconfirmed" not in failed.error and "MessageRejected" in failed.error
    assert not app.ses_started(envelope_id)
    run_workflow(app, [envelope_id], claim_token="claim-2")
    assert app.status(envelope_id) is EnvelopeStatus.SENT and len(app.mailer.sent) == 1


# -- throttled and retried ---------------------------------------------------------------------


def test_given_ses_throttling_twice_then_the_retry_sends_it_once(app):
    (envelope_id,) = app.draft(1)
    app.mailer.refuse_next = [SesThrottled("rate"), SesThrottled("rate")]

    (result,) = run_workflow(app, [envelope_id])

    assert result["outcome"] == "sent" and app.mailer.calls == 3 and len(app.mailer.sent) == 1


def test_given_ses_throttling_through_every_retry_then_failed_and_sendable_again(app):
    (envelope_id,) = app.draft(1)
    app.mailer.refuse_next = [SesThrottled("rate")] * MAX_ATTEMPTS

    (result,) = run_workflow(app, [envelope_id])

    assert result["outcome"] == "failed" and app.status(envelope_id) is EnvelopeStatus.FAILED
    assert app.mailer.sent == []
    run_workflow(app, [envelope_id], claim_token="claim-2")
    assert len(app.mailer.sent) == 1


# -- a crash after the SES call ----------------------------------------------------------------


@pytest.mark.parametrize("where", ["mailer", "mark_sent"])
def test_given_a_crash_after_ses_took_the_email_then_never_sent_twice_and_ses_settles_it(
    app, where
):
    (envelope_id,) = app.draft(1)
    if where == "mailer":
        app.mailer.crash_after_accepting = 1
    else:
        app.envelopes.crash_next["mark_sent"] = 1

    (result,) = run_workflow(app, [envelope_id])
    # Step Functions retrying the step, a second press on Send, a batch send: none emails again.
    again = app.steps.send_step(FIRM, envelope_id, "claim-1")
    with pytest.raises(RuleViolation):
        app.requests.send_envelope(FIRM, envelope_id)

    stuck = app.envelope(envelope_id)
    assert result["outcome"] == "unconfirmed" and again["outcome"] == "unconfirmed"
    assert stuck.status is EnvelopeStatus.SENDING
    assert stuck.error == "delivery unconfirmed: an earlier attempt may have reached SES"
    assert len(app.mailer.sent) == 1
    # SES's own Send event, found by the message's tags, settles it.
    message_id = app.mailer.sent[0].message_id
    assert app.events.ses_event("Send", message_id, {"firm_id": FIRM, "envelope_id": envelope_id})
    assert (
        app.status(envelope_id) is EnvelopeStatus.SENT and app.envelope(envelope_id).error is None
    )


def test_given_a_crash_before_the_ses_mark_then_the_retry_sends_it_once(app):
    (envelope_id,) = app.draft(1)
    app.envelopes.crash_next["start_ses_call"] = 1

    (result,) = run_workflow(app, [envelope_id])

    # Not retried (a crash is not a named retryable error): failed, and nothing was sent.
    assert result["outcome"] == "failed" and app.mailer.calls == 0
    run_workflow(app, [envelope_id], claim_token="claim-2")
    assert len(app.mailer.sent) == 1


# -- two runs racing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "point", ["claim", "start_ses_call", "undo_ses_call", "mark_sent", "mark_failed"]
)
def test_given_a_second_run_at_any_point_of_the_first_then_one_email_and_sent(app, point):
    (envelope_id,) = app.draft(1)
    second: list[dict[str, Any]] = []
    app.envelopes.before[point] = lambda: second.extend(run_workflow(app, [envelope_id], "run-b"))
    if point == "undo_ses_call":
        app.mailer.refuse_next = [SesThrottled("rate")]
    if point == "mark_failed":
        app.clio.pdf_fail_next = [ClioUnreachable("Clio forbade the preview")]

    first = run_workflow(app, [envelope_id], "run-a")

    outcomes = sorted([first[-1]["outcome"], *(r["outcome"] for r in second)])
    if point == "mark_failed":
        # Run A failed before SES; run B, cutting in before A recorded it, found the envelope
        # claimed and skipped: A's failure is recorded and nothing was emailed.
        assert app.status(envelope_id) is EnvelopeStatus.FAILED and app.mailer.sent == []
        assert outcomes == ["failed", "skipped"]
    else:
        assert app.status(envelope_id) is EnvelopeStatus.SENT and len(app.mailer.sent) == 1
        assert "sent" in outcomes and outcomes.count("sent") == 1


def test_given_another_runs_failure_then_the_envelope_this_run_is_sending_is_not_failed(app):
    (envelope_id,) = app.draft(1)
    # Run B's task died before it could claim (Lambda throttled): its Catch marks the envelope
    # failed with B's token, while run A holds the claim and is about to call SES.
    app.envelopes.before["start_ses_call"] = lambda: app.steps.fail_step(
        FIRM, envelope_id, "run-b", "Lambda.TooManyRequestsException: Rate exceeded"
    )

    run_workflow(app, [envelope_id], "run-a")

    assert app.status(envelope_id) is EnvelopeStatus.SENT and len(app.mailer.sent) == 1
    assert app.envelope(envelope_id).error is None


def test_given_a_batch_and_a_single_send_racing_then_each_envelope_is_emailed_once(app):
    ids = app.draft(1, 2, 3)
    app.envelopes.before["start_ses_call"] = lambda: run_workflow(app, [ids[1]], "single")

    run_workflow(app, ids, "batch")

    assert sorted(m.to[0] for m in app.mailer.sent) == [
        "c1@client.example",
        "c2@client.example",
        "c3@client.example",
    ]
    assert {app.status(i) for i in ids} == {EnvelopeStatus.SENT}


# -- SES's delivery, bounce and complaint events ---------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("Delivery", EnvelopeStatus.DELIVERED),
        ("Bounce", EnvelopeStatus.BOUNCED),
        ("Complaint", EnvelopeStatus.COMPLAINED),
    ],
)
def test_given_a_sent_envelope_when_ses_reports_then_the_status_moves_and_a_repeat_changes_nothing(
    app, kind, status
):
    (envelope_id,) = app.draft(1)
    run_workflow(app, [envelope_id])

    assert ses_event(app, kind, envelope_id) is True
    assert ses_event(app, kind, envelope_id) is False
    assert ses_event(app, "Send", envelope_id) is False  # late: never moves back
    assert app.status(envelope_id) is status


def test_given_an_event_without_tags_then_the_envelope_is_found_by_its_message_id(app):
    (envelope_id,) = app.draft(1)
    run_workflow(app, [envelope_id])

    assert ses_event(app, "Delivery", envelope_id, tagged=False) is True
    assert app.status(envelope_id) is EnvelopeStatus.DELIVERED
    assert app.events.ses_event("Delivery", "no-such-message") is False
    assert app.events.ses_event("Open", "ses-1") is False  # not an event we record


def _final_status(app: SendApp, order: tuple[str, ...]) -> EnvelopeStatus:
    (envelope_id,) = app.draft(1)  # a new envelope of its own for each order
    app.mailer.crash_after_accepting = 1  # left `sending`: every event may arrive first
    run_workflow(app, [envelope_id])
    message_id = app.mailer.sent[-1].message_id
    for kind in order:
        app.events.ses_event(kind, message_id, {"firm_id": FIRM, "envelope_id": envelope_id})
    return app.status(envelope_id)


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        (("Send", "Delivery"), EnvelopeStatus.DELIVERED),
        (("Send", "Delivery", "Bounce"), EnvelopeStatus.BOUNCED),
        (("Send", "Delivery", "Complaint"), EnvelopeStatus.COMPLAINED),
    ],
)
def test_given_ses_events_in_every_order_and_repeated_then_the_outcome_is_the_same(
    app, events, expected
):
    orders = set()
    for order in itertools.permutations(events):  # every order, then each repeated
        orders |= {order, order + order, tuple(e for e in order for _ in range(2))}

    finals = {order: _final_status(app, order) for order in orders}

    assert set(finals.values()) == {expected}, {o: s for o, s in finals.items() if s != expected}


# -- the status rules --------------------------------------------------------------------------


def test_given_the_status_rules_then_nothing_moves_back_and_only_drafts_and_failed_are_claimed():
    order = [
        EnvelopeStatus.SENDING,
        EnvelopeStatus.SENT,
        EnvelopeStatus.DELIVERED,
        EnvelopeStatus.BOUNCED,
    ]
    for earlier, later in itertools.combinations(order, 2):
        assert not can_move(later, earlier)
    claimable = {s for s in EnvelopeStatus if can_move(s, EnvelopeStatus.SENDING)}
    assert claimable == {EnvelopeStatus.DRAFT, EnvelopeStatus.FAILED}
    # Once SES may have the email it is never `failed` (which would invite a second send).
    for status in (EnvelopeStatus.SENT, EnvelopeStatus.DELIVERED, EnvelopeStatus.BOUNCED):
        assert not can_move(status, EnvelopeStatus.FAILED)
