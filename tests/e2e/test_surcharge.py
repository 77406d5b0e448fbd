"""Card surcharges end to end: the firm turns them on, a client whose Clio address is in
California sees the surcharge on the pay page before paying, the operating card session
charges it, and Paid (GL) and reconciliation count only what pays the bill; a client in
Connecticut (excluded by default), a bank payment and a trust request carry none."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from tests.e2e.test_payments import paid_gl, send_existing, transactions, wait_synced

pytestmark = pytest.mark.e2e

ADDRESS = {
    "street": "1 Market St",
    "city": "San Francisco",
    "state": "CA",
    "postal_code": "94105",
    "country": "US",
}


def surcharging_firm(new_firm: Any) -> tuple[Any, Any]:
    firm, clio = new_firm()
    settings = firm.get("/settings").json()
    assert settings["surcharge"] == {
        "enabled": False,
        "percent": 3.0,
        "excluded_states": ["CT", "ME", "MA", "PR"],
    }
    settings["surcharge"] = {**settings["surcharge"], "enabled": True}
    settings["aggregate_payment_links"] = True
    saved = firm.put("/settings", settings)
    assert saved.status_code == 200, saved.text
    return firm, clio


def sent_to(
    firm: Any, clio: Any, state: str, specs: list[dict[str, Any]]
) -> tuple[Any, list[str], str]:
    client = {
        "name": f"Client in {state}",
        "email": f"{clio.account}-{state.lower()}@client.example",
        "address": {**ADDRESS, "state": state},
    }
    ids = [str(clio.create_bill(client=client, **spec)["id"]) for spec in specs]
    wait_synced(firm, ids)
    pay, link_id = send_existing(firm, ids)
    return pay, ids, link_id


def test_given_surcharges_on_then_a_card_payment_of_an_invoice_carries_one_apart_from_the_bill(
    new_firm, stripe_sandbox
):
    firm, clio = surcharging_firm(new_firm)
    client, (invoice,), link_id = sent_to(firm, clio, "CA", [{"total_cents": 20_000}])

    shown = requests.get(f"{client.pay_url}/surcharge", timeout=30).json()
    assert shown["applies"] and shown["percent"] == 3
    assert "3% card surcharge" in shown["note"] and "bank (ACH) adds nothing" in shown["note"]

    (session,) = client.sessions([invoice], "card")
    assert (session["amount_cents"], session["surcharge_cents"]) == (20_600, 600)
    paid = stripe_sandbox.pay(session["id"], "card")
    assert paid["payment_intent"]["amount"] == 20_600  # what the card was charged

    assert paid_gl(firm)[invoice] == 20_000  # the surcharge is not the bill's money
    (txn,) = transactions(firm, link_id)
    assert (txn["amount_cents"], txn["surcharge_cents"]) == (20_000, 600)
    report = firm.get("/reconciliation").json()["items"]
    (line,) = [r for r in report if r["bill_id"] == invoice]
    assert line["to_record_cents"] == 20_000
    address = f"{clio.account}-ca@client.example"
    deadline = time.monotonic() + 60
    while not [
        m for m in firm.stack.outbox() if m["to"] == [address] and "Receipt" in m["subject"]
    ]:
        assert time.monotonic() < deadline, "no receipt"
        time.sleep(0.2)
    (receipt,) = [
        m for m in firm.stack.outbox() if m["to"] == [address] and "Receipt" in m["subject"]
    ]
    assert "$206.00" in receipt["subject"] and "Card surcharge: $6.00" in receipt["body"]


def test_given_an_excluded_state_a_bank_payment_or_a_trust_request_then_no_surcharge(
    new_firm,
):
    firm, clio = surcharging_firm(new_firm)
    in_ct, (ct_invoice,), _ = sent_to(firm, clio, "CT", [{"total_cents": 10_000}])
    assert requests.get(f"{in_ct.pay_url}/surcharge", timeout=30).json()["applies"] is False
    (session,) = in_ct.sessions([ct_invoice], "card")
    assert (session["amount_cents"], session["surcharge_cents"]) == (10_000, 0)

    in_ca, (invoice, trust), _ = sent_to(
        firm,
        clio,
        "CA",
        [{"total_cents": 10_000}, {"total_cents": 5_000, "kind": "trust_request"}],
    )
    (by_bank,) = in_ca.sessions([invoice], "ach")
    assert by_bank["surcharge_cents"] == 0 and by_bank["amount_cents"] == 10_000
    sessions = {s["account"]: s for s in in_ca.sessions([invoice, trust], "card")}
    assert sessions["trust"]["surcharge_cents"] == 0 and sessions["trust"]["amount_cents"] == 5_000
    assert sessions["operating"]["surcharge_cents"] == 300


def test_given_a_surcharged_card_payment_when_refunded_then_the_surcharge_goes_back_in_proportion(
    new_firm, stripe_sandbox
):
    """Card-network rules: a refund of a surcharged card payment refunds the surcharge too, in
    proportion on a partial refund. Through the refund API, the Stripe sandbox's wire format,
    its webhooks (replayed twice and newest first) and the ledger (Paid (GL) and reconciliation
    count only the bills' money); the clerk and the refund receipt read it in money format."""
    firm, clio = surcharging_firm(new_firm)
    client, (invoice,), link_id = sent_to(firm, clio, "CA", [{"total_cents": 20_000}])
    (session,) = client.sessions([invoice], "card")
    paid = stripe_sandbox.pay(session["id"], "card")
    charged_intent = paid["payment_intent"]["id"]
    (payment,) = transactions(firm, link_id)
    refunds = f"/payment-links/{link_id}/transactions/{payment['id']}/refunds"

    part = firm.post(refunds, {"amount_cents": 5_000})

    assert part.status_code == 201, part.text
    body = part.json()
    assert (body["amount_cents"], body["surcharge_cents"], body["status"]) == (
        5_000,
        150,
        "succeeded",
    )
    assert body["surcharge_note"] == (
        "With it, $1.50 of the card surcharge was given back in proportion: the client gets "
        "$51.50 in all."
    )
    stripe_refunds = [
        e["data"]["object"]
        for e in stripe_sandbox.events()
        if e["type"] == "refund.created" and e["data"]["object"]["payment_intent"] == charged_intent
    ]
    assert [r["amount"] for r in stripe_refunds] == [5_150]  # one refund: bills' part + share
    assert stripe_refunds[0]["metadata"]["surcharge_cents"] == "150"
    assert paid_gl(firm)[invoice] == 15_000
    (line,) = [r for r in firm.get("/reconciliation").json()["items"] if r["bill_id"] == invoice]
    assert line["to_record_cents"] == 15_000

    address = f"{clio.account}-ca@client.example"
    deadline = time.monotonic() + 60
    while not [m for m in firm.stack.outbox() if m["to"] == [address] and "Refund" in m["subject"]]:
        assert time.monotonic() < deadline, "no refund receipt"
        time.sleep(0.2)
    (receipt,) = [
        m for m in firm.stack.outbox() if m["to"] == [address] and "Refund" in m["subject"]
    ]
    assert receipt["subject"].startswith("Refund of $51.50 from ")
    assert "Card surcharge refunded: $1.50 (included)" in receipt["body"]

    # Stripe's refund.created, refund.updated and charge.refunded again, newest first, twice.
    ours = [
        e
        for e in stripe_sandbox.events()
        if e["type"] in ("refund.created", "refund.updated", "charge.refunded")
        and e["data"]["object"].get("payment_intent") == charged_intent
    ]
    assert {e["type"] for e in ours} == {"refund.created", "charge.refunded"}
    once = (paid_gl(firm), transactions(firm, link_id))
    for event in list(reversed(ours)) + ours:
        assert stripe_sandbox.resend(event["id"]) == 200
    assert (paid_gl(firm), transactions(firm, link_id)) == once

    rest = firm.post(refunds, {})
    assert rest.status_code == 201, rest.text
    assert (rest.json()["amount_cents"], rest.json()["surcharge_cents"]) == (15_000, 450)
    payment = next(t for t in transactions(firm, link_id) if t["kind"] == "payment")
    assert (payment["refunded_cents"], payment["surcharge_refunded_cents"]) == (20_000, 600)
    assert payment["surcharge_note"].endswith("$6.00 of it has been refunded.")
    assert paid_gl(firm)[invoice] == 0
    refunded_total = sum(
        e["data"]["object"]["amount"]
        for e in stripe_sandbox.events()
        if e["type"] == "refund.created" and e["data"]["object"]["payment_intent"] == charged_intent
    )
    assert refunded_total == 20_600  # everything the card was charged, and no more
