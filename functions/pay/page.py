"""The pay page's and the confirmation's HTML: small, accessible (landmarks, labels, a live
summary, an alert region for errors that takes focus), phone-friendly, in the client's language
for money and dates (`formats.py`, then the browser's `Intl`).

Built from sections (`firm_header`, `bill_card`, `payment_form`, `firm_footer`, ...) so a
feature can add its own (payment plans, saved methods, a card surcharge) without rewriting the
page: `pay_page_html(..., extra_sections=...)` places them before the payment form.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from html import escape

from assets import SCRIPT, STYLE
from formats import date_in, money_in

from billbridge.domain.payments import MINIMUM_CHARGE_CENTS, Method, account_for
from billbridge.domain.receipts import ACCOUNT_LABEL, METHOD_LABEL, reference
from billbridge.domain.saved_methods import StoredMethod, save_consent_text
from billbridge.services.payments import Confirmation, FirmContact, LinkBill, LinkView

STATUS_BADGE = {"processing": "Processing", "paid": "Paid", "unavailable": "Not payable online"}


class Fmt:
    """Money and dates in one locale and currency, marked up for the script to re-format."""

    def __init__(self, locale: str, currency: str) -> None:
        self.locale, self.currency = locale, currency

    def money(self, cents: int) -> str:
        text = escape(money_in(cents, self.currency, self.locale))
        return f'<data class="money" value="{int(cents)}">{text}</data>'

    def day(self, day: date) -> str:
        text = escape(date_in(day, self.locale))
        return f'<time data-day datetime="{day.isoformat()}">{text}</time>'

    def moment(self, at: datetime) -> str:
        text = f"{date_in(at.date(), self.locale)}, {at:%H:%M} UTC"
        return f'<time data-moment datetime="{at.isoformat()}">{escape(text)}</time>'


def layout(
    title: str,
    content: str,
    *,
    token: str,
    locale: str,
    currency: str = "USD",
    firm: FirmContact | None = None,
) -> str:
    header = firm_header(firm) if firm else ""
    footer = firm_footer(firm) if firm else ""
    script = f"<script>{SCRIPT}</script>" if token else ""
    return (
        f'<!doctype html><html lang="{escape(locale)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="robots" content="noindex"><title>{escape(title)}</title>'
        f"<style>{STYLE}</style></head>"
        f'<body data-token="{escape(token)}" data-currency="{escape(currency)}" '
        f'data-minimum="{MINIMUM_CHARGE_CENTS}">'
        '<a class="skip" href="#main">Skip to the content</a>'
        f'{header}<main id="main" tabindex="-1">{content}</main>{footer}{script}</body></html>'
    )


def firm_header(firm: FirmContact) -> str:
    return f'<header class="firm"><div><p>{escape(firm.name)}</p></div></header>'


def firm_footer(firm: FirmContact) -> str:
    who = escape(firm.contact_name or firm.name)
    if firm.reply_to:
        address = escape(firm.reply_to)
        reach = f'{who}: <a href="mailto:{address}">{address}</a>'
    else:
        reach = f"{who}, by replying to the email that brought you here"
    return (
        '<footer aria-label="Contact the firm"><p>Questions about these bills? Contact '
        f"{reach}.</p><p>Payments are processed securely by Stripe. Trust money goes to "
        f"{escape(firm.name)}'s trust account in full.</p></footer>"
    )


def bill_label(item: LinkBill) -> str:
    return f"{item.bill.kind.label} {item.bill.number}"


def bill_card(item: LinkBill, token: str, fmt: Fmt, today: date) -> str:
    bill = item.bill
    label = escape(bill_label(item))
    past_due = item.past_due(today)
    badges = []
    if past_due:
        badges.append('<span class="badge past-due">Past due</span>')
    if item.status in STATUS_BADGE:
        badges.append(f'<span class="badge {item.status}">{STATUS_BADGE[item.status]}</span>')
    due = f"Due {fmt.day(bill.due_at)}" if bill.due_at else "No due date"
    if past_due:
        due = f"Was due {fmt.day(bill.due_at)}" if bill.due_at else due
    pdf = f"/pay/{escape(token)}/bills/{bill.id}.pdf"
    data = (
        f' data-bill-id="{bill.id}" data-label="{label}"'
        + (f' data-due="{bill.due_at.isoformat()}"' if bill.due_at else "")
        + (f' data-issued="{bill.issued_at.isoformat()}"' if bill.issued_at else "")
        + (f' data-payable="{item.payable_cents}"' if item.payable_cents > 0 else "")
        + f' data-account="{account_for(bill.kind).value}"'
    )
    choose = ""
    if item.payable_cents > 0:
        choose = (
            f'<p class="choice"><input type="checkbox" name="bill" value="{bill.id}" '
            f'id="bill-{bill.id}" form="pay-form" checked><label for="bill-{bill.id}">Pay '
            f"{label}</label></p>"
        )
    note = f'<p class="note">{escape(item.note)}</p>' if item.note else ""
    return (
        f'<li class="card bill"{data} aria-labelledby="bill-{bill.id}-h">'
        f'<div class="bill-head"><h3 id="bill-{bill.id}-h">{label}</h3>{" ".join(badges)}</div>'
        f'<p class="muted">{due} · Total {fmt.money(bill.total_cents)}</p>'
        f"{due_line(item, fmt)}"
        f"{note}{choose}"
        f'<p class="links"><a href="{pdf}" target="_blank" rel="noopener">View the PDF of '
        f'{label}</a><a href="{pdf}?download=1" download>Download the PDF of {label}</a></p>'
        "</li>"
    )


def due_line(item: LinkBill, fmt: Fmt) -> str:
    """What the bill asks for now: never "$0.00 due" for a bill a bank payment is paying."""
    processing = fmt.money(item.processing_cents)
    if item.status == "processing":
        return f'<p>Bank payment processing: <span class="amount">{processing}</span></p>'
    if item.status == "paid":
        return "<p>Nothing is due on this bill.</p>"
    if item.status == "unavailable":
        return ""
    return f'<p>Amount due now: <span class="amount">{fmt.money(item.payable_cents)}</span></p>'


PAYMENT_STATE = {
    ("payment", "succeeded"): "received",
    ("payment", "pending"): "processing (bank payments take a few business days)",
    ("payment", "failed"): "returned by the bank: nothing was taken",
    ("refund", "succeeded"): "refunded to you",
    ("refund", "pending"): "refund on its way",
    ("refund", "failed"): "refund failed: the firm will be in touch",
}


def payments_section(view: LinkView, fmt: Fmt) -> str:
    """The link's payments and refunds so far, newest first, with their references."""
    if not view.transactions:
        return ""
    items = []
    for txn in reversed(view.transactions):
        what = "Refund" if txn.kind.value == "refund" else f"{METHOD_LABEL[txn.method]} payment"
        state = PAYMENT_STATE[(txn.kind.value, txn.status.value)]
        items.append(
            f"<li>{escape(what)} of {fmt.money(txn.amount_cents)} on "
            f"{fmt.day(txn.created_at.date())}: {escape(state)}. "
            f'<span class="muted">Reference {escape(reference(txn.id))}</span></li>'
        )
    return (
        '<section class="card" aria-labelledby="history-h"><h2 id="history-h">Your payments'
        f'</h2><ul class="history">{"".join(items)}</ul></section>'
    )


