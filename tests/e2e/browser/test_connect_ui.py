"""Connecting Clio from the web UI (C1): a firm that has not connected sees a banner whose
button walks the real OAuth redirects (the Clio sandbox approves at once) and comes back
connected, the banner naming the Clio account and user. The connect cookie set on the JSON
answer of GET /clio/connect is what lets the callback accept the browser's return."""

from __future__ import annotations

import uuid

from playwright.sync_api import expect


def test_a_firm_without_clio_connects_from_the_banner(staff, local_stack):
    from tests.e2e.conftest import Firm

    firm_id = f"e2e-{uuid.uuid4().hex[:10]}"
    page = staff.open(firm_id)
    banner = page.get_by_role("region", name="Clio connection")
    expect(banner).to_contain_text("Connect your Clio account")
    staff.screenshot(page, "clio-not-connected")

    page.get_by_role("button", name="Connect Clio").click()

    # The sandbox's authorize page approves as its `demo` account: the banner says so.
    connected = page.get_by_role("status").filter(has_text="Clio is connected")
    expect(connected).to_contain_text("the Clio account Demo Law LLP, as Demo Admin")
    expect(page.get_by_role("region", name="Clio connection")).to_have_count(0)
    staff.screenshot(page, "clio-connected")
    status = Firm(local_stack, firm_id).get("/clio/status").json()
    assert (status["status"], status["clio_account_name"]) == ("connected", "Demo Law LLP")
