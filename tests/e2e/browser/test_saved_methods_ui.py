"""A client saves their card on the pay page in a real browser (phone width): ticks "Save this
card or bank account", pays part of the bill on Stripe's page, comes back and pays more with
"Pay with Visa •••• 4242" without Stripe's page, then forgets the card."""

from __future__ import annotations

import re
import time

from playwright.sync_api import expect

from tests.e2e.browser.test_payments_ui import send_one_bill


def test_a_client_saves_a_card_pays_with_it_later_and_forgets_it(staff, new_firm, mails):
    firm, clio = new_firm()
    bill, pay_url = send_one_bill(firm, clio, mails, 30_000)

    client = staff.client_page()
    client.goto(pay_url)
    expect(client.get_by_role("heading", name="Pay your bills")).to_be_visible()
    client.get_by_label("Part of it").check()
    client.get_by_label(re.compile("^Amount to pay")).fill("50.00")
    save = client.get_by_role(
        "checkbox", name=re.compile(r"^Save this card or bank account for future payments to ")
    )
    expect(save).not_to_be_checked()
    # What ticking it allows is read with it (aria-describedby), and says how to undo it.
    expect(save).to_have_accessible_description(re.compile(r"you can forget it on your payment"))
    client.get_by_label("Bank account (ACH)").check()
    expect(save).to_have_accessible_description(re.compile(r"you authorize .* to debit it"))
    client.get_by_role("radio", name=re.compile(r"^Card")).check()
    save.check()
    client.get_by_role("button", name="Pay $50.00 by card").click()
    expect(client).to_have_url(re.compile(r"/c/pay/cs_"))
    client.get_by_role("button", name="Pay by card").click()
    expect(
        client.get_by_role("heading", name="Thank you: your payment was received", level=1)
    ).to_be_visible()

    # Back on the pay page (the webhook keeps the card): "Pay with Visa •••• 4242", chosen.
    deadline = time.monotonic() + 60
    while True:
        client.goto(pay_url)
        saved = client.get_by_role("radio", name="Pay with Visa ending 4242")
        if saved.count():
            break
        assert time.monotonic() < deadline, "the saved card never showed"
        time.sleep(0.3)
    expect(saved).to_be_checked()
    expect(client.get_by_text("Visa \u2022\u2022\u2022\u2022 4242")).to_be_visible()
    expect(client.get_by_role("checkbox", name=re.compile("^Save this card"))).to_be_hidden()
    width = client.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert width <= 0, "the pay page scrolls sideways at phone width"
    staff.screenshot(client, "pay-page-saved-card")
    client.get_by_label("Part of it").check()
    client.get_by_label(re.compile("^Amount to pay")).fill("100.00")
    client.get_by_role("button", name="Pay $100.00 with Visa ending 4242").click()
    expect(client.get_by_role("status").filter(has_text="Paid $100.00")).to_have_text(
        re.compile(r"Paid \$100\.00 with Visa ending 4242\. A receipt is on its way")
    )
    deadline = time.monotonic() + 60
    while (
        next(i for i in firm.get("/invoices").json()["items"] if i["id"] == bill["id"])[
            "paid_gl_cents"
        ]
        != 15_000
    ):
        assert time.monotonic() < deadline
        time.sleep(0.2)

    # Forget it: a sentence says so, and it is no longer offered, here or after a reload.
    client.get_by_role("button", name="Forget Visa ending 4242").click()
    expect(
        client.get_by_text(
            "Visa ending 4242 is forgotten: it will not be offered or charged again."
        )
    ).to_be_visible()
    expect(client.get_by_role("radio", name="Pay with Visa ending 4242")).to_have_count(0)
    expect(client.get_by_role("radio", name=re.compile(r"^Card"))).to_be_checked()
    client.reload()
    expect(client.get_by_role("heading", name="Pay your bills")).to_be_visible()
    expect(client.get_by_role("radio", name="Pay with Visa ending 4242")).to_have_count(0)