def saved_choices(saved: Sequence[StoredMethod]) -> str:
    """The client's saved cards and bank accounts, first among the ways to pay (the newest
    chosen), each with its "Forget" button."""
    rows = []
    for n, m in enumerate(reversed(saved)):
        kind = "card" if m.method.method is Method.CARD else "bank account"
        rows.append(
            f'<p class="choice saved-choice"><input type="radio" name="method" value="saved" '
            f'id="method-saved-{n}" data-saved-id="{escape(m.id)}" '
            f'data-label="{escape(m.method.label)}"{" checked" if n == 0 else ""}>'
            f'<label for="method-saved-{n}">Pay with <span aria-hidden="true">'
            f'{escape(m.display)}</span><span class="sr-only">{escape(m.method.label)}</span>'
            f'</label> <button type="button" class="forget" data-saved-id="{escape(m.id)}" '
            f'data-label="{escape(m.method.label)}" aria-label="Forget '
            f'{escape(m.method.label)}">Forget this {kind}</button></p>'
        )
    return "".join(rows)


def save_box(firm_name: str) -> str:
    """The tick that saves the card or bank account, with what the client agrees to (the
    ACH debit authorization when paying by bank)."""
    card = save_consent_text(firm_name, Method.CARD)
    ach = save_consent_text(firm_name, Method.ACH)
    return (
        '<div id="save-box"><p class="choice"><input type="checkbox" id="save-method" '
        'aria-describedby="save-consent"><label for="save-method">Save this card or bank '
        f"account for future payments to {escape(firm_name)}</label></p>"
        f'<p id="save-consent" class="muted" data-card="{escape(card)}" '
        f'data-ach="{escape(ach)}">{escape(card)}</p></div>'
    )


