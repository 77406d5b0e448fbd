"""The billing clerk's screens after issue 13, in a real browser: a bill paid through BillBridge
that Clio does not show yet is not selectable, says why, and is never billed again; messages in
money format; mixed envelopes with their own wording; bills named by number everywhere, with
each bill's amount line; reconciliation with date, method, account and reference, and "recorded
in Clio"; the payment link page titled by its bills with a way back. Each test has its own firm."""

from __future__ import annotations

import re
import time

import requests
from playwright.sync_api import expect

NO_VALUE = "\u2013"  # the en dash an empty cell shows
PAY_URL = re.compile(r"https?://[^\s<>\"']+/pay/[A-Za-z0-9_-]+")


def wait_for(check, what: str, timeout: float = 90):
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.25)


def invoice(firm, bill_id) -> dict:
    items = firm.get("/invoices", page_size=200).json()["items"]
    return next(i for i in items if i["id"] == str(bill_id))


def send_and_pay(firm, clio, mails, stripe, address: str, bill_id, amount_cents=None) -> str:
    """Staff send the bill (API), the client pays it by card (the pay API and the Stripe
    sandbox, as the pay page does): answers the pay URL."""
    drafted = firm.post("/envelopes", {"bill_ids": [str(bill_id)]})
    assert drafted.status_code == 201, drafted.text
    (envelope,) = drafted.json()["envelopes"]
    assert firm.post(f"/envelopes/{envelope['id']}/send").status_code == 202
    mail = wait_for(lambda: mails(address), "the envelope's email")[-1]
    pay_url = PAY_URL.search(mail["body"]).group(0)
    body = {"bill_ids": [str(bill_id)], "method": "card"}
    if amount_cents is not None:
        body["amount_cents"] = amount_cents
    started = requests.post(f"{pay_url}/checkout", json=body, timeout=60)
    assert started.status_code == 201, started.text
    (session,) = started.json()["checkout_sessions"]
    stripe.pay(session["id"])
    return pay_url


def test_a_bill_paid_here_is_not_selectable_says_why_and_is_not_billed_again(
    staff, new_firm, mails, stripe_sandbox, local_stack
):
    firm, clio = new_firm()
    address = f"{clio.account}@client.example"
    client = {"name": "Priya Raman", "email": address}
    paid = clio.create_bill(total_cents=113_025, number="TR-00039", client=client)
    clio.create_bill(total_cents=37_210, number="INV-00040", client=client)
    firm.sync_now()
    send_and_pay(firm, clio, mails, stripe_sandbox, address, paid["id"])
    wait_for(lambda: invoice(firm, paid["id"])["paid_gl_cents"] == 113_025, "Paid (GL)")
    assert invoice(firm, paid["id"])["outstanding_clio_cents"] == 113_025  # Clio not told yet

    # The API refuses to draft it, in a sentence, in money format.
    refused = firm.post("/envelopes", {"bill_ids": [str(paid["id"])]})
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert (error["code"], error["field"]) == ("nothing_payable", "bill_ids")
    assert "$1,130.25 in Paid (GL)" in error["message"] and "cents" not in error["message"]

    page = staff.open(firm.firm_id)
    row = page.locator(f"tr[data-bill-id='{paid['id']}']")
    box = page.get_by_role("checkbox", name="Select TR-00039 (Priya Raman)")
    expect(box).to_be_disabled()
    expect(row.get_by_text("Paid, not yet in Clio")).to_be_visible()
    expect(box).to_have_accessible_description(re.compile(r"\$1,130\.25 in Paid \(GL\)"))
    expect(row.locator("td[data-label='Payable now']")).to_have_text("$0.00")

    # "Select all with a balance" leaves it out; the draft asks only for the other bill.
    page.get_by_role("checkbox", name="Select every bill with a balance on this page").check()
    expect(page.get_by_text("1 bill with a balance selected on this page")).to_be_visible()
    expect(box).not_to_be_checked()
    page.get_by_role("button", name="Review and send selected (1)").click()
    expect(page.get_by_role("heading", name="Review and send", level=1)).to_be_visible()
    body = page.get_by_label("Message")
    expect(body).to_have_value(re.compile(r"INV-00040 for \$372\.10"))
    assert "1,130.25" not in body.input_value()
    attached = page.get_by_role("list", name="Attached bills")
    expect(attached).to_contain_text("INV-00040.pdf")
    expect(attached).not_to_contain_text("TR-00039")
    staff.screenshot(page, "clerk-paid-bill-not-rebilled")

    # Reconciliation: what to type into Clio, and "recorded in Clio" until a sync confirms.
    page.get_by_role("link", name="Reconciliation").click()
    line = page.locator("table.reconciliation tbody tr").filter(has_text="TR-00039")
    expect(line).to_have_count(1)
    expect(line.locator("td[data-label='Method']")).to_have_text("Card")
    expect(line.locator("td[data-label='Account']")).to_have_text("Operating")
    expect(line.locator("td[data-label='Reference']")).to_have_text(re.compile(r"^pi_"))
    expect(line.locator("td[data-label='Date']")).not_to_have_text(NO_VALUE)
    expect(line.locator("td[data-label='Amount']")).to_have_text("$1,130.25")
    line.get_by_role(
        "button", name="Mark TR-00039's payment of $1,130.25 as recorded in Clio"
    ).click()
    expect(line.get_by_text(re.compile(r"^Recorded in Clio by "))).to_be_visible()
    expect(line.get_by_text("Waiting for the next sync to confirm it.")).to_be_visible()
    staff.screenshot(page, "clerk-reconciliation")
    page.reload()
    line = page.locator("table.reconciliation tbody tr").filter(has_text="TR-00039")
    expect(line.get_by_text(re.compile(r"^Recorded in Clio by "))).to_be_visible()
    with page.expect_download(timeout=20_000) as download:
        page.get_by_role("button", name="Download CSV").click()
    text = open(download.value.path(), encoding="utf-8").read()
    header = text.splitlines()[0].split(",")
    for column in ("payment_date", "method", "account", "reference", "recorded_in_clio_at"):
        assert column in header
    csv_line = next(r for r in text.splitlines() if "TR-00039" in r).split(",")
    assert csv_line[header.index("method")] == "card"
    assert csv_line[header.index("account")] == "operating"
    assert csv_line[header.index("reference")].startswith("pi_")
    assert csv_line[header.index("recorded_in_clio_at")]

    # Clio catches up (staff recorded it there): after the sync the line drops out.
    clio.change_bill(paid["id"], balance_cents=0, state="paid")
    firm.sync_now()
    page.reload()
    expect(page.locator("table.reconciliation tbody tr").filter(has_text="TR-00039")).to_have_count(
        0
    )


