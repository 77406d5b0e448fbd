"""A new firm's first envelope, walked in a real browser the way its first person would: the web
UI as the local stack serves it (its `/config.js` names the emulated Cognito pool; no dev
token), sign-up with the code emailed to the outbox, Get started (Clio through the sandbox's
OAuth redirects onto a Clio account of this test's own, the trust and the operating accounts
through the Stripe sandbox's onboarding page, sender, templates), then Invoices: sync, select a
bill, review and send it. It ends on what the person would check: the envelope says sent, the
client has the email with the bill's PDF and a pay link, and the audit trail names the send by
this person's email."""

from __future__ import annotations

import re
import uuid
from urllib.parse import urlencode

from playwright.sync_api import Route, expect

from tests.e2e.browser.test_onboarding_ui import onboard_with_stripe, step
from tests.e2e.browser.test_sign_in_ui import PASSWORD
from tests.e2e.conftest import ClioStaff


def test_a_new_firm_signs_up_onboards_and_sends_its_first_envelope(open_ui, local_stack):
    tag = uuid.uuid4().hex[:8]
    email = f"founder-{tag}@first-envelope.example"
    # The firm's Clio account, with a few bills in it before the firm ever connects.
    clio = ClioStaff(local_stack, f"first-{tag}")
    clients = [("Harbor Point Dental", 41_250), ("Ruth Alvarez", 12_500), ("Kestrel Ltd", 9_900)]
    bills = []
    for n, (name, cents) in enumerate(clients):
        address = f"client-{n}-{tag}@client.example"
        made = clio.create_bill(total_cents=cents, client={"name": name, "email": address})
        bills.append({"id": str(made["id"]), "number": made["number"], "email": address})

    page = open_ui("#/sign-in")
    # The UI runs in the mode the stack serves: Cognito, not a dev token.
    config = page.evaluate("window.BILLBRIDGE_CONFIG")
    assert config["auth"]["mode"] == "cognito", config

    # Sign-up: a firm and its first admin; the code comes by email (the local outbox).
    page.get_by_role("link", name="Create your firm's account").click()
    page.get_by_label("Firm name").fill("First Envelope LLP")
    page.get_by_label("Your email address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_text(f"We emailed a six-digit code to {email}.")).to_be_visible()
    mail = next(m for m in reversed(local_stack.outbox()) if m["to"] == [email])
    code = re.search(r"\b(\d{6})\b", mail["body"])
    assert code, mail
    page.get_by_label("Confirmation code").fill(code.group(1))
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_test_id("signed-in-as")).to_have_text(f"{email} · Admin")
    expect(page.get_by_role("heading", name="Get started")).to_be_visible()
    session = page.evaluate("JSON.parse(localStorage.getItem('billbridge.session'))")
    assert session["idToken"].count(".") == 2 and not session["idToken"].startswith("dev-")

    # Clio: the real OAuth redirects; the person approves as their own Clio account (the
    # sandbox's authorize endpoint picks the account from `sandbox_account`).
    def as_this_clio_account(route: Route) -> None:
        extra = urlencode({"sandbox_account": clio.account})
        route.continue_(url=f"{route.request.url}&{extra}")

    page.context.route(re.compile(r".*/oauth/authorize\?.*"), as_this_clio_account)
    step(page, "clio").get_by_role("button", name="Connect Clio").click()
    expect(page.get_by_role("status").filter(has_text="Clio is connected")).to_be_visible()
    page.goto(f"{local_stack.api_url}/#/onboarding")
    expect(step(page, "clio")).to_contain_text("Done")

    # Trust and operating accounts through the Stripe sandbox's onboarding page.
    expect(step(page, "trust_account")).to_have_attribute("aria-current", "step")
    onboard_with_stripe(page, "trust")
    expect(step(page, "trust_account")).to_contain_text("Done")
    onboard_with_stripe(page, "operating")
    expect(step(page, "operating_account")).to_contain_text("Done")

    # Sender name and reply-to, in Settings.
    expect(step(page, "sender")).to_have_attribute("aria-current", "step")
    step(page, "sender").get_by_role("link", name="Open Settings").click()
    page.get_by_label("Sender name").fill("First Envelope Billing")
    reply_to = f"billing-{tag}@first-envelope.example"
    page.get_by_label("Reply-to address").fill(reply_to)
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("main").get_by_text("Settings saved.")).to_be_visible()

    # Templates reviewed; done, then Invoices.
    page.get_by_role("link", name="Get started").click()
    expect(step(page, "sender")).to_contain_text("Done")
    expect(step(page, "templates")).to_have_attribute("aria-current", "step")
    step(page, "templates").get_by_role("button", name="Mark as reviewed").click()
    expect(step(page, "done")).to_contain_text("Everything is set up")
    step(page, "done").get_by_role("link", name="Go to Invoices").click()
    expect(page.get_by_role("heading", name="Invoices")).to_be_visible()

    # Sync, then the bills of this firm's Clio account are listed.
    page.get_by_role("button", name="Sync", exact=True).click()
    expect(page.get_by_text(re.compile(r"^Sync finished\."))).to_be_visible(timeout=120_000)
    rows = page.locator("table.invoices tbody tr")
    expect(rows).to_have_count(len(bills), timeout=60_000)

    # Select one bill, review its envelope and send it.
    first = bills[0]
    row = page.locator(f"tr[data-bill-id='{first['id']}']")
    row.get_by_role("checkbox").check()
    page.get_by_role("button", name="Review and send selected (1)").click()
    expect(page.get_by_role("heading", name="Review and send", level=1)).to_be_visible()
    panel = page.locator(".envelope-panel")
    expect(panel.get_by_role("heading", level=2)).to_have_text(
        re.compile(r"^Envelope 1 of 1: Harbor Point Dental")
    )
    expect(panel.get_by_text(first["email"])).to_be_visible()
    panel.get_by_role("button", name="Continue").click()
    panel.get_by_role("button", name="Send envelope now").click()

    # The envelope says sent.
    sent = page.locator("main").get_by_text(f"Envelope sent to {first['email']}.")
    expect(sent).to_be_visible(timeout=60_000)
    expect(page.get_by_text("1 envelope · 1 sent")).to_be_visible()

    # The client has the email: the bill's PDF attached and a pay link in it.
    (client_mail,) = [m for m in local_stack.outbox() if m["to"] == [first["email"]]]
    assert client_mail["attachments"] == [f"{first['number']}.pdf"], client_mail
    assert re.search(r"https?://\S+/pay/\S+", client_mail["body"]), client_mail["body"]
    # From the sender set in Settings; the client's reply goes to the firm's reply-to.
    assert client_mail["from"].startswith("First Envelope Billing <"), client_mail["from"]
    assert reply_to in (client_mail["reply_to"] or ""), client_mail

    # The audit trail shows the send, by this person's email.
    page.goto(f"{local_stack.api_url}/#/audit")
    expect(page.get_by_role("heading", name="Audit trail")).to_be_visible()
    page.get_by_label("What").select_option("envelope.sent")
    entry = page.get_by_role("row", name=re.compile("Sent an envelope"))
    expect(entry).to_have_count(1)
    expect(entry).to_contain_text(email)
    expect(entry).to_contain_text(first["email"])
