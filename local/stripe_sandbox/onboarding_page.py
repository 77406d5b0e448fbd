"""The hosted Connect onboarding a person (or a browser test) clicks through:
`/setup/s/{account}/{token}`, the URL of an Account Link.

One step per page ("Business details", "Representative", "Bank account for payouts", "Review
and agree"), each a `<form method="post">` with test data filled in and a real `<button>`
("Continue", or "Agree and submit" on the last). Above the form, what Stripe still needs
(`requirements.currently_due`) shrinks as the steps are submitted. "Save and return" goes back
to the platform's `return_url` with the account left as it is.
"""

from __future__ import annotations

from html import escape

from local.stripe_sandbox.accounts import EXTRA, step_of
from local.stripe_sandbox.page import _document
from local.stripe_sandbox.params import Obj


def onboarding_page(account: Obj, link: Obj, step: int, action: str) -> str:
    title, _, fields = step_of(step)
    name = account["business_profile"].get("name") or account["id"]
    due = account["requirements"]["currently_due"]
    due_items = "\n".join(f"<li><code>{escape(field)}</code></li>" for field in due)
    inputs = "\n".join(
        f'<p><label>{escape(label)} <input name="{key}" value="{escape(value)}" required>'
        "</label></p>"
        for key, label, value in fields
    )
    last = step >= EXTRA - 1
    agree = (
        "<p>By submitting, you agree to the Stripe Connected Account Agreement.</p>\n"
        if last
        else ""
    )
    button = "Agree and submit" if last else "Continue"
    body = (
        f"<h1>Set up payments for {escape(str(name))}</h1>\n"
        f"<p>Step {min(step + 1, EXTRA)} of {EXTRA}: "
        f'<strong id="step-title">{escape(title)}</strong></p>\n'
        f'<section aria-label="Still needed"><h2>Still needed ({len(due)})</h2>\n'
        f'<ul id="currently-due">\n{due_items}\n</ul></section>\n'
        f'<form method="post" action="{escape(action)}">\n'
        f'<input type="hidden" name="step" value="{step}">\n{inputs}\n{agree}'
        f'<button type="submit">{button}</button>\n</form>\n'
        f'<p><a href="{escape(link["return_url"])}">Save and return</a></p>'
    )
    return _document(f"Stripe sandbox onboarding: {title}", body)
