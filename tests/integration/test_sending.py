"""The send workflow on moto: the shipped ASL run by moto's interpreter, its tasks our real
handlers, SES read back. Sends exactly once through retries, repeats and crashes."""

from __future__ import annotations

import sys
import time

import pytest

from billbridge import bootstrap
from local.clio_sandbox.seed import seed_many


def _firm_with_drafts(stack, firm: str, count: int, aggregate: bool = False):
    ids = seed_many(stack.clio.state, firm, count, 5)
    for bill_id in ids:
        stack.clio.state.update_bill(
            bill_id, state="awaiting_payment", balance_cents=10_000, notify=False
        )
    assert stack.connect(firm, firm).status_code == 302
    session = stack.firm(firm)
    if aggregate:
        settings = session.get(f"{stack.api.url}/settings").json()
        settings["aggregate_payment_links"] = True
        session.put(f"{stack.api.url}/settings", json=settings)
    bills = [
        i
        for i in session.get(
            f"{stack.api.url}/invoices", params={"states": "awaiting_payment", "page_size": 200}
        ).json()["items"]
        if i["client"]["email"]
    ]
    answer = session.post(f"{stack.api.url}/envelopes", json={"bill_ids": [b["id"] for b in bills]})
    assert answer.status_code == 201, answer.text
    return session, answer.json()