def test_a_mixed_envelope_has_its_own_wording_and_bills_are_named_by_number(
    staff, new_firm, mails, local_stack
):
    firm, clio = new_firm()
    address = f"{clio.account}@client.example"
    client = {"name": "Dana Whitfield", "email": address}
    assert firm.put(
        "/settings", {**firm.get("/settings").json(), "aggregate_payment_links": True}
    ).ok
    trust = clio.create_bill(
        kind="trust_request", total_cents=50_000, number="TR-00037", client=client
    )
    bill = clio.create_bill(total_cents=12_345, number="INV-00037", client=client)
    firm.sync_now()
    drafted = firm.post("/envelopes", {"bill_ids": [str(trust["id"]), str(bill["id"])]})
    assert drafted.status_code == 201, drafted.text
    batch_id = drafted.json()["batch_id"]

    # A fresh browser (nothing remembered from Invoices), straight at the review screen.
    page = staff.open(firm.firm_id, f"#/review/{batch_id}")
    expect(page.get_by_label("Subject")).to_have_value(re.compile(r"^Invoices and trust requests "))
    message = page.get_by_label("Message")
    expect(message).to_have_value(re.compile(r"Invoices \(\$123\.45\):\nINV-00037: \$123\.45"))
    expect(message).to_have_value(re.compile(r"Trust requests \(\$500\.00\):\nTR-00037: \$500\.00"))
    expect(message).to_have_value(re.compile("deposited into our trust account"))
    attached = page.get_by_role("list", name="Attached bills")
    expect(attached).to_contain_text("TR-00037.pdf")
    expect(attached).to_contain_text("Trust request · $500.00 payable now")
    expect(attached).to_contain_text("INV-00037.pdf")
    expect(attached).to_contain_text("Invoice · $123.45 payable now")
    expect(page.locator("dl.facts")).to_contain_text("TR-00037, INV-00037")
    expect(page.get_by_text(re.compile(rf"Bill {trust['id']}|Bill {bill['id']}"))).to_have_count(0)
    staff.screenshot(page, "clerk-mixed-envelope")

    # The confirm screen names the attachments as the email will.
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("dl.facts")).to_contain_text("TR-00037.pdf, INV-00037.pdf")

    # Send all: by number; once all are sent, subjects and messages are read-only.
    page.get_by_role("link", name="Send all envelopes").click()
    expect(page.get_by_text(f"To {address} · TR-00037, INV-00037")).to_be_visible()
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="All 1 envelope sent.")).to_be_visible(timeout=90_000)
    expect(page.get_by_role("textbox")).to_have_count(0)
    expect(page.locator(".sent-subject")).to_have_text(re.compile("^Invoices and trust requests"))
    staff.screenshot(page, "clerk-send-all-sent")
    (mail,) = wait_for(lambda: mails(address), "the email")
    assert sorted(mail["attachments"]) == ["INV-00037.pdf", "TR-00037.pdf"]
    assert "Funds for trust requests are deposited into our trust account." in mail["body"]

    # The payment link page: titled by its bills, with a way back.
    page.goto(f"{local_stack.api_url}/#/invoices")
    page.get_by_role("link", name="Payment link of INV-00037").click()
    expect(
        page.get_by_role("heading", name="Payment link for TR-00037, INV-00037 (Dana Whitfield)")
    ).to_be_visible()
    assert "Payment link for TR-00037" in page.title()
    page.get_by_role("link", name="← Back to the bill list").click()
    expect(page.get_by_role("heading", name="Invoices", level=1)).to_be_visible()


