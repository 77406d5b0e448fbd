"""Payments in a real browser (P2, P4, P6, P7, X2): the client opens the pay link from the
email, pays on the pay page through the Stripe sandbox's checkout page; staff see Paid (GL)
change on Invoices, open the payment link, refund (a card payment in part; an ACH payment only
whole), and read and download the reconciliation report. Each test has a firm of its own."""

from __future__ import annotations

import json
import re
import time

import requests
from playwright.sync_api import Page, expect

MINUS = "\u2212"  # refunds show as negative amounts, with a real minus sign
PAY_URL = re.compile(r"https?://[^\s<>\"']+/pay/[A-Za-z0-9_-]+")


def send_one_bill(firm, clio, mails, total_cents: int) -> tuple[dict, str]:
    """Staff send one bill (the review screens have their own test); answers the bill and the
    pay link as the client's email carries it."""
    address = f"{clio.account}@client.example"
    made = clio.create_bill(
        total_cents=total_cents, client={"name": "Dana Whitfield", "email": address}
    )
    firm.sync_now()
    drafted = firm.post("/envelopes", {"bill_ids": [str(made["id"])]})
    assert drafted.status_code == 201, drafted.text
    (envelope,) = drafted.json()["envelopes"]
    assert firm.post(f"/envelopes/{envelope['id']}/send").status_code == 202
    deadline = time.monotonic() + 60
    while not mails(address):
        assert time.monotonic() < deadline, "the envelope was never emailed"
        time.sleep(0.2)
    (mail,) = mails(address)
    bill = next(i for i in firm.get("/invoices").json()["items"] if i["id"] == str(made["id"]))
    link = PAY_URL.search(mail["body"])
    assert link, f"no pay link in the email: {mail['body']}"
    return bill, link.group(0)


def client_pays(client: Page, pay_url: str, bill: dict, amount: str, method: str) -> str:
    """The client on the pay page and the Stripe sandbox's checkout page; answers the checkout
    session id."""
    client.goto(pay_url)
    expect(client.get_by_role("heading", name="Pay your bills")).to_be_visible()
    expect(client.get_by_label(f"Pay Invoice {bill['number']}")).to_be_checked()
    if method == "ach":
        client.get_by_label("Bank account (ACH)").check()
    else:  # not the "Save this card" tick
        client.get_by_role("radio", name=re.compile(r"^Card")).check()
    client.get_by_label("Part of it").check()
    client.get_by_label(re.compile("^Amount to pay")).fill(amount)
    via = "bank transfer" if method == "ach" else "card"
    client.get_by_role("button", name=re.compile(rf"^Pay \$[\d,.]+ by {via}$")).click()
    expect(client).to_have_url(re.compile(r"/c/pay/cs_"))
    session_id = client.url.split("/c/pay/")[1].split("?")[0]
    expect(client.get_by_role("heading", name=re.compile(r"^Pay \$"))).to_be_visible()
    client.get_by_role("button", name="Pay by bank" if method == "ach" else "Pay by card").click()
    headline = (
        "Thank you: your bank payment is processing"
        if method == "ach"
        else "Thank you: your payment was received"
    )
    expect(client.get_by_role("heading", name=headline, level=1)).to_be_visible()
    return session_id


def paid_gl_cell(page: Page, bill: dict):
    return page.locator(f"tr[data-bill-id='{bill['id']}'] td[data-label='Paid (GL)']")


def open_payment_link(page: Page, bill: dict) -> None:
    page.get_by_role("link", name="Invoices").click()
    page.get_by_role("link", name=f"Payment link of {bill['number']}").click()
    expect(
        page.get_by_role("heading", name=f"Payment link for {bill['number']}", exact=False, level=1)
    ).to_be_visible()


