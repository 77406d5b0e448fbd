"""Real-browser fixtures: Debian's Chromium driven by Playwright against the local stack.

One headless browser per test session; each test gets a fresh context (its own storage), in a
fixed locale and time zone so money and dates read the same on every machine. The web UI is
signed in as a firm by swapping `config.js`, exactly as a deployment configures it.
There is deliberately no skip: a machine without Chromium fails these tests, saying what to install.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

try:
    from playwright.sync_api import (
        Browser,
        BrowserContext,
        Page,
        Playwright,
        ViewportSize,
        expect,
        sync_playwright,
    )
except ImportError:  # reported by the `playwright` fixture, so the rest of the suite still runs
    sync_playwright = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from tests.e2e.conftest import LocalStack

CHROMIUM = os.environ.get("BILLBRIDGE_CHROMIUM", "/usr/bin/chromium")
# Test artifacts (kept out of git); the README's two pictures are refreshed only when asked
# (UPDATE_DOCS_SCREENSHOTS=1), so a test run leaves the tree clean.
SCREENSHOTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "screenshots"
UPDATE_DOCS = os.environ.get("UPDATE_DOCS_SCREENSHOTS") == "1"
DOCS_SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"
VIEWPORT: ViewportSize = {"width": 1360, "height": 900}
CLIENT_VIEWPORT: ViewportSize = {"width": 430, "height": 900}

# Sends and syncs run through Step Functions and Lambda on the emulator: give them time.
if sync_playwright is not None:
    expect.set_options(timeout=20_000)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives the web UI in a real browser")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = str(Path(__file__).resolve().parent)
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    if sync_playwright is None:
        pytest.fail(
            "Playwright for Python is not installed: `pip install playwright` (in "
            "requirements-dev.txt); do not run `playwright install`, the tests use Debian's "
            "Chromium.",
            pytrace=False,
        )
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        found = shutil.which("chromium")
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}"
            + (f" (there is one at {found}: set BILLBRIDGE_CHROMIUM)" if found else "")
            + ". The browser tests need Debian's Chromium: `apt-get install -y chromium`"
            " (Playwright's own download is not used).",
            pytrace=False,
        )
    launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
    yield launched
    launched.close()


class Staff:
    """Opens the web UI signed in as one firm; takes screenshots."""

    def __init__(self, browser: Browser, stack: LocalStack, request: pytest.FixtureRequest) -> None:
        self.browser = browser
        self.stack = stack
        self.request = request
        self.contexts: list[BrowserContext] = []
        self.pages: list[Page] = []

    def open(self, firm_id: str = "demo", route: str = "#/invoices") -> Page:
        context = self.browser.new_context(
            viewport=VIEWPORT, locale="en-US", timezone_id="UTC", accept_downloads=True
        )
        self.contexts.append(context)
        config = {"apiBase": "", "auth": {"mode": "dev", "firmId": firm_id}}
        script = f"window.BILLBRIDGE_CONFIG = {json.dumps(config)};\n"
        context.route(
            re.compile(r".*/config\.js(\?.*)?$"),
            lambda route: route.fulfill(status=200, content_type="text/javascript", body=script),
        )
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.bb_errors = errors  # type: ignore[attr-defined]
        self.pages.append(page)
        page.goto(f"{self.stack.api_url}/{route}")
        return page

    def client_page(self) -> Page:
        """A browser of the firm's client: no firm login, a phone-ish window."""
        context = self.browser.new_context(
            viewport=CLIENT_VIEWPORT, locale="en-US", timezone_id="UTC"
        )
        self.contexts.append(context)
        page = context.new_page()
        self.pages.append(page)
        return page

    def screenshot(
        self, page: Page, name: str, *, docs: bool = False, full_page: bool = True
    ) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)
        if docs and UPDATE_DOCS:
            DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(DOCS_SCREENSHOTS / f"{name}.png"), full_page=full_page)

    def close(self) -> None:
        failed = self.request.node.stash.get(_FAILED, False)
        for n, page in enumerate(self.pages):
            if failed and not page.is_closed():
                SCREENSHOTS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(SCREENSHOTS / f"FAILED-{self.request.node.name}-{n}.png"))
            errors = getattr(page, "bb_errors", [])
            assert not errors, f"uncaught errors in the page: {errors}"
        for context in self.contexts:
            context.close()


@pytest.fixture
def staff(
    browser: Browser, local_stack: LocalStack, request: pytest.FixtureRequest
) -> Iterator[Staff]:
    opened = Staff(browser, local_stack, request)
    try:
        yield opened
    finally:
        opened.close()


def outbox(stack: LocalStack) -> list[dict]:
    return stack.outbox()


def mails_to(stack: LocalStack, address: str) -> list[dict]:
    return [m for m in outbox(stack) if m["to"] == [address]]


@pytest.fixture
def mails(local_stack: LocalStack) -> Callable[[str], list[dict]]:
    return lambda address: mails_to(local_stack, address)


@pytest.fixture
def open_ui(browser: Browser, local_stack: LocalStack) -> Iterator[Callable[..., Page]]:
    """The web UI exactly as the local stack serves it (its own config.js: the emulated
    Cognito pool, no dev token), in fresh contexts; no page may throw."""
    contexts: list[BrowserContext] = []
    pages: list[Page] = []

    def open_page(route: str = "#/invoices") -> Page:
        context = browser.new_context(viewport=VIEWPORT, locale="en-US", timezone_id="UTC")
        contexts.append(context)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.bb_errors = errors  # type: ignore[attr-defined]
        pages.append(page)
        page.goto(f"{local_stack.api_url}/{route}")
        return page

    yield open_page
    for page in pages:
        assert not getattr(page, "bb_errors", []), page.bb_errors  # type: ignore[attr-defined]
    for context in contexts:
        context.close()
