"""Invoices in a real browser (C2, C3, L1-L4): the demo firm's bills as the API lists them,
synced on view and on demand, filtered by Clio status, paged, and selected. Read-only: nothing
here changes the demo firm."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

BALANCE = "awaiting_payment"
DEFAULT = "awaiting_payment,paid"


def ids_on_page(page: Page) -> list[str]:
    return page.locator("table.invoices tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.billId)"
    )


def api_page(firm, states: str, size: int, cursor: str | None = None) -> dict:
    params = {"states": states, "page_size": size}
    if cursor:
        params["cursor"] = cursor
    answer = firm.get("/invoices", **params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def with_balance(items: list[dict]) -> list[dict]:
    return [
        i
        for i in items
        if i["state"] == BALANCE and i["outstanding_clio_cents"] > 0 and i["client"]["email"]
    ]


def test_invoices_sync_filter_pages_and_select_all_with_a_balance(staff, local_stack):
    from tests.e2e.conftest import Firm

    demo = Firm(local_stack, "demo")
    page = staff.open("demo")

    # Opening Invoices syncs (C2) and says when; the default filter is the firm's.
    expect(page.get_by_role("heading", name="Invoices", level=1)).to_be_visible()
    expect(page.get_by_text(re.compile(r"^Synced at "))).to_be_visible()
    expect(page.locator("summary")).to_have_text("Clio Status: Awaiting payment, Paid")
    first = api_page(demo, DEFAULT, 25)
    expect(page.locator("table.invoices tbody tr")).to_have_count(len(first["items"]))
    assert ids_on_page(page) == [i["id"] for i in first["items"]]
    bill = first["items"][0]
    row = page.locator(f"tr[data-bill-id='{bill['id']}']")
    expect(row.get_by_role("link", name=f"{bill['number']} in Clio")).to_have_attribute(
        "href", bill["clio_url"]
    )
    expect(row.get_by_role("link", name=f"{bill['number']} in Clio")).to_have_attribute(
        "target", "_blank"
    )
    expect(row.locator("td[data-label='Client']")).to_have_text(bill["client"]["name"])
    total = f"${bill['total_cents'] // 100:,}.{bill['total_cents'] % 100:02d}"
    expect(row.locator("td[data-label='Total']")).to_have_text(total)

    # The Sync button shows that it is running, then the list again (C3).
    sync = page.get_by_role("button", name=re.compile("^Sync"))
    sync.click()
    expect(sync).to_have_text("Syncing…")
    expect(sync).to_be_disabled()
    expect(sync).to_have_text("Sync")
    expect(sync).to_be_enabled()
    expect(page.get_by_text(re.compile(r"^Synced at "))).to_be_visible()

    # The Clio Status filter offers every state; adding one shows its bills (L1).
    page.locator("summary").click()
    for label in ("Draft", "Awaiting approval", "Awaiting payment", "Paid", "Void", "Deleted"):
        expect(page.get_by_role("checkbox", name=label, exact=True)).to_be_visible()
    page.get_by_role("checkbox", name="Void", exact=True).check()
    expect(page.locator("summary")).to_have_text("Clio Status: Awaiting payment, Paid, Void")
    everything = api_page(demo, "awaiting_payment,paid,void", 25)
    expect(page.locator("table.invoices tbody tr").first).to_be_visible()
    expect(page.locator("table.invoices .badge", has_text="Void").first).to_be_visible()
    expect(page.locator("table.invoices tbody tr")).to_have_count(len(everything["items"]))
    # Back to the default, from the keyboard.
    page.get_by_role("checkbox", name="Void", exact=True).focus()
    page.keyboard.press("Space")
    page.keyboard.press("Escape")
    expect(page.locator("summary")).to_have_text("Clio Status: Awaiting payment, Paid")
    expect(page.locator("summary")).to_be_focused()

    # Records per page and cursor paging, forwards and back (L3).
    page.get_by_label("Records per page").select_option("10")
    one = api_page(demo, DEFAULT, 10)
    two = api_page(demo, DEFAULT, 10, one["next_cursor"])
    expect(page.locator("table.invoices tbody tr")).to_have_count(10)
    assert ids_on_page(page) == [i["id"] for i in one["items"]]
    expect(page.get_by_role("button", name="Previous")).to_be_disabled()
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_text("Page 2", exact=True)).to_be_visible()
    expect(page.locator(f"tr[data-bill-id='{two['items'][0]['id']}']")).to_be_visible()
    assert ids_on_page(page) == [i["id"] for i in two["items"]]
    page.get_by_role("button", name="Previous").click()
    expect(page.get_by_text("Page 1", exact=True)).to_be_visible()
    expect(page.locator(f"tr[data-bill-id='{one['items'][0]['id']}']")).to_be_visible()
    assert ids_on_page(page) == [i["id"] for i in one["items"]]

    # The header checkbox selects every bill with a balance on the visible page, and says so (L4).
    expected = with_balance(one["items"])
    header = page.get_by_role("checkbox", name="Select every bill with a balance on this page")
    header.check()
    expect(
        page.get_by_text(f"{len(expected)} bills with a balance selected on this page")
    ).to_be_visible()
    expect(
        page.get_by_role("button", name=f"Review and send selected ({len(expected)})")
    ).to_be_visible()
    for item in one["items"]:
        box = page.get_by_role(
            "checkbox", name=re.compile(rf"^Select {re.escape(item['number'])} ")
        )
        if item in expected:
            expect(box).to_be_checked()
        else:
            expect(box).not_to_be_checked()
    staff.screenshot(page, "invoices", docs=True)

    # One bill off again: the header box is now partly checked.
    page.get_by_role(
        "checkbox", name=re.compile(rf"^Select {re.escape(expected[0]['number'])} ")
    ).uncheck()
    expect(page.get_by_text(f"{len(expected) - 1} bills selected")).to_be_visible()
    assert header.evaluate("box => box.indeterminate") is True

    # Phone width: the rows become cards and nothing scrolls sideways.
    page.set_viewport_size({"width": 390, "height": 844})
    expect(
        page.get_by_role("checkbox", name="Select every bill with a balance on this page")
    ).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    staff.screenshot(page, "invoices-phone", full_page=False)