def _wait_statuses(stack, session, batch_id, done=("sent", "failed"), timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        envelopes = session.get(f"{stack.api.url}/batches/{batch_id}").json()["envelopes"]
        if all(e["status"] in done for e in envelopes):
            return envelopes
        if time.monotonic() > deadline:
            raise AssertionError([e["status"] for e in envelopes])
        time.sleep(0.2)


def test_given_a_batch_when_sent_then_each_envelope_is_emailed_once_with_its_pdfs_and_link(inproc):
    session, batch = _firm_with_drafts(inproc, "send-all", 4)
    answer = session.post(f"{inproc.api.url}/batches/{batch['batch_id']}/send")
    assert answer.status_code == 202, answer.text
    inproc.wait_execution(answer.json()["execution_id"])
    envelopes = _wait_statuses(inproc, session, batch["batch_id"])
    assert {e["status"] for e in envelopes} == {"sent"}
    outbox = inproc.outbox()
    assert sorted(m["to"][0] for m in outbox) == sorted(e["to"] for e in envelopes)
    for envelope in envelopes:
        (mail,) = [
            m for m in outbox if m["subject"] == envelope["subject"] and m["to"] == [envelope["to"]]
        ]
        assert envelope["payment_url"] in mail["body"] and "{{ pay_link }}" not in mail["body"]
        assert len(mail["attachments"]) == len(envelope["bill_ids"])
        assert all(name.endswith(".pdf") for name in mail["attachments"])
    invoices = session.get(
        f"{inproc.api.url}/invoices", params={"states": "awaiting_payment"}
    ).json()["items"]
    sent_ids = {b for e in envelopes for b in e["bill_ids"]}
    for invoice in invoices:
        if invoice["id"] in sent_ids:
            assert invoice["payment_link_id"] and invoice["last_sent_at"]


def test_given_a_sent_envelope_when_sent_again_then_refused_and_no_second_email(inproc):
    session, batch = _firm_with_drafts(inproc, "twice", 1)
    envelope = batch["envelopes"][0]
    first = session.post(f"{inproc.api.url}/envelopes/{envelope['id']}/send")
    assert first.status_code == 202, first.text
    inproc.wait_execution(first.json()["execution_id"])
    again = session.post(f"{inproc.api.url}/envelopes/{envelope['id']}/send")
    assert again.status_code == 422 and again.json()["error"]["code"] == "envelope_already_sent"
    batch_again = session.post(f"{inproc.api.url}/batches/{batch['batch_id']}/send")
    assert batch_again.status_code == 422
    assert len([m for m in inproc.outbox() if m["to"] == [envelope["to"]]]) == 1


def test_given_two_runs_racing_for_one_envelope_then_it_is_emailed_once(inproc):
    import boto3

    from billbridge.adapters.sfn_starter import StepFunctionsSendStarter

    session, batch = _firm_with_drafts(inproc, "race", 1)
    envelope = batch["envelopes"][0]
    starter = StepFunctionsSendStarter(
        boto3.client("stepfunctions"), inproc.env["SEND_STATE_MACHINE_ARN"]
    )
    runs = [starter.start("race", batch["batch_id"], [envelope["id"]]) for _ in range(2)]
    for run in runs:
        inproc.wait_execution(run)
    assert len([m for m in inproc.outbox() if m["to"] == [envelope["to"]]]) == 1
    assert session.get(f"{inproc.api.url}/envelopes/{envelope['id']}").json()["status"] == "sent"


def test_given_the_same_bills_sent_again_then_the_payment_link_is_reused(inproc):
    session, batch = _firm_with_drafts(inproc, "reuse", 1)
    envelope = batch["envelopes"][0]
    first = session.post(f"{inproc.api.url}/envelopes/{envelope['id']}/send").json()
    inproc.wait_execution(first["execution_id"])
    sent = session.get(f"{inproc.api.url}/envelopes/{envelope['id']}").json()
    second_batch = session.post(
        f"{inproc.api.url}/envelopes", json={"bill_ids": envelope["bill_ids"]}
    ).json()
    run = session.post(f"{inproc.api.url}/batches/{second_batch['batch_id']}/send").json()
    inproc.wait_execution(run["execution_id"])
    resent = session.get(f"{inproc.api.url}/batches/{second_batch['batch_id']}").json()[
        "envelopes"
    ][0]
    assert resent["status"] == "sent"
    assert resent["payment_link_id"] == sent["payment_link_id"]
    assert resent["payment_url"] == sent["payment_url"]
    token = sent["payment_url"].rsplit("/", 1)[1]
    assert len(token) >= 43  # 256 bits, base64url


def test_given_ses_throttling_then_the_workflow_retries_and_each_is_sent_once(inproc, monkeypatch):
    from billbridge.adapters import ses_mailer
    from billbridge.domain.errors import SesThrottled

    session, batch = _firm_with_drafts(inproc, "throttle", 3)
    real_send = ses_mailer.SesMailer.send
    refusals = {"left": 2}

    def throttled(self, **kwargs):
        if refusals["left"]:
            refusals["left"] -= 1
            raise SesThrottled("Maximum sending rate exceeded")
        return real_send(self, **kwargs)

    monkeypatch.setattr(ses_mailer.SesMailer, "send", throttled)
    run = session.post(f"{inproc.api.url}/batches/{batch['batch_id']}/send").json()
    inproc.wait_execution(run["execution_id"], timeout=120)
    envelopes = _wait_statuses(inproc, session, batch["batch_id"])
    assert {e["status"] for e in envelopes} == {"sent"}
    assert refusals["left"] == 0
    assert sorted(m["to"][0] for m in inproc.outbox()) == sorted(e["to"] for e in envelopes)


def test_given_a_crash_after_the_ses_call_then_the_envelope_is_not_emailed_again(
    inproc, monkeypatch
):
    from billbridge.adapters import dynamo_envelopes

    session, batch = _firm_with_drafts(inproc, "crash", 2)
    victim = batch["envelopes"][0]["id"]
    real_mark = dynamo_envelopes.DynamoSendingRepository.mark_sent

    def crash_once(self, envelope, **kwargs):
        if envelope.id == victim and not getattr(crash_once, "done", False):
            crash_once.done = True
            raise RuntimeError("the function died after SES took the email")
        return real_mark(self, envelope, **kwargs)

    monkeypatch.setattr(dynamo_envelopes.DynamoSendingRepository, "mark_sent", crash_once)
    run = session.post(f"{inproc.api.url}/batches/{batch['batch_id']}/send").json()
    inproc.wait_execution(run["execution_id"])
    envelopes = {
        e["id"]: e
        for e in session.get(f"{inproc.api.url}/batches/{batch['batch_id']}").json()["envelopes"]
    }
    to_of = {e["id"]: e["to"] for e in envelopes.values()}
    outbox = inproc.outbox()
    for envelope_id, to in to_of.items():
        assert len([m for m in outbox if m["to"] == [to]]) == 1, envelope_id
    assert envelopes[victim]["status"] == "sending"
    assert "unconfirmed" in (envelopes[victim]["error"] or "")
    # SES's Send event, found by the message's tags, settles it.
    from datetime import UTC, datetime

    event = {
        "version": "0",
        "id": "ev-1",
        "detail-type": "Email Sent",
        "source": "aws.ses",
        "account": "123456789012",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "eventType": "Send",
            "mail": {
                "messageId": "ses-msg-1",
                "tags": {"firm_id": ["crash"], "envelope_id": [victim]},
            },
        },
    }
    assert inproc.invoke("SesEventsFunction", event)["changed"] is True
    assert inproc.invoke("SesEventsFunction", event)["changed"] is False
    assert session.get(f"{inproc.api.url}/envelopes/{victim}").json()["status"] == "sent"


