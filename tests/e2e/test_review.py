"""Review and send, the drafting half (S1, S2, T1 templates), over HTTP against the local stack."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


def _synced_bills(firm, clio, specs):
    made = [clio.create_bill(**spec) for spec in specs]
    firm.sync_now()
    return [str(m["id"]) for m in made]


def test_given_selected_bills_when_reviewed_then_one_draft_each_with_the_templates_filled(new_firm):
    firm, clio = new_firm()
    ids = _synced_bills(
        firm,
        clio,
        [
            {"total_cents": 123_456, "client": {"name": "Acme Ltd", "email": "ap@acme.example"}},
            {
                "total_cents": 5_000,
                "kind": "trust_request",
                "client": {"name": "Acme Ltd", "email": "ap@acme.example"},
            },
        ],
    )
    settings = firm.get("/settings").json()
    settings["firm_name"] = "Smith & Jones LLP"
    assert firm.put("/settings", settings).status_code == 200
    answer = firm.post("/envelopes", {"bill_ids": ids})
    assert answer.status_code == 201, answer.text
    batch = answer.json()
    envelopes = batch["envelopes"]
    assert [e["bill_ids"] for e in envelopes] == [[ids[0]], [ids[1]]]
    assert all(e["status"] == "draft" and e["to"] == "ap@acme.example" for e in envelopes)
    invoice, trust = envelopes
    numbers = {
        i["id"]: i["number"]
        for i in firm.get("/invoices", states="awaiting_payment").json()["items"]
    }
    assert invoice["subject"] == f"Invoice {numbers[ids[0]]} from Smith & Jones LLP"
    assert "$1,234.56" in invoice["body"] and "{{ pay_link }}" in invoice["body"]
    assert trust["subject"].startswith("Trust request")
    assert firm.get(f"/batches/{batch['batch_id']}").json() == batch


def test_given_aggregate_links_when_12_bills_of_one_client_are_reviewed_then_10_and_2(new_firm):
    firm, clio = new_firm()
    ids = _synced_bills(firm, clio, [{"total_cents": 1_000 + i} for i in range(12)])
    settings = firm.get("/settings").json()
    settings["aggregate_payment_links"] = True
    firm.put("/settings", settings)
    envelopes = firm.post("/envelopes", {"bill_ids": ids}).json()["envelopes"]
    assert sorted(len(e["bill_ids"]) for e in envelopes) == [2, 10]
    assert sorted(i for e in envelopes for i in e["bill_ids"]) == sorted(ids)


def test_given_a_draft_when_edited_then_the_change_is_kept_and_its_pdf_can_be_viewed(new_firm):
    firm, clio = new_firm()
    (bill_id,) = _synced_bills(firm, clio, [{"total_cents": 7_700}])
    envelope = firm.post("/envelopes", {"bill_ids": [bill_id]}).json()["envelopes"][0]
    edited = firm.session.patch(
        f"{firm.stack.api_url}/envelopes/{envelope['id']}",
        json={"subject": "Your bill, with thanks"},
        timeout=30,
    )
    assert edited.status_code == 200, edited.text
    again = firm.get(f"/envelopes/{envelope['id']}").json()
    assert again["subject"] == "Your bill, with thanks" and again["body"] == envelope["body"]
    pdf = firm.get(f"/envelopes/{envelope['id']}/bills/{bill_id}.pdf")
    assert pdf.status_code == 200
    assert pdf.headers["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF") and len(pdf.content) > 500
    assert firm.get(f"/envelopes/{envelope['id']}/bills/1.pdf").status_code == 404


def test_given_bills_that_cannot_be_sent_then_4xx_names_them_and_no_batch_is_made(new_firm):
    firm, clio = new_firm()
    other, other_clio = new_firm()
    good, paid, no_email = _synced_bills(
        firm,
        clio,
        [
            {"total_cents": 100},
            {"total_cents": 100, "state": "paid"},
            {"total_cents": 100, "client": {"name": "Nobody Known", "email": None}},
        ],
    )
    (foreign,) = _synced_bills(other, other_clio, [{"total_cents": 100}])
    listed = firm.get("/invoices", states="awaiting_payment,paid", page_size=200).json()
    number = {i["id"]: i["number"] for i in listed["items"]}
    for bad, code, status, named in (
        # A bill of the firm's is named by its number; another firm's is not the caller's.
        (paid, "bill_not_outstanding", 422, number[paid]),
        (no_email, "client_without_email", 422, number[no_email]),
        (foreign, "bill_not_found", 404, foreign),
    ):
        answer = firm.post("/envelopes", {"bill_ids": [good, bad]})
        assert answer.status_code == status, answer.text
        error = answer.json()["error"]
        assert error["code"] == code and error["field"] == "bill_ids"
        assert named in error["message"] and error["message"].endswith(".")


@pytest.mark.parametrize(
    ("body", "status"),
    [({}, 400), ({"bill_ids": []}, 422), ({"bill_ids": ["12x"]}, 422), ({"bill_ids": "1"}, 400)],
)
def test_given_malformed_drafts_then_4xx_names_bill_ids(new_firm, body, status):
    firm, _ = new_firm()
    answer = firm.post("/envelopes", body)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["field"].startswith("bill_ids")


def test_given_another_firms_envelope_then_404(new_firm):
    firm, clio = new_firm()
    other, _ = new_firm()
    (bill_id,) = _synced_bills(firm, clio, [{"total_cents": 100}])
    envelope = firm.post("/envelopes", {"bill_ids": [bill_id]}).json()["envelopes"][0]
    assert other.get(f"/envelopes/{envelope['id']}").status_code == 404
    assert other.get(f"/batches/{envelope['batch_id']}").status_code == 404
    patched = other.session.patch(
        f"{other.stack.api_url}/envelopes/{envelope['id']}", json={"subject": "hijack"}, timeout=30
    )
    assert patched.status_code == 404
    assert firm.get(f"/envelopes/{envelope['id']}").json()["subject"] != "hijack"


def test_given_a_template_with_an_unknown_field_then_settings_refuse_it(new_firm):
    firm, _ = new_firm()
    settings = firm.get("/settings").json()
    settings["templates"]["invoice"]["subject"] = "Bill {{ invoice_no }}"
    answer = firm.put("/settings", settings)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["field"] == "templates.invoice.subject" and "invoice_no" in error["message"]
