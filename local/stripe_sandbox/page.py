"""The hosted checkout page a person (or a browser test) clicks through: `/c/pay/{session}`.

One `<form method="post">` per choice, each a real `<button>` named exactly "Pay by card",
"Pay by bank" or "Decline card", with hidden `method` and `outcome` inputs; a "Cancel" link back
to the session's cancel_url. Closed sessions get a page saying so instead of the buttons.
"""

from __future__ import annotations

from html import escape

from local.stripe_sandbox.params import Obj, dollars

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 32rem; margin: 2rem auto; padding: 0 1rem; }
.banner { background: #ffde92; color: #5c3b00; padding: .5rem 1rem; border-radius: .25rem; }
table { width: 100%; border-collapse: collapse; margin: 1rem 0; }
td, th { padding: .4rem 0; text-align: left; } td.amount, th.amount { text-align: right; }
tfoot th { border-top: 1px solid #ccc; }
form { display: inline; }
button { font-size: 1rem; padding: .6rem 1rem; margin: .25rem .25rem 0 0; }
.error { color: #a00; font-weight: bold; }
"""

# (button name, method, outcome, the session's payment method type it needs)
_BUTTONS = (
    ("Pay by card", "card", "succeeded", "card"),
    ("Pay by bank", "ach", "succeeded", "us_bank_account"),
    ("Decline card", "card", "failed", "card"),
)


def _document(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        '<p class="banner" role="note"><strong>Stripe sandbox — test mode</strong>: '
        "no real money moves.</p>\n"
        f"<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


# `mode=setup`: (button name, method, test card token or "", payment method type it needs)
_SETUP_BUTTONS = (
    ("Save card", "card", "", "card"),
    ("Save bank account", "ach", "", "us_bank_account"),
    ("Save a card that will be declined", "card", "pm_card_chargeCustomerFail", "card"),
    ("Save a card that needs authentication", "card", "pm_card_authenticationRequired", "card"),
)


def setup_page(session: Obj) -> str:
    """A `mode=setup` session: the client saves a card or bank account; nothing is charged.
    For a bank account Stripe's page shows the debit authorization (the mandate) it records."""
    action = f"/c/pay/{escape(session['id'])}"
    buttons = "\n".join(
        f'<form method="post" action="{action}">'
        f'<input type="hidden" name="method" value="{method}">'
        f'<input type="hidden" name="test_method" value="{test}">'
        f'<button type="submit">{name}</button></form>'
        for name, method, test, needs in _SETUP_BUTTONS
        if needs in session["payment_method_types"]
    )
    mandate = ""
    if "us_bank_account" in session["payment_method_types"]:
        mandate = (
            "<p>By saving your bank account you authorize the business to debit it for the "
            "payments you agreed to, and to credit it to correct erroneous debits, until you "
            "revoke this authorization.</p>\n"
        )
    cancel = (
        f'<p><a href="{escape(session["cancel_url"])}">Cancel</a></p>'
        if session.get("cancel_url")
        else ""
    )
    body = (
        "<h1>Save a payment method</h1>\n<p>Nothing is charged now.</p>\n"
        f'{mandate}<div role="group" aria-label="Payment method">\n{buttons}\n</div>\n{cancel}'
    )
    return _document("Stripe sandbox checkout", body)


def checkout_page(session: Obj, items: list[Obj], declined: str | None = None) -> str:
    if session.get("mode") == "setup":
        return setup_page(session)
    rows = "\n".join(
        f"<tr><td>{escape(str(item['name']))}</td><td>{item['quantity']}</td>"
        f'<td class="amount">{dollars(item["quantity"] * item["unit_amount"])}</td></tr>'
        for item in items
    )
    action = f"/c/pay/{escape(session['id'])}"
    buttons = "\n".join(
        f'<form method="post" action="{action}">'
        f'<input type="hidden" name="method" value="{method}">'
        f'<input type="hidden" name="outcome" value="{outcome}">'
        f'<button type="submit">{name}</button></form>'
        for name, method, outcome, needs in _BUTTONS
        if needs in session["payment_method_types"]
    )
    alert = ""
    if declined == "card":
        alert = '<p class="error" role="alert">Your card was declined. Try another card.</p>\n'
    elif declined == "bank":
        alert = '<p class="error" role="alert">Your bank account could not be verified.</p>\n'

    cancel = (
        f'<p><a href="{escape(session["cancel_url"])}">Cancel</a></p>'
        if session.get("cancel_url")
        else ""
    )
    currency = escape(str(session["currency"]).upper())
    body = (
        f"<h1>Pay {dollars(session['amount_total'])}</h1>\n{alert}"
        '<table aria-label="Items">\n<thead><tr><th scope="col">Item</th><th scope="col">Qty</th>'
        '<th scope="col" class="amount">Amount</th></tr></thead>\n'
        f"<tbody>\n{rows}\n</tbody>\n"
        f'<tfoot><tr><th scope="row" colspan="2">Total ({currency})</th>'
        f'<th class="amount" id="total">{dollars(session["amount_total"])}</th></tr></tfoot>\n'
        f'</table>\n<div role="group" aria-label="Payment">\n{buttons}\n</div>\n{cancel}'
    )
    return _document("Stripe sandbox checkout", body)


def closed_page(session: Obj) -> tuple[int, str]:
    """The page for a session that can no longer be paid: 410 expired, 409 already complete."""
    if session["status"] == "expired":
        status, heading, text = 410, "This checkout session has expired", "Ask for a new link."
    else:
        status, heading, text = 409, "This payment is complete", "Nothing more to pay here."
    back = session.get("success_url") if session["status"] == "complete" else None
    back = back.replace("{CHECKOUT_SESSION_ID}", session["id"]) if back else None
    link = f'<p><a href="{escape(back)}">Return</a></p>' if back else ""
    body = f"<h1>{heading}</h1>\n<p>{text}</p>\n{link}"
    return status, _document(heading, body)


def message_page(status: int, heading: str) -> tuple[int, str]:
    return status, _document(heading, f"<h1>{escape(heading)}</h1>")