def test_given_an_uncached_bill_clio_no_longer_has_then_that_envelope_fails_and_the_others_are_sent(
    inproc, monkeypatch
):
    # No prefetch: every PDF must come from Clio at send time.
    monkeypatch.setenv("PDF_PREFETCH_PER_RUN", "0")
    bootstrap.reset()
    session, batch = _firm_with_drafts(inproc, "partial", 3)
    broken = batch["envelopes"][1]
    (bill_id,) = broken["bill_ids"]
    # Gone from Clio altogether: its preview (and so its PDF) answers 404.
    inproc.clio.state.bills.pop(int(bill_id))
    run = session.post(f"{inproc.api.url}/batches/{batch['batch_id']}/send").json()
    inproc.wait_execution(run["execution_id"])
    envelopes = {e["id"]: e for e in _wait_statuses(inproc, session, batch["batch_id"])}
    assert envelopes[broken["id"]]["status"] == "failed" and envelopes[broken["id"]]["error"]
    assert [e["status"] for i, e in envelopes.items() if i != broken["id"]] == ["sent", "sent"]
    assert len(inproc.outbox()) == 2


@pytest.mark.parametrize(
    "event_type,status",
    [("Delivery", "delivered"), ("Bounce", "bounced"), ("Complaint", "complained")],
)
def test_given_ses_events_then_the_envelope_status_moves_forward_only(inproc, event_type, status):
    session, batch = _firm_with_drafts(inproc, f"ev-{event_type.lower()}", 1)
    envelope = batch["envelopes"][0]
    run = session.post(f"{inproc.api.url}/envelopes/{envelope['id']}/send").json()
    inproc.wait_execution(run["execution_id"])

    def event(kind):
        return {
            "version": "0",
            "id": f"ev-{kind}",
            "detail-type": "SES",
            "source": "aws.ses",
            "account": "123456789012",
            "time": "2026-11-24T12:00:00Z",
            "region": "us-east-1",
            "resources": [],
            "detail": {
                "eventType": kind,
                "mail": {
                    "messageId": "m",
                    "tags": {
                        "firm_id": [f"ev-{event_type.lower()}"],
                        "envelope_id": [envelope["id"]],
                    },
                },
            },
        }

    assert inproc.invoke("SesEventsFunction", event(event_type))["changed"] is True
    # A late Send event does not move it back.
    assert inproc.invoke("SesEventsFunction", event("Send"))["changed"] is False
    assert session.get(f"{inproc.api.url}/envelopes/{envelope['id']}").json()["status"] == status


# -- header-breaking values (CR/LF and other controls): refused at input, never stuck ----------


def _one_draft(stack, firm: str, client_name: str, client_email: str, subject_template=None):
    stack.clio.state.create_bill(
        account=firm,
        kind="invoice",
        total_cents=12_500,
        state="awaiting_payment",
        client_name=client_name,
        client_email=client_email,
    )
    assert stack.connect(firm, firm).status_code == 302
    session = stack.firm(firm)
    if subject_template is not None:
        settings = session.get(f"{stack.api.url}/settings").json()
        settings["templates"]["invoice"]["subject"] = subject_template
        assert session.put(f"{stack.api.url}/settings", json=settings).status_code == 200
    (bill,) = session.get(f"{stack.api.url}/invoices").json()["items"]
    return session, session.post(f"{stack.api.url}/envelopes", json={"bill_ids": [bill["id"]]})


@pytest.mark.parametrize("field", ["sender_name", "firm_name"])
def test_given_a_line_break_in_a_sender_setting_when_saved_then_422_naming_the_field(inproc, field):
    session = inproc.firm("hdr-settings")
    settings = session.get(f"{inproc.api.url}/settings").json()
    settings[field] = "Smith & Jones\r\nBcc: everyone@example.com"

    answer = session.put(f"{inproc.api.url}/settings", json=settings)

    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert (error["code"], error["field"]) == ("header_unsafe", field)
    assert "line break" in error["message"]
    assert session.get(f"{inproc.api.url}/settings").json()[field] != settings[field]


