"""Get started (the onboarding checklist) in a real browser, on the local stack: a new firm
connects Clio, onboards its trust account by clicking through the Stripe sandbox's hosted
onboarding and its operating account the same way, sets its sender in Settings, marks the
templates reviewed, and goes to Invoices. Each step turns done from the real state, and the
checklist remembers where the person is when they come back."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import Page, expect


def step(page: Page, step_id: str):
    return page.locator(f'li[data-step="{step_id}"]')


def onboard_with_stripe(page: Page, account: str) -> None:
    """Click through Stripe's hosted onboarding (the sandbox), back to Get started."""
    page.get_by_role("button", name=f"Set up the {account} account with Stripe").click()
    expect(page.get_by_text("Stripe sandbox — test mode")).to_be_visible()
    still_needed = []
    for _ in range(3):
        heading = page.get_by_role("heading", name=re.compile(r"^Still needed"))
        still_needed.append(heading.inner_text())
        page.get_by_role("button", name="Continue").click()
    page.get_by_role("button", name="Agree and submit").click()
    counts = [int(re.search(r"\((\d+)\)", text)[1]) for text in still_needed]  # type: ignore[index]
    assert counts == sorted(counts, reverse=True) and len(set(counts)) == 3
    expect(page.get_by_role("heading", name="Get started")).to_be_visible()
    ready = page.get_by_text(f"The {account} account is ready to take payments.")
    expect(ready.first).to_be_visible()


def test_a_new_firm_walks_onboarding_from_clio_to_invoices(staff, local_stack):
    firm_id = f"e2e-{uuid.uuid4().hex[:10]}"
    page = staff.open(firm_id, "#/onboarding")
    expect(page.get_by_role("heading", name="Get started")).to_be_visible()
    expect(step(page, "clio")).to_have_attribute("aria-current", "step")
    expect(step(page, "trust_account")).to_contain_text("has not been connected to Stripe yet")
    staff.screenshot(page, "onboarding-start", docs=True)

    # Clio: the real OAuth redirects (the sandbox approves as its demo account).
    step(page, "clio").get_by_role("button", name="Connect Clio").click()
    expect(page.get_by_role("status").filter(has_text="Clio is connected")).to_be_visible()
    page.goto(f"{local_stack.api_url}/#/onboarding")
    expect(step(page, "clio")).to_contain_text("Done")
    expect(step(page, "trust_account")).to_have_attribute("aria-current", "step")

    onboard_with_stripe(page, "trust")
    expect(step(page, "trust_account")).to_contain_text("Done")
    onboard_with_stripe(page, "operating")
    expect(step(page, "operating_account")).to_contain_text("Done")
    expect(step(page, "sender")).to_have_attribute("aria-current", "step")
    expect(step(page, "sender")).to_contain_text("is verified in SES")

    # Sender name and reply-to, in Settings.
    step(page, "sender").get_by_role("link", name="Open Settings").click()
    page.get_by_label("Sender name").fill("Demo Billing")
    page.get_by_label("Reply-to address").fill("billing@firm.example")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text(re.compile("saved", re.I)).first).to_be_visible()

    # Back later: the checklist opens where the person left off.
    page.get_by_role("link", name="Get started").click()
    expect(step(page, "sender")).to_contain_text("Done")
    expect(step(page, "templates")).to_have_attribute("aria-current", "step")
    step(page, "templates").get_by_role("button", name="Mark as reviewed").click()
    expect(step(page, "templates")).to_contain_text("Done")
    expect(step(page, "done")).to_contain_text("Everything is set up")
    page.reload()
    expect(step(page, "done")).to_have_attribute("aria-current", "step")
    expect(step(page, "templates")).to_contain_text("Done")
    staff.screenshot(page, "onboarding-done", docs=True)

    step(page, "done").get_by_role("link", name="Go to Invoices").click()
    expect(page.get_by_role("heading", name="Invoices")).to_be_visible()


def test_an_expired_stripe_link_sends_the_person_back_and_a_new_one_opens(staff):
    """Stripe sends the person to refresh_url when a link expired or was used: Get started
    asks for a new Account Link and opens it at once, on the same account."""
    firm_id = f"e2e-{uuid.uuid4().hex[:10]}"
    page = staff.open(firm_id, "#/onboarding")
    step(page, "trust_account").get_by_role(
        "button", name="Set up the trust account with Stripe"
    ).click()
    expect(page.get_by_role("button", name="Continue")).to_be_visible()
    first = page.url
    page.get_by_role("button", name="Continue").click()  # one step done
    expect(page.get_by_text("Step 2 of 4")).to_be_visible()

    page.goto(f"{staff.stack.api_url}/#/onboarding?stripe=refresh&account=trust")

    expect(page.get_by_text("Step 2 of 4")).to_be_visible()  # the same account, where it was
    assert page.url != first and page.url.split("/")[-2] == first.split("/")[-2]
