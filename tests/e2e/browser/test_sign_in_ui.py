"""Signing in for real in the browser: the web UI as the local stack serves it (its config.js
names the emulated user pool, no dev token), Cognito's own API for sign-in, sign-up with the
emailed code, token refresh, sign-out, and the screens and actions each role is offered."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

import requests
from playwright.sync_api import Page, expect

PASSWORD = "Browser-pass-1234"


def make_user(stack: Any, firm_id: str, role: str) -> str:
    email = f"{role}-{uuid.uuid4().hex[:8]}@{firm_id}.example"
    made = requests.post(
        f"{stack.api_url}/_local/users",
        json={"email": email, "password": PASSWORD, "firm_id": firm_id, "role": role},
        headers=stack.admin_headers,
        timeout=60,
    )
    assert made.status_code == 201, made.text
    return email


def sign_in(page: Page, email: str, password: str = PASSWORD) -> None:
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_given_a_staff_user_when_signing_in_then_their_work_is_offered_and_admin_actions_not(
    open_ui, local_stack
):
    firm = f"ui-{uuid.uuid4().hex[:8]}"
    email = make_user(local_stack, firm, "staff")
    page = open_ui("#/settings")
    # No session: the UI asks to sign in first, and comes back to Settings after.
    expect(page).to_have_url(re.compile(r"#/sign-in\?next="))
    sign_in(page, email)
    expect(page.get_by_role("heading", name="Settings")).to_be_visible()
    expect(page.get_by_test_id("signed-in-as")).to_have_text(f"{email} · Staff")
    # Staff read the settings but are not offered to save them, nor the admin screens.
    expect(page.get_by_text("Only an admin of your firm can change settings.")).to_be_visible()
    expect(page.get_by_role("button", name="Save settings")).to_have_count(0)
    expect(page.get_by_label("Firm name")).to_be_disabled()
    expect(page.get_by_role("link", name="Users")).to_be_hidden()
    expect(page.get_by_role("link", name="Audit")).to_be_hidden()
    page.goto(f"{local_stack.api_url}/#/users")
    expect(page.get_by_role("heading", name="Admins only")).to_be_visible()

    # The session survives a reload; the API is called with the ID token.
    page.goto(f"{local_stack.api_url}/#/invoices")
    page.reload()
    expect(page.get_by_test_id("signed-in-as")).to_have_text(f"{email} · Staff")
    stored = json.loads(page.evaluate("localStorage.getItem('billbridge.session')"))
    assert stored["idToken"].count(".") == 2 and stored["email"] == email

    # Sign out: the tokens are gone and the UI asks to sign in again.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate("localStorage.getItem('billbridge.session')") is None
    page.goto(f"{local_stack.api_url}/#/invoices")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_given_a_wrong_password_then_the_ui_says_so_and_stays_signed_out(open_ui, local_stack):
    email = make_user(local_stack, f"ui-{uuid.uuid4().hex[:8]}", "staff")
    page = open_ui()
    sign_in(page, email, "Not-the-password-1")
    expect(page.get_by_text("The email address or password is not right.")).to_be_visible()
    assert page.evaluate("localStorage.getItem('billbridge.session')") is None


def test_given_an_expiring_token_then_the_ui_refreshes_it_before_calling(open_ui, local_stack):
    email = make_user(local_stack, f"ui-{uuid.uuid4().hex[:8]}", "admin")
    page = open_ui()
    sign_in(page, email)
    expect(page.get_by_test_id("signed-in-as")).to_have_text(f"{email} · Admin")
    # The kept ID token is made unusable and marked as expiring: only a refresh with the
    # refresh token (Cognito's REFRESH_TOKEN_AUTH) can get the next screen its data.
    page.evaluate(
        """() => {
          const s = JSON.parse(localStorage.getItem('billbridge.session'));
          s.idToken = 'x.y.z'; s.expiresAt = Date.now() - 1000;
          localStorage.setItem('billbridge.session', JSON.stringify(s));
        }"""
    )
    page.goto(f"{local_stack.api_url}/#/users")
    expect(page.get_by_role("heading", name="Users")).to_be_visible()
    expect(page.get_by_role("cell", name=f"{email} You", exact=True)).to_be_visible()
    refreshed = json.loads(page.evaluate("localStorage.getItem('billbridge.session')"))
    assert refreshed["idToken"] != "x.y.z" and refreshed["expiresAt"] > time.time() * 1000


def test_given_an_admin_then_they_invite_a_user_and_read_it_in_the_audit_trail(
    open_ui, local_stack
):
    firm = f"ui-{uuid.uuid4().hex[:8]}"
    email = make_user(local_stack, firm, "admin")
    page = open_ui()
    sign_in(page, email)
    page.get_by_role("link", name="Users").click()
    expect(page.get_by_role("heading", name="Users")).to_be_visible()
    invitee = f"new-{uuid.uuid4().hex[:6]}@{firm}.example"
    page.get_by_label("Email address").fill(invitee)
    page.get_by_label("Role", exact=True).select_option("staff")
    page.get_by_role("button", name="Invite").click()
    expect(page.locator("#main").get_by_text(f"Invitation sent to {invitee}.")).to_be_visible()
    expect(page.get_by_role("row", name=re.compile(re.escape(invitee)))).to_contain_text("Invited")
    assert any(m["to"] == [invitee] for m in local_stack.outbox())

    page.get_by_role("link", name="Audit").click()
    expect(page.get_by_role("heading", name="Audit trail")).to_be_visible()
    row = page.get_by_role("row", name=re.compile("Invited a user"))
    expect(row).to_contain_text(email)
    expect(row).to_contain_text(f"{invitee} as staff.")
    page.get_by_label("What").select_option("settings.updated")
    expect(page.get_by_text("No loaded entry matches the filters.")).to_be_visible()


def test_given_a_new_firm_when_signing_up_then_the_emailed_code_confirms_and_signs_in(
    open_ui, local_stack
):
    email = f"founder-{uuid.uuid4().hex[:8]}@ui-signup.example"
    page = open_ui("#/sign-in")
    page.get_by_role("link", name="Create your firm's account").click()
    page.get_by_label("Firm name").fill("Browser Law LLP")
    page.get_by_label("Your email address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_text(f"We emailed a six-digit code to {email}.")).to_be_visible()
    mail = next(m for m in reversed(local_stack.outbox()) if m["to"] == [email])
    code = re.search(r"\b(\d{6})\b", mail["body"])
    assert code, mail
    page.get_by_label("Confirmation code").fill("000000" if code.group(1) != "000000" else "111111")
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_text("That code is not the one we emailed")).to_be_visible()
    page.get_by_label("Confirmation code").fill(code.group(1))
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_test_id("signed-in-as")).to_have_text(f"{email} · Admin")
    # A new firm starts on its onboarding checklist.
    expect(page.get_by_role("heading", name="Get started")).to_be_visible()
    expect(page.get_by_role("link", name="Users")).to_be_visible()
    page.get_by_role("link", name="Settings", exact=True).click()
    expect(page.get_by_label("Firm name")).to_have_value("Browser Law LLP")


def test_given_your_account_when_turning_on_two_step_sign_in_then_sign_in_asks_for_the_code(
    open_ui, local_stack
):
    from local.cognito import totp_code

    email = make_user(local_stack, f"ui-{uuid.uuid4().hex[:8]}", "staff")
    page = open_ui("#/account")
    sign_in(page, email)
    expect(page.get_by_role("heading", name="Your account")).to_be_visible()
    expect(page.get_by_test_id("totp-status")).to_have_text(re.compile(r"^Off: "))
    page.get_by_role("button", name="Turn on two-step sign-in").click()
    secret = page.get_by_test_id("totp-secret").inner_text().strip()
    assert re.fullmatch(r"[A-Z2-7]{32}", secret), secret
    uri = page.get_by_test_id("totp-uri").get_attribute("href") or ""
    assert uri.startswith("otpauth://totp/BillBridge%3A") and f"secret={secret}" in uri
    # A wrong code is refused in a sentence; the code the secret gives now turns it on.
    code = totp_code(secret, time.time())
    page.get_by_label("Code from your authenticator app").fill(f"{(int(code) + 1) % 1_000_000:06d}")
    page.get_by_role("button", name="Turn on", exact=True).click()
    expect(page.get_by_text("That code is not right.")).to_be_visible()
    page.get_by_label("Code from your authenticator app").fill(totp_code(secret, time.time()))
    page.get_by_role("button", name="Turn on", exact=True).click()
    expect(page.get_by_test_id("totp-status")).to_have_text(re.compile(r"^On: "))

    # Signed out, signing in again asks for the code after the password.
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, email)
    page.get_by_label("Code from your authenticator app").fill(totp_code(secret, time.time()))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("signed-in-as")).to_have_text(f"{email} · Staff")
    page.get_by_role("link", name="Your account").click()
    expect(page.get_by_test_id("totp-status")).to_have_text(re.compile(r"^On: "))

    # Turned off, the password alone signs in again.
    page.get_by_role("button", name="Turn off two-step sign-in").click()
    expect(page.get_by_test_id("totp-status")).to_have_text(re.compile(r"^Off: "))
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, email)
    expect(page.get_by_test_id("signed-in-as")).to_have_text(f"{email} · Staff")
    page.get_by_role("link", name="Your account").click()
    expect(page.get_by_test_id("totp-status")).to_have_text(re.compile(r"^Off: "))
