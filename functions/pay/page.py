"""The pay page's HTML: one small, accessible, phone-friendly page with its style and script
inline (the page is served by the API, apart from the firm's web UI, and shares its look: the
colour tokens are those of web/styles.css)."""

from __future__ import annotations

from html import escape

from billbridge.domain.envelopes import money  # the same format as the client's email
from billbridge.domain.payments import MINIMUM_CHARGE_CENTS
from billbridge.services.payments import LinkView

STYLE = """
:root { --ink:#1d2733; --muted:#5b6b7c; --line:#dde3ea; --brand:#1f4e8c; --bg:#f5f7fa; }
* { box-sizing: border-box; }
body { margin:0; font:16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color:var(--ink);
  background:var(--bg); }
main { max-width:40rem; margin:0 auto; padding:1.5rem 1rem 3rem; }
h1 { font-size:1.4rem; margin:.2rem 0 1rem; }
.muted { color:var(--muted); }
.card { background:#fff; border:1px solid var(--line); border-radius:8px; padding:1rem;
  margin:0 0 1rem; }
.bill { display:grid; grid-template-columns:1fr auto; gap:.5rem 1rem; align-items:end; }
.bill h2 { font-size:1.05rem; margin:0; }
.amount { font-variant-numeric:tabular-nums; font-weight:600; }
label { display:block; font-size:.9rem; color:var(--muted); }
input[type=text] { font:inherit; width:9rem; padding:.45rem .5rem; border:1px solid #9aa8b6;
  border-radius:.4rem; }
button { font:inherit; padding:.55rem 1rem; border:0; border-radius:.4rem; background:var(--brand);
  color:#fff; cursor:pointer; }
button:focus-visible, input:focus-visible, a:focus-visible { outline:3px solid #f0b429;
  outline-offset:2px; }
fieldset { border:1px solid var(--line); border-radius:.6rem; background:#fff; margin:0 0 1rem; }
.error { color:#a3261b; font-weight:600; }
.notice { background:#e3f4e8; border-color:#9cc9a5; }
@media (max-width:30rem) { .bill { grid-template-columns:1fr; } input[type=text] { width:100%; } }
"""

SCRIPT = """
const token = document.body.dataset.token;
const minimum = Number(document.body.dataset.minimum);
const key = 'billbridge-pay-' + token;
function cents(text) {
  const m = String(text).trim().replace(/[$,\\s]/g, '').match(/^(\\d+)(?:\\.(\\d{1,2}))?$/);
  if (!m) return null;
  return Number(m[1]) * 100 + Number((m[2] || '0').padEnd(2, '0'));
}
function method() {
  const chosen = document.querySelector('input[name=method]:checked');
  return chosen ? chosen.value : 'card';
}
async function start(form, billIds, amountText, full) {
  const error = form.querySelector('.error');
  error.textContent = '';
  const amount = cents(amountText);
  if (amount === null || amount <= 0) {
    error.textContent = 'Enter an amount such as 125.00.';
    return;
  }
  const body = { bill_ids: billIds, method: method() };
  if (amount !== full) body.amount_cents = amount;
  const button = form.querySelector('button');
  button.disabled = true;
  try {
    const answer = await fetch(location.pathname.replace(/\\/$/, '') + '/checkout', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Idempotency-Key': crypto.randomUUID() },
      body: JSON.stringify(body),
    });
    const data = await answer.json();
    if (!answer.ok) {
      error.textContent = data.error ? data.error.message : 'Something went wrong.';
      return;
    }
    const sessions = data.checkout_sessions;
    sessionStorage.setItem(key, JSON.stringify(sessions.slice(1)));
    location.assign(sessions[0].url);
  } catch (e) {
    error.textContent = 'We could not reach the payment service. Please try again.';
  } finally {
    button.disabled = false;
  }
}
document.querySelectorAll('form[data-bills]').forEach((form) => {
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const input = form.querySelector('input[type=text]');
    start(form, form.dataset.bills.split(','), input.value, Number(form.dataset.full));
  });
});
const next = JSON.parse(sessionStorage.getItem(key) || '[]');
if (new URLSearchParams(location.search).get('paid') && next.length) {
  const box = document.getElementById('next-part');
  const link = box.querySelector('a');
  link.href = next[0].url;
  link.textContent = 'Continue: pay the ' + next[0].account + ' part';
  sessionStorage.setItem(key, JSON.stringify(next.slice(1)));
  box.hidden = false;
}
"""


