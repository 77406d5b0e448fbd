"""Receipts in the outbox, the pay page's statuses and receipts, the confirmation and the bill
PDFs, over HTTP against the local stack (X5, issue 13): each receipt kind emailed exactly once,
even when Stripe delivers its event again."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from tests.e2e.test_payments import send_bills

pytestmark = pytest.mark.e2e


def receipts_to(local_stack, address: str) -> list[dict[str, Any]]:
    """The client's emails other than the envelope (the one with the bill attached)."""
    return [m for m in local_stack.outbox() if address in m["to"] and not m["attachments"]]


def wait_for(check, what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.2)


def resend_all(stripe_sandbox, link_id: str) -> None:
    """Stripe delivers every event about the link's payments and refunds again, byte for byte
    (the resend answers once our webhook answered, receipts included)."""
    for event in stripe_sandbox.events():
        if (event["data"]["object"].get("metadata") or {}).get("link_id") == link_id:
            assert stripe_sandbox.resend(event["id"]) == 200


def test_card_payment_one_receipt_confirmation_and_refund_receipt(
    new_firm, stripe_sandbox, local_stack
):
    firm, clio = new_firm()
    client, (bill,), link_id = send_bills(firm, clio, [{"total_cents": 113_025}])
    address = f"{clio.account}@client.example"
    (session,) = client.sessions([bill], "card", amount_cents=100_000)
    stripe_sandbox.pay(session["id"], "card")
    resend_all(stripe_sandbox, link_id)

    (receipt,) = wait_for(lambda: receipts_to(local_stack, address), "a receipt")
    assert receipt["subject"].startswith("Receipt: your payment of $1,000.00 to ")
    for fact in ("Method: Card", "Payment date: ", "Reference: BB-", "Operating account".lower()):
        assert fact in receipt["body"], fact
    number = client.page()["bills"][0]["number"]
    assert f"Invoice {number}: $1,000.00" in receipt["body"]
    assert "cents" not in receipt["body"]

    page = client.page()
    (payment,) = page["receipts"]
    assert (payment["kind"], payment["status"], payment["amount_cents"]) == (
        "payment",
        "succeeded",
        100_000,
    )
    assert (
        page["bills"][0]["status"] == "payable" and page["bills"][0]["outstanding_cents"] == 13_025
    )
    assert payment["reference"] in receipt["body"]

    done = requests.get(
        f"{client.pay_url}/confirmation",
        params={"session_id": session["id"]},
        headers={"Accept": "application/json"},
        timeout=30,
    ).json()
    assert (done["state"], done["amount_cents"], done["method"], done["account"]) == (
        "succeeded",
        100_000,
        "card",
        "operating",
    )
    assert done["reference"] == payment["reference"]
    assert [b["number"] for b in done["bills"]] == [number]

    made = firm.post(
        f"/payment-links/{link_id}/transactions/{payment['transaction_id']}/refunds",
        {"amount_cents": 2_500},
    )
    assert made.status_code == 201, made.text
    wait_for(lambda: len(receipts_to(local_stack, address)) >= 2, "a refund receipt")
    resend_all(stripe_sandbox, link_id)
    subjects = [m["subject"] for m in receipts_to(local_stack, address)]
    assert len(subjects) == 2, subjects
    assert subjects[1].startswith("Refund of $25.00 from ")


def test_ach_processing_then_settled_each_receipt_once(new_firm, stripe_sandbox, local_stack):
    firm, clio = new_firm()
    client, (bill,), link_id = send_bills(firm, clio, [{"total_cents": 40_000}])
    address = f"{clio.account}@client.example"
    (session,) = client.sessions([bill], "ach")
    paid = stripe_sandbox.pay(session["id"], "ach")

    (bill_view,) = client.page()["bills"]
    assert (bill_view["status"], bill_view["outstanding_cents"], bill_view["processing_cents"]) == (
        "processing",
        0,
        40_000,
    )
    assert "processing" in bill_view["note"] and "$400.00" in bill_view["note"]
    resend_all(stripe_sandbox, link_id)
    (started,) = receipts_to(local_stack, address)
    assert "is processing" in started["subject"] and "few business days" in started["body"]

    intent = paid["payment_intent"]["id"]
    stripe_sandbox.control(f"payment_intents/{intent}/settle")
    resend_all(stripe_sandbox, link_id)
    subjects = [m["subject"] for m in receipts_to(local_stack, address)]
    assert len(subjects) == 2 and subjects[1].startswith("Receipt: your payment of $400.00")
    (bill_view,) = client.page()["bills"]
    assert bill_view["status"] == "paid"


