"""Review and send, the sending half (S3-S5, P1), over HTTP against the local stack: the
workflow on the AWS emulator's Step Functions, the emails read back from its SES outbox."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.e2e


def outbox(stack) -> list[dict]:
    return stack.outbox()


def mails_to(stack, address: str) -> list[dict]:
    return [m for m in outbox(stack) if m["to"] == [address]]


def wait_envelopes(firm, batch_id, done=("sent", "failed"), timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        envelopes = firm.get(f"/batches/{batch_id}").json()["envelopes"]
        if all(e["status"] in done for e in envelopes):
            return envelopes
        if time.monotonic() > deadline:
            raise AssertionError([e["status"] for e in envelopes])
        time.sleep(0.2)


def _drafts(firm, clio, specs):
    made = [clio.create_bill(**spec) for spec in specs]
    firm.sync_now()
    answer = firm.post("/envelopes", {"bill_ids": [str(m["id"]) for m in made]})
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_given_a_draft_when_sent_then_the_client_gets_one_email_with_the_pdf_and_a_pay_link(
    new_firm, local_stack
):
    firm, clio = new_firm()
    address = f"{clio.account}@client.example"
    batch = _drafts(
        firm, clio, [{"total_cents": 42_000, "client": {"name": "Dana Client", "email": address}}]
    )
    envelope = batch["envelopes"][0]
    firm.session.patch(
        f"{local_stack.api_url}/envelopes/{envelope['id']}",
        json={"subject": "Your invoice from us"},
        timeout=30,
    )
    answer = firm.post(f"/envelopes/{envelope['id']}/send")
    assert answer.status_code == 202, answer.text
    assert answer.json()["execution_id"]
    (sent,) = wait_envelopes(firm, batch["batch_id"])
    assert sent["status"] == "sent" and sent["payment_url"].startswith(
        f"{local_stack.api_url}/pay/"
    )
    (mail,) = mails_to(local_stack, address)
    assert mail["subject"] == "Your invoice from us"
    assert sent["payment_url"] in mail["body"] and sent["payment_url"] in mail["html"]
    assert "$420.00" in mail["body"]
    assert len(mail["attachments"]) == 1 and mail["attachments"][0].endswith(".pdf")
    invoice = next(
        i for i in firm.get("/invoices").json()["items"] if i["id"] == envelope["bill_ids"][0]
    )
    assert invoice["payment_link_id"] == sent["payment_link_id"] and invoice["last_sent_at"]


def test_given_a_batch_when_all_are_sent_then_each_client_gets_exactly_one_email(
    new_firm, local_stack
):
    firm, clio = new_firm()
    addresses = [f"{clio.account}-{n}@client.example" for n in range(3)]
    batch = _drafts(
        firm,
        clio,
        [
            {"total_cents": 1_000 * (n + 1), "client": {"name": f"Client {n}", "email": a}}
            for n, a in enumerate(addresses)
        ],
    )
    answer = firm.post(f"/batches/{batch['batch_id']}/send")
    assert answer.status_code == 202, answer.text
    envelopes = wait_envelopes(firm, batch["batch_id"])
    assert {e["status"] for e in envelopes} == {"sent"}
    for address in addresses:
        assert len(mails_to(local_stack, address)) == 1
    # Pressing "Send all" again sends nothing more.
    again = firm.post(f"/batches/{batch['batch_id']}/send")
    assert again.status_code == 422 and again.json()["error"]["code"] == "nothing_to_send"
    resend = firm.post(f"/envelopes/{envelopes[0]['id']}/send")
    assert resend.status_code == 422
    time.sleep(1)
    for address in addresses:
        assert len(mails_to(local_stack, address)) == 1


def test_given_one_envelope_failing_then_the_others_are_still_sent(new_firm, local_stack):
    firm, clio = new_firm()
    addresses = [f"{clio.account}-f{n}@client.example" for n in range(3)]
    batch = _drafts(
        firm,
        clio,
        [
            {"total_cents": 2_000, "client": {"name": f"Client {n}", "email": a}}
            for n, a in enumerate(addresses)
        ],
    )
    # The sync cached every PDF. One bill then changes in Clio (its webhook tells us), so its
    # PDF must be fetched again at send time, and Clio refuses that preview (as for a bill the
    # user may no longer see): that envelope fails; the workflow goes on with the others.
    victim = batch["envelopes"][0]
    (bill_id,) = victim["bill_ids"]
    clio.change_bill(int(bill_id), balance_cents=1_500)
    deadline = time.monotonic() + 60
    while not any(
        i["id"] == bill_id and i["outstanding_clio_cents"] == 1_500
        for i in firm.all_invoices("awaiting_payment", 50)
    ):
        assert time.monotonic() < deadline, "the webhook never brought the change"
        time.sleep(0.2)
    clio.control("faults", {"status": 404, "count": 1, "path": "preview"})
    assert firm.post(f"/batches/{batch['batch_id']}/send").status_code == 202
    envelopes = wait_envelopes(firm, batch["batch_id"])
    statuses = sorted(e["status"] for e in envelopes)
    assert statuses == ["failed", "sent", "sent"]
    failed = next(e for e in envelopes if e["status"] == "failed")
    assert failed["id"] == victim["id"]
    assert "404" in failed["error"] or "Not Found" in failed["error"]
    assert sum(len(mails_to(local_stack, a)) for a in addresses) == 2
    assert mails_to(local_stack, failed["to"]) == []


def test_given_a_payment_webhook_between_draft_and_send_then_the_email_asks_for_the_rest(
    new_firm, local_stack, stripe_sandbox
):
    """The race of issue 13: the clerk drafts, the client pays part through the link of an
    earlier email (Stripe's webhook lands, Paid (GL) grows, Clio not told), then the clerk
    sends: the workflow's send step re-renders the draft to what is payable now."""
    from tests.e2e.test_payments import paid_gl, send_bills

    firm, clio = new_firm()
    client, (bill_id,), _ = send_bills(firm, clio, [{"total_cents": 50_000}], aggregate=False)
    address = f"{clio.account}@client.example"
    drafted = firm.post("/envelopes", {"bill_ids": [bill_id]})
    assert drafted.status_code == 201, drafted.text
    (draft,) = drafted.json()["envelopes"]
    assert "$500.00" in draft["body"]

    (session,) = client.sessions([bill_id], amount_cents=20_000)
    stripe_sandbox.pay(session["id"], "card")
    assert paid_gl(firm)[bill_id] == 20_000

    run = firm.post(f"/batches/{draft['batch_id']}/send")
    assert run.status_code == 202, run.text
    (sent,) = wait_envelopes(firm, draft["batch_id"])

    assert sent["status"] == "sent", sent
    number = sent["bills"][0]["number"]
    assert sent["send_note"] == (
        f"Updated when sent to ask for what was payable then. {number} was $500.00 and is now "
        "$300.00."
    )
    # The bill's two emails (the client's receipt goes to the same address, with no PDF).
    first, second = [m for m in mails_to(local_stack, address) if m["attachments"]]
    assert "$500.00" in first["body"]
    assert "$300.00" in second["body"] and "$500.00" not in second["body"]
    assert client.outstanding() == {bill_id: 30_000}


def test_given_a_bill_paid_in_full_after_drafting_when_sent_then_409_and_no_email(
    new_firm, local_stack, stripe_sandbox
):
    from tests.e2e.test_payments import paid_gl, send_bills

    firm, clio = new_firm()
    client, (bill_id,), _ = send_bills(firm, clio, [{"total_cents": 40_000}], aggregate=False)
    (draft,) = firm.post("/envelopes", {"bill_ids": [bill_id]}).json()["envelopes"]
    (session,) = client.sessions([bill_id])
    stripe_sandbox.pay(session["id"], "card")
    assert paid_gl(firm)[bill_id] == 40_000

    answer = firm.post(f"/envelopes/{draft['id']}/send")

    assert answer.status_code == 409, answer.text
    error = answer.json()["error"]
    assert error["code"] == "nothing_payable"
    assert error["message"].endswith(
        "cannot be sent: it is already paid through BillBridge ($400.00 in Paid (GL)), which "
        "Clio does not show yet, so nothing is payable on it."
    )
    assert firm.get(f"/envelopes/{draft['id']}").json()["status"] == "draft"
    bill_emails = [
        m for m in mails_to(local_stack, f"{clio.account}@client.example") if m["attachments"]
    ]
    assert len(bill_emails) == 1  # the first send's, not this draft's