def test_card_payment_paid_gl_partial_refund_and_reconciliation(
    staff, new_firm, mails, local_stack
):
    firm, clio = new_firm()
    bill, pay_url = send_one_bill(firm, clio, mails, 50_000)

    # The client pays $200.00 of $500.00 by card.
    client = staff.client_page()
    client_pays(client, pay_url, bill, "200.00", "card")
    staff.screenshot(client, "pay-page-paid")

    # Staff: Paid (GL) shows it; Outstanding (Clio) does not move until Clio says so (P5).
    page = staff.open(firm.firm_id)
    expect(paid_gl_cell(page, bill)).to_have_text("$200.00")
    row = page.locator(f"tr[data-bill-id='{bill['id']}']")
    expect(row.locator("td[data-label='Outstanding (Clio)']")).to_have_text("$500.00")
    expect(row.get_by_text("Payment not in Clio")).to_be_visible()

    # The payment link: its bill and the payment, allocated to the bill's operating account.
    page.get_by_role("link", name=f"Payment link of {bill['number']}").click()
    expect(
        page.get_by_role("heading", name=f"Payment link for {bill['number']}", exact=False, level=1)
    ).to_be_visible()
    payment = page.locator("table.transactions tbody tr").filter(has_text="Payment")
    expect(payment).to_have_count(1)
    expect(payment.locator("td[data-label='Amount']")).to_have_text("$200.00")
    expect(payment.locator("td[data-label='Method']")).to_have_text("Card")
    # The reference the client's confirmation and receipt show, to match a client's call.
    expect(payment.locator("td[data-label='Type']")).to_contain_text(re.compile(r"Ref\. BB-"))
    expect(payment.locator("td[data-label='Status']")).to_contain_text("Succeeded")
    expect(payment.locator("td[data-label='Allocation']")).to_have_text(
        f"{bill['number']} · Operating · $200.00"
    )
    staff.screenshot(page, "payment-link")

    # A partial refund: more than was paid is refused at the field; $50.00 goes through.
    payment.get_by_role("button", name="Refund the card payment of $200.00").click()
    dialog = page.get_by_role("dialog")
    amount = dialog.get_by_label("Amount to refund (USD)")
    expect(amount).to_have_value("200.00")
    amount.fill("500")
    # Over the limit: the button is off and says why, next to the amount (issue 13, item 8).
    refund_button = dialog.get_by_role("button", name="Refund", exact=True)
    expect(refund_button).to_be_disabled()
    expect(dialog.get_by_text("At most $200.00 can be refunded on this payment.")).to_be_visible()
    expect(amount).to_have_attribute("aria-invalid", "true")
    expect(refund_button).to_have_attribute(
        "title", "At most $200.00 can be refunded on this payment."
    )
    amount.fill("50")
    staff.screenshot(page, "refund-dialog", full_page=False)
    dialog.get_by_role("button", name="Refund $50.00").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(page.get_by_text(re.compile(r"^Refund of \$50\.00 (made|started)"))).to_be_visible()
    refund = (
        page.locator("table.transactions tbody tr")
        .filter(has_text="Refund")
        .filter(has_text=f"{MINUS}$50.00")
    )
    expect(refund).to_have_count(1)
    expect(payment.locator("td[data-label='Refunded']")).to_have_text("$50.00")

    # Someone else refunds $100.00 while this dialog is open: the server's refusal shows at
    # the field.
    payment.get_by_role("button", name="Refund the card payment of $200.00").click()
    expect(amount).to_have_value("150.00")
    link_id = page.url.split("#/payment-links/")[1]
    txn_id = payment.get_attribute("data-txn-id")
    meanwhile = firm.post(
        f"/payment-links/{link_id}/transactions/{txn_id}/refunds", {"amount_cents": 10_000}
    )
    assert meanwhile.status_code == 201, meanwhile.text
    amount.fill("100")
    dialog.get_by_role("button", name="Refund $100.00").click()
    expect(dialog.locator(".field-error")).to_have_text(
        re.compile(r"^That is more than is left to refund on this payment")
    )
    dialog.get_by_role("button", name="Cancel").click()
    expect(payment.locator("td[data-label='Refunded']")).to_have_text("$150.00")

    # Invoices: Paid (GL) is what is left: $200.00 - $50.00 - $100.00.
    page.get_by_role("link", name="Invoices").click()
    expect(paid_gl_cell(page, bill)).to_have_text("$50.00")

    # Reconciliation: what to record in Clio, on screen and as CSV.
    page.get_by_role("link", name="Reconciliation").click()
    item = page.locator("table.data tbody tr").filter(has_text=bill["number"])
    expect(item).to_have_count(1)
    expect(item.locator("td[data-label='Paid (GL)']")).to_have_text("$50.00")
    expect(item.locator("td[data-label='Amount']")).to_have_text("$50.00")
    expect(item.locator("td[data-label='Action']")).to_have_text(
        f"Record a payment of $50.00 on bill {bill['number']} in Clio."
    )
    staff.screenshot(page, "reconciliation")
    with page.expect_download(timeout=10_000) as download:
        page.get_by_role("button", name="Download CSV").click()
    assert download.value.suggested_filename.startswith("billbridge-reconciliation-")
    text = open(download.value.path(), encoding="utf-8").read()
    assert text.splitlines()[0].startswith("bill_id,number,client_name,action")
    line = next(row for row in text.splitlines() if bill["number"] in row)
    assert "record_payment" in line and "50.00" in line