def test_given_a_subject_template_with_a_control_character_when_saved_then_422(inproc):
    session = inproc.firm("hdr-template")
    settings = session.get(f"{inproc.api.url}/settings").json()
    settings["templates"]["trust_request"]["subject"] = "Trust request\x00{{ bill_numbers }}"

    answer = session.put(f"{inproc.api.url}/settings", json=settings)

    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["field"] == "templates.trust_request.subject"


def test_given_a_subject_edited_with_a_line_break_then_422_and_the_draft_is_unchanged(inproc):
    session, drafted = _one_draft(inproc, "hdr-edit", "Dana Client", "dana@client.example")
    (envelope,) = drafted.json()["envelopes"]

    answer = session.patch(
        f"{inproc.api.url}/envelopes/{envelope['id']}",
        json={"subject": "Your invoice\nBcc: everyone@example.com"},
    )

    assert answer.status_code == 422, answer.text
    assert (answer.json()["error"]["code"], answer.json()["error"]["field"]) == (
        "header_unsafe",
        "subject",
    )
    current = session.get(f"{inproc.api.url}/envelopes/{envelope['id']}").json()
    assert current["subject"] == envelope["subject"]


def test_given_a_client_name_from_clio_with_a_line_break_in_the_subject_then_it_is_sent_on_one_line(
    inproc,
):
    session, drafted = _one_draft(
        inproc,
        "hdr-name",
        "Evil Co\r\nBcc: everyone@example.com",
        "evil@client.example",
        subject_template="Invoice for {{ client_name }}",
    )
    assert drafted.status_code == 201, drafted.text
    (envelope,) = drafted.json()["envelopes"]
    assert envelope["subject"] == "Invoice for Evil Co Bcc: everyone@example.com"

    run = session.post(f"{inproc.api.url}/envelopes/{envelope['id']}/send").json()
    inproc.wait_execution(run["execution_id"])

    sent = session.get(f"{inproc.api.url}/envelopes/{envelope['id']}").json()
    assert sent["status"] == "sent", sent
    (mail,) = [m for m in inproc.outbox() if m["to"] == ["evil@client.example"]]
    assert mail["subject"] == "Invoice for Evil Co Bcc: everyone@example.com"


def test_given_a_client_email_from_clio_with_a_line_break_then_drafting_answers_422_naming_the_bill(
    inproc,
):
    _, drafted = _one_draft(
        inproc, "hdr-email", "Mallory", "mallory@client.example\r\nBcc: everyone@example.com"
    )

    assert drafted.status_code == 422, drafted.text
    error = drafted.json()["error"]
    assert (error["code"], error["field"]) == ("client_email_invalid", "bill_ids")
    assert "Mallory" in error["message"] and "INV-" in error["message"]


def test_given_a_stored_subject_that_breaks_the_header_when_sent_then_failed_editable_and_resent(
    inproc,
):
    import boto3

    session, drafted = _one_draft(inproc, "hdr-stored", "Dana Client", "dana@client.example")
    (envelope,) = drafted.json()["envelopes"]
    # A draft written before input was checked: its subject already holds a line break.
    boto3.client("dynamodb").update_item(
        TableName=inproc.env["TABLE_NAME"],
        Key={"pk": {"S": "FIRM#hdr-stored"}, "sk": {"S": f"ENV#{envelope['id']}"}},
        UpdateExpression="SET subject = :s",
        ExpressionAttributeValues={":s": {"S": "Invoice\r\nBcc: everyone@example.com"}},
    )
    url = f"{inproc.api.url}/envelopes/{envelope['id']}"

    run = session.post(f"{url}/send").json()
    inproc.wait_execution(run["execution_id"])

    failed = session.get(url).json()
    assert failed["status"] == "failed", failed
    assert "line break" in failed["error"] and "unconfirmed" not in failed["error"]
    assert [m for m in inproc.outbox() if m["to"] == ["dana@client.example"]] == []
    edited = session.patch(url, json={"subject": "Your invoice"})
    assert edited.status_code == 200, edited.text
    again = session.post(f"{url}/send")
    assert again.status_code == 202, again.text
    inproc.wait_execution(again.json()["execution_id"])
    assert session.get(url).json()["status"] == "sent"
    (mail,) = [m for m in inproc.outbox() if m["to"] == ["dana@client.example"]]
    assert mail["subject"] == "Your invoice"


