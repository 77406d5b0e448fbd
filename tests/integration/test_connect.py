"""Connecting Clio (C1) through the real redirects, on moto with the Clio sandbox over HTTP:
the state is bound to the browser that started the connect, used once, and the firm sees which
Clio account and user it is connected to (finding 3 of issue 9)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import requests

from local.clio_sandbox.seed import seed_many

COOKIE = "billbridge_clio_connect"


def _start(stack, firm_id: str, **headers: str) -> tuple[requests.Session, requests.Response]:
    """Firm staff press Connect Clio in their browser (a cookie jar of its own)."""
    browser = requests.Session()
    answer = browser.get(
        f"{stack.api.url}/clio/connect",
        headers={"Authorization": f"Bearer dev-{firm_id}", **headers},
        allow_redirects=False,
        timeout=30,
    )
    assert answer.status_code in (200, 302), answer.text
    return browser, answer


def _approve(stack, authorize_url: str, clio_account: str, browser) -> requests.Response:
    """A user of `clio_account` approves in `browser`; Clio redirects it to our callback."""
    approved = browser.get(
        f"{authorize_url}&sandbox_account={clio_account}", allow_redirects=False, timeout=30
    )
    assert approved.status_code == 302, approved.text
    return browser.get(approved.headers["Location"], allow_redirects=False, timeout=60)


def _status(stack, firm_id: str) -> dict:
    return stack.firm(firm_id).get(f"{stack.api.url}/clio/status", timeout=30).json()


def test_given_a_firms_connect_url_approved_in_another_browser_then_refused_and_nothing_connects(
    inproc,
):
    seed_many(inproc.clio.state, "victim-v", 3, 1)
    _, start = _start(inproc, "firm-c")
    # The authorize URL reaches a user of another Clio account, who approves it in their own
    # browser: it holds no cookie of firm C's connect.
    victims_browser = requests.Session()

    answer = _approve(inproc, start.headers["Location"], "victim-v", victims_browser)

    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert (error["code"], error["field"]) == ("clio_connect_other_browser", "state")
    assert _status(inproc, "firm-c")["status"] == "not_connected"


def test_given_a_used_state_when_replayed_with_a_new_code_then_refused_and_the_connection_stays(
    inproc,
):
    browser, start = _start(inproc, "firm-r")
    cookie = browser.cookies.get(COOKIE)
    assert _approve(inproc, start.headers["Location"], "firm-r", browser).status_code == 302
    connected = _status(inproc, "firm-r")
    # The same authorize URL approved again by another account, the cookie value kept.
    replayer = requests.Session()
    replayer.cookies.set(COOKIE, cookie, path="/clio/callback")

    answer = _approve(inproc, start.headers["Location"], "other-account", replayer)

    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == "clio_connect_used"
    assert _status(inproc, "firm-r") == connected


def test_given_a_connect_then_its_answer_sets_an_httponly_lax_cookie_for_the_callback_only(inproc):
    for headers in ({}, {"Accept": "application/json"}):
        _, answer = _start(inproc, "firm-cookie", **headers)

        set_cookie = answer.headers["Set-Cookie"]
        assert set_cookie.startswith(f"{COOKIE}=")
        attributes = {part.strip().split("=")[0].lower() for part in set_cookie.split(";")}
        assert {"httponly", "samesite", "path", "max-age"} <= attributes
        assert "SameSite=Lax" in set_cookie and "Path=/clio/callback" in set_cookie
        assert "secure" not in attributes  # the local stack is http; Secure where https
        max_age = int(set_cookie.split("Max-Age=")[1].split(";")[0])
        assert 0 < max_age <= 15 * 60
        # The state in Clio's authorize URL does not carry the cookie's value.
        url = answer.json()["authorize_url"] if headers else answer.headers["Location"]
        (state,) = parse_qs(urlsplit(url).query)["state"]
        assert set_cookie.split(";")[0].split("=", 1)[1] not in state


def test_given_a_connect_then_status_names_the_clio_account_and_user_and_who_connected(inproc):
    browser, start = _start(inproc, "firm-who")

    assert _approve(inproc, start.headers["Location"], "acme-legal", browser).status_code == 302

    status = _status(inproc, "firm-who")
    clio = inproc.clio.state.accounts["acme-legal"]
    assert status["status"] == "connected"
    assert (status["clio_account_id"], status["clio_account_name"]) == (
        str(clio.id),
        "Acme Legal Law LLP",
    )
    assert (status["clio_user_id"], status["clio_user_name"]) == (
        str(clio.user_id),
        "Acme Legal Admin",
    )
    assert status["clio_user_email"] == "admin@acme-legal.example"
    assert status["connected_by"] == {"user_id": "dev-user-firm-who", "email": None}