def test_a_refused_draft_shows_the_reason_in_money_format(
    staff, new_firm, mails, stripe_sandbox, local_stack
):
    firm, clio = new_firm()
    address = f"{clio.account}@client.example"
    made = clio.create_bill(
        total_cents=50_000, number="INV-00050", client={"name": "Lee Chan", "email": address}
    )
    firm.sync_now()
    page = staff.open(firm.firm_id)
    page.get_by_role("checkbox", name="Select INV-00050 (Lee Chan)").check()

    # Behind the open screen the client pays in full (an earlier email): nothing is payable.
    send_and_pay(firm, clio, mails, stripe_sandbox, address, made["id"])
    wait_for(lambda: invoice(firm, made["id"])["paid_gl_cents"] == 50_000, "Paid (GL)")
    page.get_by_role("button", name="Review and send selected (1)").click()
    expect(
        page.get_by_text(
            "INV-00050 cannot be sent: it is already paid through BillBridge ($500.00 in Paid "
            "(GL)), which Clio does not show yet, so nothing is payable on it."
        )
    ).to_be_visible()
    expect(page.get_by_text(re.compile("cents"))).to_have_count(0)


def test_search_sort_and_overdue_on_the_invoices_screen(staff, new_firm, local_stack):
    firm, clio = new_firm()
    today = time.gmtime()
    past = f"{today.tm_year - 1}-01-15"
    future = f"{today.tm_year + 1}-12-15"
    for number, name, total, due in (
        ("INV-20001", "Priya Raman", 30_000, past),
        ("INV-20002", "Acme Ltd", 10_000, future),
        ("INV-20003", "Priya Raman", 50_000, future),
        ("INV-20004", "Bob Stone", 20_000, past),
    ):
        clio.create_bill(
            number=number,
            total_cents=total,
            due_at=due,
            client={"name": name, "email": "ap@client.example"},
        )
    firm.sync_now()
    page = staff.open(firm.firm_id)

    def rows():
        return page.locator("table.invoices tbody tr td[data-label='ID'] a")

    expect(rows()).to_have_count(4)
    page.get_by_role("searchbox", name="Search").fill("priya")
    page.get_by_role("searchbox", name="Search").press("Enter")
    expect(rows()).to_have_text(["INV-20003", "INV-20001"])  # newest first
    page.get_by_label("Sort by").select_option(label="Outstanding, lowest first")
    expect(rows()).to_have_text(["INV-20001", "INV-20003"])
    page.get_by_label("Overdue only").check()
    expect(rows()).to_have_text(["INV-20001"])
    assert "q=priya" in page.url and "sort=amount" in page.url and "overdue=1" in page.url
    staff.screenshot(page, "clerk-search")

    # The address keeps the listing: a reload shows the same.
    page.reload()
    expect(rows()).to_have_text(["INV-20001"])
    expect(page.get_by_role("searchbox", name="Search")).to_have_value("priya")
    expect(page.get_by_label("Overdue only")).to_be_checked()

    # Clear the search: every overdue bill, by amount; then by client.
    page.get_by_role("searchbox", name="Search").fill("")
    page.get_by_role("searchbox", name="Search").press("Enter")
    expect(rows()).to_have_text(["INV-20004", "INV-20001"])
    page.get_by_label("Sort by").select_option(label="Client, A to Z")
    expect(rows()).to_have_text(["INV-20004", "INV-20001"])
    page.get_by_label("Overdue only").uncheck()
    expect(rows()).to_have_text(["INV-20002", "INV-20004", "INV-20001", "INV-20003"])
    # Any word of the client's name: "stone" finds Bob Stone, "ltd" Acme Ltd.
    page.get_by_role("searchbox", name="Search").fill("stone")
    page.get_by_role("searchbox", name="Search").press("Enter")
    expect(rows()).to_have_text(["INV-20004"])
    page.get_by_role("searchbox", name="Search").fill("LTD")
    page.get_by_role("searchbox", name="Search").press("Enter")
    expect(rows()).to_have_text(["INV-20002"])
    page.get_by_role("searchbox", name="Search").fill("nobody")
    page.get_by_role("searchbox", name="Search").press("Enter")
    expect(page.get_by_text("No bills match “nobody”.")).to_be_visible()
    expect(page.get_by_text(re.compile("start of any word of the client's name"))).to_be_visible()