def test_given_a_second_runs_failure_while_the_first_is_sending_then_it_is_sent_once_not_failed(
    inproc,
):
    from datetime import UTC, datetime

    import boto3

    from billbridge.adapters.dynamo_envelopes import DynamoSendingRepository

    session, batch = _firm_with_drafts(inproc, "race-fail", 1)
    envelope = batch["envelopes"][0]
    sending = DynamoSendingRepository(boto3.client("dynamodb"), inproc.env["TABLE_NAME"])
    # Run A has claimed the envelope and is about to call SES...
    assert sending.claim("race-fail", envelope["id"], "run-a-claim", datetime.now(UTC))
    step = {"firm_id": "race-fail", "batch_id": batch["batch_id"], "envelope_id": envelope["id"]}
    # ...when run B's task dies before claiming it, and B's Catch records a failure.
    failure = {"Error": "Lambda.TooManyRequestsException", "Cause": "Rate exceeded"}
    inproc.invoke(
        "MarkEnvelopeFailedFunction", {**step, "claim_token": "run-b-claim", "error": failure}
    )

    assert session.get(f"{inproc.api.url}/envelopes/{envelope['id']}").json()["status"] == (
        "sending"
    )
    assert (
        inproc.invoke("SendEnvelopeFunction", {**step, "claim_token": "run-a-claim"})["outcome"]
        == "sent"
    )
    assert session.get(f"{inproc.api.url}/envelopes/{envelope['id']}").json()["status"] == "sent"
    resend = session.post(f"{inproc.api.url}/envelopes/{envelope['id']}/send")
    assert resend.status_code == 422
    assert len([m for m in inproc.outbox() if m["to"] == [envelope["to"]]]) == 1


def test_given_a_template_failing_on_a_bills_values_when_drafting_then_422_naming_both(inproc):
    inproc.clio.state.create_bill(
        account="tpl-fails",
        kind="invoice",
        total_cents=9_900,
        state="awaiting_payment",
        client_name="Zed Holdings",
        client_email="ap@zed.example",
    )
    assert inproc.connect("tpl-fails", "tpl-fails").status_code == 302
    session = inproc.firm("tpl-fails")
    settings = session.get(f"{inproc.api.url}/settings").json()
    # Renders the sample values (client "Acme Ltd"), fails on every real client.
    settings["templates"]["invoice"]["body"] = (
        "{% if client_name != 'Acme Ltd' %}{{ 1//0 }}{% endif %}"
    )
    assert session.put(f"{inproc.api.url}/settings", json=settings).status_code == 200
    (bill,) = session.get(f"{inproc.api.url}/invoices").json()["items"]

    answer = session.post(f"{inproc.api.url}/envelopes", json={"bill_ids": [bill["id"]]})

    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "template_failed" and error["field"] == "bill_ids"
    assert "The invoice email template's body" in error["message"]
    assert f"for {bill['number']} of " in error["message"]


def test_given_many_sends_when_counting_aws_clients_made_then_one_per_service_serves_them(
    inproc, monkeypatch
):
    """A container keeps its clients: one made per request or per send would pile up garbage
    (and a little retained memory in botocore) for every envelope."""
    import boto3

    session, batch = _firm_with_drafts(inproc, "clients", 3)
    made: list[str] = []
    real_client = boto3.client

    def counting_client(*args, **kwargs):
        # Only our code's clients: moto's interpreter makes its own for the tasks it runs.
        if sys._getframe(1).f_globals.get("__name__", "").startswith("billbridge"):
            made.append(kwargs.get("service_name") or args[0])
        return real_client(*args, **kwargs)

    monkeypatch.setattr(boto3, "client", counting_client)
    for envelope in batch["envelopes"]:
        answer = session.post(f"{inproc.api.url}/envelopes/{envelope['id']}/send")
        assert answer.status_code == 202, answer.text
        inproc.wait_execution(answer.json()["execution_id"])

    assert {e["status"] for e in _wait_statuses(inproc, session, batch["batch_id"])} == {"sent"}
    assert made.count("stepfunctions") <= 1
    assert made.count("sesv2") <= 1


def _sync(stack, session) -> None:
    """A manual sync, waited for (Clio's changes are then in the store)."""
    started = session.post(f"{stack.api.url}/sync")
    assert started.status_code == 202, started.text
    deadline = time.monotonic() + 60
    while session.get(f"{stack.api.url}/sync/{started.json()['id']}").json()["status"] == "running":
        assert time.monotonic() < deadline, "sync never finished"
        time.sleep(0.1)