def payment_form(
    payable: Sequence[LinkBill],
    fmt: Fmt,
    saved: Sequence[StoredMethod] = (),
    firm_name: str | None = None,
) -> str:
    total = sum(b.payable_cents for b in payable)
    return (
        '<form id="pay-form" class="card" aria-labelledby="pay-h" novalidate>'
        '<h2 id="pay-h">Make a payment</h2>'
        "<fieldset><legend>How much</legend>"
        '<p class="choice"><input type="radio" name="how" value="all" id="how-all" checked>'
        '<label for="how-all">The full amount due on the chosen bills: '
        f'<span id="full-total" class="amount">{fmt.money(total)}</span></label></p>'
        '<p class="choice"><input type="radio" name="how" value="part" id="how-part">'
        '<label for="how-part">Part of it</label></p>'
        '<div id="part-amount" hidden><label for="amount">Amount to pay '
        f"({escape(fmt.currency)})</label><br>"
        '<input type="text" inputmode="decimal" id="amount" autocomplete="off" '
        'aria-describedby="amount-hint pay-error">'
        '<p id="amount-hint" class="muted">A part payment pays the oldest due bills first.</p>'
        "</div></fieldset>"
        '<div id="summary" class="summary" role="status" aria-live="polite"></div>'
        "<fieldset><legend>Pay by</legend>"
        + saved_choices(saved)
        + '<p class="choice"><input type="radio" name="method" value="card" id="method-card"'
        + ("" if saved else " checked")
        + '><label for="method-card">Card: the payment counts at once.</label></p>'
        '<p class="choice"><input type="radio" name="method" value="ach" id="method-ach" '
        'aria-describedby="ach-timing"><label for="method-ach">Bank account (ACH)</label></p>'
        '<p id="ach-timing" class="muted">A bank payment takes a few business days to clear. '
        "Until then your bill shows it as processing; if your bank returns it, we will email "
        "you and the bill can be paid again.</p></fieldset>"
        + (save_box(firm_name) if firm_name is not None else "")
        + '<p id="pay-error" class="error" role="alert" tabindex="-1"></p>'
        '<div id="pay-result" class="summary" role="status" aria-live="polite" hidden></div>'
        f'<button type="submit">Pay {money_in(total, fmt.currency, fmt.locale)}</button>'
        "</form>"
    )