def plain(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _layout(title: str, content: str, token: str = "") -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="robots" content="noindex"><title>{escape(title)}</title>'
        f"<style>{STYLE}</style></head>"
        f'<body data-token="{escape(token)}" data-minimum="{MINIMUM_CHARGE_CENTS}">'
        f"<main>{content}</main>"
        + (f"<script>{SCRIPT}</script>" if token else "")
        + "</body></html>"
    )


def pay_page_html(view: LinkView, token: str, paid_session: str | None) -> str:
    currency = view.currency
    parts = [
        f'<p class="muted">{escape(view.firm_name)}</p>',
        "<h1>Pay your bills</h1>",
    ]
    if paid_session:
        parts.append(
            '<div class="card notice" role="status"><strong>Thank you: your payment was '
            "received.</strong> Card payments count at once; bank payments take a few business "
            "days to clear.</div>"
            '<div class="card notice" id="next-part" hidden><p>Your payment has two parts: '
            'trust and operating money are paid separately.</p><a href="#"></a></div>'
        )
    payable = [b for b in view.bills if b.payable_cents > 0]
    if not payable:
        notes = "".join(
            f"<li>{escape(b.bill.kind.label)} {escape(b.bill.number)}: {escape(b.note or '')}</li>"
            for b in view.bills
            if b.note
        )
        parts.append(
            '<div class="card" role="status">Nothing can be paid on these bills now.'
            f"<ul>{notes}</ul></div>"
        )
        return _layout("Pay your bills", "".join(parts), token)
    parts.append(
        "<fieldset><legend>How would you like to pay?</legend>"
        '<label><input type="radio" name="method" value="card" checked> Card</label>'
        '<label><input type="radio" name="method" value="ach"> Bank account (ACH)</label>'
        "</fieldset>"
    )
    for stored in view.bills:
        bill = stored.bill
        kind = bill.kind.label
        due = (
            f"Due {bill.due_at:%b} {bill.due_at.day}, {bill.due_at.year}"
            if bill.due_at
            else "No due date"
        )
        field = f"amount-{bill.id}"
        header = (
            f"<div><h2>{kind} {escape(bill.number)}</h2>"
            f'<p class="muted">{due} · total {money(bill.total_cents, currency)}</p>'
            '<p>Amount due: <span class="amount">'
            f"{money(stored.payable_cents, currency)}</span></p>"
            "</div>"
        )
        if stored.payable_cents <= 0:
            note = escape(stored.note or "Nothing is left to pay on this bill.")
            parts.append(f'<section class="card bill">{header}<p>{note}</p></section>')
            continue
        parts.append(
            f'<section class="card"><form class="bill" data-bills="{bill.id}" '
            f'data-full="{stored.payable_cents}" aria-label="Pay {kind} {escape(bill.number)}">'
            f'{header}<div><label for="{field}">Amount to pay ({escape(currency)})</label>'
            f'<input type="text" inputmode="decimal" id="{field}" '
            f'value="{plain(stored.payable_cents)}"> <button type="submit">Pay this bill</button>'
            '<p class="error" role="alert"></p></div></form></section>'
        )
    if len(payable) > 1:
        ids = ",".join(str(b.bill.id) for b in payable)
        total = sum(b.payable_cents for b in payable)
        parts.append(
            f'<section class="card"><form data-bills="{ids}" data-full="{total}" '
            'aria-label="Pay all bills"><h2>All bills</h2>'
            f'<p>Total due: <span class="amount">{money(total, currency)}</span>. '
            "A smaller amount pays the oldest due bills first.</p>"
            '<label for="amount-all">Amount to pay</label>'
            f'<input type="text" inputmode="decimal" id="amount-all" value="{plain(total)}"> '
            '<button type="submit">Pay all</button><p class="error" role="alert"></p>'
            "</form></section>"
        )
    parts.append(
        '<p class="muted">Payments are processed by Stripe. Trust money goes to the firm\'s '
        "trust account in full.</p>"
    )
    return _layout("Pay your bills", "".join(parts), token)


def not_found_page() -> str:
    return _layout(
        "Payment link not found",
        "<h1>This payment link is not valid</h1><p>It may have been mistyped or replaced by a "
        "newer one. Please use the latest email from your law firm, or contact them.</p>",
    )