def _payable(stack, session) -> dict[str, int]:
    items = session.get(
        f"{stack.api.url}/invoices", params={"states": "awaiting_payment,void", "page_size": 200}
    ).json()["items"]
    return {i["id"]: i["outstanding_clio_cents"] - i["paid_gl_cents"] for i in items}


def test_given_clio_changed_after_drafting_when_the_batch_is_sent_then_emails_ask_for_now(inproc):
    """A draft's amounts are checked again in the workflow's send step: a balance Clio lowered
    is re-rendered, a bill voided in Clio is never emailed (docs/sending.md, "Amounts at send")."""
    session, batch = _firm_with_drafts(inproc, "amounts-now", 2)
    lowered, voided = batch["envelopes"]
    assert "$100.00" in lowered["body"]
    inproc.clio.state.update_bill(int(lowered["bill_ids"][0]), balance_cents=6_000, notify=False)
    inproc.clio.state.update_bill(int(voided["bill_ids"][0]), state="void", notify=False)
    _sync(inproc, session)

    run = session.post(f"{inproc.api.url}/batches/{batch['batch_id']}/send")
    assert run.status_code == 202, run.text
    inproc.wait_execution(run.json()["execution_id"])

    by_id = {e["id"]: e for e in _wait_statuses(inproc, session, batch["batch_id"])}
    sent, refused = by_id[lowered["id"]], by_id[voided["id"]]
    (mail,) = [m for m in inproc.outbox() if m["to"] == [sent["to"]]]
    assert "$60.00" in mail["body"] and "$100.00" not in mail["body"]
    assert sent["status"] == "sent" and "$60.00" in sent["body"]
    number = sent["bills"][0]["number"]
    assert sent["send_note"] == (
        "Updated when sent to ask for what was payable then. "
        f"{number} was $100.00 and is now $60.00."
    )
    # The bill's send history (Invoices, "Sent emails") keeps what that send changed.
    history = session.get(f"{inproc.api.url}/invoices/{lowered['bill_ids'][0]}/envelopes")
    assert history.status_code == 200, history.text
    (record,) = history.json()["items"]
    assert (record["envelope_id"], record["send_note"]) == (sent["id"], sent["send_note"])
    assert refused["status"] == "failed"
    assert refused["error"] == (
        f"Not sent: {refused['bills'][0]['number']} cannot be sent: the firm voided it in Clio, "
        "so nothing is payable on it."
    )
    assert [m for m in inproc.outbox() if m["to"] == [refused["to"]]] == []


def test_given_an_edited_draft_whose_balance_changed_when_sent_then_409_and_no_email(inproc):
    session, batch = _firm_with_drafts(inproc, "edited-409", 1)
    (envelope,) = batch["envelopes"]
    edited = session.patch(
        f"{inproc.api.url}/envelopes/{envelope['id']}",
        json={"body": "Please pay $100.00 by Friday.\n\n{{ pay_link }}"},
    )
    assert edited.status_code == 200 and edited.json()["edited"] is True
    inproc.clio.state.update_bill(int(envelope["bill_ids"][0]), balance_cents=2_500, notify=False)
    _sync(inproc, session)

    answer = session.post(f"{inproc.api.url}/envelopes/{envelope['id']}/send")

    assert answer.status_code == 409, answer.text
    error = answer.json()["error"]
    number = envelope["bills"][0]["number"]
    assert error["code"] == "amounts_changed" and error["field"] == "id"
    assert error["message"] == (
        f"What is payable changed since this envelope was drafted. {number} was $100.00 and is "
        "now $25.00. It is not sent, because its subject or message was edited, so BillBridge "
        f"does not rewrite them: draft {number} again to send what is payable now."
    )
    still = session.get(f"{inproc.api.url}/envelopes/{envelope['id']}").json()
    assert still["status"] == "draft" and still["body"].startswith("Please pay $100.00")
    assert [m for m in inproc.outbox() if m["to"] == [envelope["to"]]] == []
    # Drafted again, it asks for what is payable now and goes.
    again = session.post(f"{inproc.api.url}/envelopes", json={"bill_ids": envelope["bill_ids"]})
    (redrafted,) = again.json()["envelopes"]
    assert "$25.00" in redrafted["body"]
    run = session.post(f"{inproc.api.url}/envelopes/{redrafted['id']}/send")
    assert run.status_code == 202, run.text
    inproc.wait_execution(run.json()["execution_id"])
    (mail,) = [m for m in inproc.outbox() if m["to"] == [envelope["to"]]]
    assert "$25.00" in mail["body"]