def pay_page_html(
    view: LinkView,
    token: str,
    locale: str,
    today: date,
    extra_sections: Sequence[str] = (),
    saved: Sequence[StoredMethod] | None = None,
) -> str:
    """`saved`: the client's saved methods (None: this link cannot save one)."""
    fmt = Fmt(locale, view.currency)
    firm = view.firm or FirmContact(view.firm_name, None, None)
    payable = [b for b in view.bills if b.payable_cents > 0]
    cards = "".join(bill_card(b, token, fmt, today) for b in view.bills)
    parts = [
        "<h1>Pay your bills</h1>",
        f'<p class="muted">From {escape(firm.name)}. '
        + (
            f"Due now: {fmt.money(view.total_payable_cents)}.</p>"
            if payable
            else "Nothing is due now.</p>"
        ),
        '<section aria-labelledby="bills-h"><h2 id="bills-h">Your bills</h2>'
        f'<ul class="bills">{cards}</ul></section>',
    ]
    if payable:
        parts.extend(extra_sections)
        firm_name = firm.name if saved is not None else None
        parts.append(payment_form(payable, fmt, saved or (), firm_name))
    else:
        parts.append(
            '<p class="card" role="status">Nothing can be paid on these bills now. Each bill '
            "above says why.</p>"
        )
    parts.append(payments_section(view, fmt))
    return layout(
        "Pay your bills",
        "".join(parts),
        token=token,
        locale=locale,
        currency=view.currency,
        firm=firm,
    )


HEADLINE = {
    "succeeded": "Thank you: your payment was received",
    "processing": "Thank you: your bank payment is processing",
    "failed": "Your bank payment did not go through",
    "not_paid": "Your payment was not made",
}


def confirmation_html(done: Confirmation, token: str, locale: str) -> str:
    facts = done.facts
    currency = facts.currency if facts else "USD"
    fmt = Fmt(locale, currency)
    back = f'<p><a href="/pay/{escape(token)}">Back to your bills</a></p>'
    parts = [f"<h1>{HEADLINE[done.state]}</h1>"]
    if facts is None:
        parts.append(
            '<p class="card notice failed" role="status">Nothing was charged. You can start '
            "again from your bills.</p>" + back
        )
        return layout(
            HEADLINE[done.state],
            "".join(parts),
            token=token,
            locale=locale,
            currency=currency,
            firm=done.firm,
        )
    lead = {
        "succeeded": "Your payment counts at once. A receipt is on its way to your email.",
        "processing": (
            "Bank payments take a few business days to clear. Until then your bills show this "
            "payment as processing. We emailed you that it started, and will email you when "
            "it clears (or if your bank returns it)."
        ),
        "failed": "Your bank returned the payment. Nothing was taken; the bills can be paid again.",
    }[done.state]
    rows = [
        ("Amount", fmt.money(facts.amount_cents)),
        ("Date", fmt.moment(facts.at)),
        ("Method", escape(METHOD_LABEL[facts.method])),
        ("Paid into", escape(f"{done.firm.name}'s {ACCOUNT_LABEL[facts.account].lower()}")),
        ("Reference", f'<span id="reference">{escape(facts.reference)}</span>'),
    ]
    bills = "".join(
        f"<li>{escape(line.kind_label)} {escape(line.bill_number)}: "
        f"{fmt.money(line.amount_cents)}</li>"
        for line in facts.lines
    )
    parts.append(
        f'<div class="card notice {done.state}" role="status"><p>{escape(lead)}</p></div>'
        '<section class="card" aria-labelledby="facts-h"><h2 id="facts-h">Payment details</h2>'
        '<dl class="facts">'
        + "".join(f"<dt>{label}</dt><dd>{value}</dd>" for label, value in rows)
        + "</dl></section>"
        '<section class="card" aria-labelledby="paid-h"><h2 id="paid-h">Bills paid</h2>'
        f"<ul>{bills}</ul></section>"
        '<div class="card notice" id="next-part" hidden><p>Your payment has a second part: '
        'trust and operating money are paid separately.</p><a href="#"></a></div>' + back
    )
    return layout(
        HEADLINE[done.state],
        "".join(parts),
        token=token,
        locale=locale,
        currency=currency,
        firm=done.firm,
    )


def not_found_page(locale: str = "en-US") -> str:
    return layout(
        "Payment link not found",
        "<h1>This payment link is not valid</h1><p>It may have been mistyped or replaced by a "
        "newer one. Please use the latest email from your law firm, or contact them.</p>",
        token="",
        locale=locale,
    )
