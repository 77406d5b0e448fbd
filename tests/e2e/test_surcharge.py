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
