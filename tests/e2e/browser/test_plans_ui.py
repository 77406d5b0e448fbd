"""A client sets up a payment plan on the pay page in a real browser: the installment amount,
monthly, card; Stripe's setup page saves the card; back on the pay page the plan shows its
installments, and the firm's API has it active on that card. Then the schedule charges the
first installment. A bank account needs the debit authorization accepted first."""

from __future__ import annotations

import re
import time

from playwright.sync_api import expect

from tests.e2e.browser.test_payments_ui import send_one_bill


def test_a_client_sets_up_a_plan_on_the_pay_page_and_the_first_installment_is_charged(
    staff, new_firm, mails, local_stack
):
    firm, clio = new_firm()
    bill, pay_url = send_one_bill(firm, clio, mails, 30_000)

    client = staff.client_page()
    client.goto(pay_url)
    plans = client.get_by_role("region", name="Pay in installments")
    expect(plans).to_be_visible()
    expect(plans.get_by_text(re.compile(r"Installments of at least \$50\.00"))).to_be_visible()

    # A bank account is not saved without the debit authorization.
    form = plans.get_by_role("form", name="Set up a payment plan")
    form.get_by_label("Installment amount").fill("100.00")
    form.get_by_label("Pay the installments by").select_option("ach")
    expect(form.get_by_text(re.compile(r"you authorize .* to debit it"))).to_be_visible()
    form.get_by_role("button", name="Set up payment plan").click()
    expect(form.get_by_role("alert")).to_have_text(re.compile("accept the debit authorization"))

    # By card: to Stripe's page, save the card, back to the pay page.
    form.get_by_label("Pay the installments by").select_option("card")
    form.get_by_role("button", name="Set up payment plan").click()
    expect(client).to_have_url(re.compile(r"/c/pay/cs_"))
    expect(client.get_by_role("heading", name="Save a payment method")).to_be_visible()
    client.get_by_role("button", name="Save card").click()
    expect(client).to_have_url(re.compile(r"/pay/[^/?]+\?plan=plan_"))
    summary = client.get_by_text(
        re.compile(r"Your payment plan \(active\): 3 installments of \$100\.00 every month")
    )
    expect(summary).to_be_visible()
    expect(summary).to_contain_text("paid by Visa ending 4242")
    expect(plans.get_by_role("listitem")).to_have_count(3)
    staff.screenshot(client, "pay-page-plan")

    plan_id = client.url.split("plan=")[1]
    plan = firm.get(f"/payment-plans/{plan_id}").json()
    assert plan["status"] == "active" and plan["bill_ids"] == [bill["id"]]

    assert local_stack.control("POST", "/_local/tick").status_code == 202
    client.reload()
    plans = client.get_by_role("region", name="Pay in installments")
    expect(plans.get_by_role("listitem").first).to_contain_text("$100.00 (paid)")
    deadline = time.monotonic() + 60
    while (
        next(i for i in firm.get("/invoices").json()["items"] if i["id"] == bill["id"])[
            "paid_gl_cents"
        ]
        != 10_000
    ):
        assert time.monotonic() < deadline
        time.sleep(0.2)