def test_ach_failure_makes_the_bill_payable_again_and_tells_the_client(
    new_firm, stripe_sandbox, local_stack
):
    firm, clio = new_firm()
    client, (bill,), link_id = send_bills(firm, clio, [{"total_cents": 40_000}])
    address = f"{clio.account}@client.example"
    (session,) = client.sessions([bill], "ach")
    paid = stripe_sandbox.pay(session["id"], "ach")
    stripe_sandbox.control(f"payment_intents/{paid['payment_intent']['id']}/fail")
    resend_all(stripe_sandbox, link_id)

    subjects = [m["subject"] for m in receipts_to(local_stack, address)]
    assert len(subjects) == 2 and "did not go through" in subjects[1]
    failure = receipts_to(local_stack, address)[1]
    assert client.pay_url in failure["body"]
    (bill_view,) = client.page()["bills"]
    assert (bill_view["status"], bill_view["outstanding_cents"]) == ("payable", 40_000)


def test_bill_pdfs_only_for_the_links_bills(new_firm, stripe_sandbox):
    firm, clio = new_firm()
    client, (_first, second), _ = send_bills(
        firm, clio, [{"total_cents": 5_000}, {"total_cents": 6_000}]
    )
    _other, (stranger,), _ = send_bills(firm, clio, [{"total_cents": 7_000}])
    bills = client.page()["bills"]
    answer = requests.get(client.pay_url.rsplit("/pay/", 1)[0] + bills[0]["pdf_url"], timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"] == "application/pdf" and answer.content[:5] == b"%PDF-"
    assert f'filename="{bills[0]["number"]}.pdf"' in answer.headers["Content-Disposition"]
    download = requests.get(
        f"{client.pay_url}/bills/{second}.pdf", params={"download": "1"}, timeout=60
    )
    assert download.headers["Content-Disposition"].startswith("attachment;")
    refused = requests.get(f"{client.pay_url}/bills/{stranger}.pdf", timeout=60)
    assert refused.status_code == 404
    assert refused.json()["error"]["code"] == "not_found"


def test_confirmation_of_another_links_session_is_not_found(new_firm, stripe_sandbox):
    firm, clio = new_firm()
    client, (_bill,), _ = send_bills(firm, clio, [{"total_cents": 5_000}])
    other, (bill2,), _ = send_bills(firm, clio, [{"total_cents": 6_000}])
    (session,) = other.sessions([bill2], "card")

    answer = requests.get(
        f"{client.pay_url}/confirmation",
        params={"session_id": session["id"]},
        headers={"Accept": "application/json"},
        timeout=30,
    )
    assert answer.status_code == 404, answer.text
    assert answer.json()["error"]["code"] == "not_found"
    unpaid = requests.get(
        f"{other.pay_url}/confirmation",
        params={"session_id": session["id"]},
        headers={"Accept": "application/json"},
        timeout=30,
    ).json()
    assert unpaid["state"] == "not_paid" and unpaid["amount_cents"] is None


def test_pay_page_html_in_the_clients_language(new_firm):
    firm, clio = new_firm()
    client, _, _ = send_bills(firm, clio, [{"total_cents": 113_025}])
    german = requests.get(client.pay_url, headers={"Accept-Language": "de-DE,de;q=0.9"}, timeout=30)
    text = german.content.decode("utf-8")  # the page says its charset in <meta charset>
    assert '<html lang="de-DE">' in text and "1.130,25\u00a0$" in text
    english = requests.get(client.pay_url, timeout=30)
    assert '<html lang="en-US">' in english.text and "$1,130.25" in english.text