def test_ach_payment_pending_then_settled_refunds_only_whole(staff, new_firm, mails, local_stack):
    firm, clio = new_firm()
    bill, pay_url = send_one_bill(firm, clio, mails, 30_000)
    session_id = client_pays(staff.client_page(), pay_url, bill, "120.00", "ach")

    # Pending until the bank settles it: not in Paid (GL), not refundable yet.
    page = staff.open(firm.firm_id)
    expect(paid_gl_cell(page, bill)).to_have_text("$0.00")
    open_payment_link(page, bill)
    payment = page.locator("table.transactions tbody tr").filter(has_text="Payment")
    expect(payment.locator("td[data-label='Method']")).to_have_text("Bank (ACH)")
    expect(payment.locator("td[data-label='Status']")).to_contain_text("Pending")
    expect(payment.get_by_text("Refundable once it settles")).to_be_visible()
    expect(payment.get_by_role("button", name=re.compile("^Refund"))).to_have_count(0)

    events = requests.get(f"{local_stack.stripe_url}/_sandbox/events", timeout=30).json()
    intent = next(
        e["data"]["object"]["payment_intent"]
        for e in events
        if e["type"] == "checkout.session.completed" and e["data"]["object"]["id"] == session_id
    )
    settled = requests.post(
        f"{local_stack.stripe_url}/_sandbox/payment_intents/{intent}/settle", json={}, timeout=30
    )
    assert settled.status_code in (200, 201), settled.text

    page.reload()
    expect(payment.locator("td[data-label='Status']")).to_contain_text("Succeeded")
    payment.get_by_role("button", name="Refund the bank (ach) payment of $120.00").click()

    # The ACH rule: the amount is locked to the whole payment, and the dialog says why.
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("Bank (ACH) payments cannot be partly refunded")).to_be_visible()
    amount = dialog.get_by_label("Amount to refund (USD)")
    expect(amount).to_have_value("120.00")
    expect(amount).not_to_be_editable()
    expect(amount).to_have_accessible_description(re.compile("cannot be partly refunded"))
    staff.screenshot(page, "refund-dialog-ach", full_page=False)

    # Were a partial refund sent anyway (an out-of-date page, a hand-made request), the
    # server refuses it and the refusal shows at the field.
    def partial(route):
        route.continue_(post_data=json.dumps({"amount_cents": 5_000}))

    page.route(re.compile(r".*/refunds$"), partial)
    dialog.get_by_role("button", name="Refund $120.00").click()
    expect(dialog.locator(".field-error")).to_have_text(
        "Bank (ACH) payments can only be refunded in full ($120.00), not in part."
    )
    page.unroute(re.compile(r".*/refunds$"))

    # The whole payment refunds.
    dialog.get_by_role("button", name="Refund $120.00").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    refund = page.locator("table.transactions tbody tr").filter(has_text=f"{MINUS}$120.00")
    expect(refund).to_have_count(1)
    expect(refund.locator("td[data-label='Method']")).to_have_text("Bank (ACH)")
    expect(payment.get_by_role("button", name=re.compile("^Refund"))).to_have_count(0)

    # A bank refund is pending until the processor confirms it; then it counts.
    expect(refund.locator("td[data-label='Status']")).to_contain_text("Pending")
    events = requests.get(f"{local_stack.stripe_url}/_sandbox/events", timeout=30).json()
    refund_id = next(
        e["data"]["object"]["id"]
        for e in events
        if e["type"] == "refund.created" and e["data"]["object"]["payment_intent"] == intent
    )
    done = requests.post(
        f"{local_stack.stripe_url}/_sandbox/refunds/{refund_id}/succeed", json={}, timeout=30
    )
    assert done.status_code in (200, 201), done.text
    page.reload()
    expect(refund.locator("td[data-label='Status']")).to_contain_text("Succeeded")
    expect(payment.locator("td[data-label='Refunded']")).to_have_text("$120.00")
    staff.screenshot(page, "payment-link-ach")
    page.get_by_role("link", name="Invoices").click()
    # Clio never showed the payment, so there is nothing to record there either.
    expect(paid_gl_cell(page, bill)).to_have_text("$0.00")
    expect(page.locator(f"tr[data-bill-id='{bill['id']}'] .badge-warn")).to_have_count(0)
