"""The pay page's style and script, inline (the page is served by the API, apart from the firm's
web UI, under a CSP that allows only inline style and script). The colour tokens are those of
web/styles.css.

The script is progressive: the server renders every amount and date in the client's language
already; the script re-formats them with the browser's `Intl`, keeps the summary of what a
payment pays (oldest due first, as the server allocates), and starts checkout.
"""

STYLE = """
:root { --ink:#1d2733; --muted:#56657a; --line:#dde3ea; --brand:#1f4e8c; --bg:#f5f7fa;
  --bad:#a3261b; --warn:#8a5a00; --ok:#1e6b3a; }
* { box-sizing:border-box; }
body { margin:0; font:16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color:var(--ink);
  background:var(--bg); }
.skip { position:absolute; left:-999px; } .skip:focus { left:1rem; top:1rem; background:#fff; }
header.firm { background:#fff; border-bottom:1px solid var(--line); }
header.firm div, main, footer { max-width:42rem; margin:0 auto; padding:.8rem 1rem; }
header.firm p { margin:0; font-weight:600; }
main { padding-bottom:2rem; }
h1 { font-size:1.45rem; margin:.6rem 0 1rem; }
h2 { font-size:1.1rem; margin:0 0 .6rem; }
h3 { font-size:1.02rem; margin:0; }
.muted { color:var(--muted); }
.card { background:#fff; border:1px solid var(--line); border-radius:8px; padding:1rem;
  margin:0 0 1rem; overflow-wrap:anywhere; }
ul.bills { list-style:none; margin:0; padding:0; }
.bill-head { display:flex; flex-wrap:wrap; gap:.4rem .8rem; align-items:baseline;
  justify-content:space-between; }
.badge { display:inline-block; font-size:.8rem; font-weight:600; padding:.05rem .5rem;
  border-radius:1rem; border:1px solid currentColor; }
.badge.past-due { color:var(--bad); } .badge.processing { color:var(--warn); }
.badge.paid { color:var(--ok); } .badge.unavailable { color:var(--muted); }
.amount { font-variant-numeric:tabular-nums; font-weight:600; }
.bill p { margin:.3rem 0; }
.bill .links { display:flex; flex-wrap:wrap; gap:.4rem 1rem; }
label { cursor:pointer; }
.choice { display:flex; gap:.5rem; align-items:flex-start; margin:.35rem 0; }
.choice input { margin-top:.3rem; }
fieldset { border:1px solid var(--line); border-radius:8px; margin:0 0 1rem; padding:.6rem .9rem; }
legend { font-weight:600; padding:0 .3rem; }
input[type=text] { font:inherit; width:11rem; max-width:100%; padding:.45rem .5rem;
  border:1px solid #8a99a8; border-radius:.4rem; }
input[aria-invalid=true] { border-color:var(--bad); outline:1px solid var(--bad); }
button { font:inherit; font-weight:600; padding:.65rem 1.1rem; border:0; border-radius:.4rem;
  background:var(--brand); color:#fff; cursor:pointer; width:100%; }
button:disabled { opacity:.6; cursor:progress; }
a { color:var(--brand); }
button:focus-visible, input:focus-visible, a:focus-visible, [tabindex]:focus-visible {
  outline:3px solid #f0b429; outline-offset:2px; }
ul.history { margin:0; padding-left:1.2rem; } ul.history li { margin:.3rem 0; }
.summary { background:#eef3fa; border-radius:6px; padding:.6rem .8rem; margin:.6rem 0; }
.summary ul { margin:.3rem 0 0; padding-left:1.2rem; }
.error { color:var(--bad); font-weight:600; margin:.5rem 0; }
.error:empty { margin:0; }  /* kept in the tree: an alert region must exist before it speaks */
.notice { border-left:4px solid var(--ok); }
.notice.processing { border-left-color:var(--warn); }
.notice.failed { border-left-color:var(--bad); }
.sr-only { position:absolute; width:1px; height:1px; overflow:hidden; clip:rect(0 0 0 0);
  white-space:nowrap; }
button.forget { width:auto; background:none; color:var(--brand); padding:.1rem .3rem;
  text-decoration:underline; font-weight:500; margin-left:auto; }
.saved-choice { flex-wrap:wrap; }
#save-box .muted { font-size:.9rem; margin:.2rem 0 .8rem 1.6rem; }
dl.facts { display:grid; grid-template-columns:max-content 1fr; gap:.3rem 1rem; margin:0; }
dl.facts dt { color:var(--muted); } dl.facts dd { margin:0; font-weight:600; }
footer { color:var(--muted); font-size:.95rem; }
@media (max-width:30rem) {
  dl.facts { grid-template-columns:1fr; } dl.facts dd { margin-bottom:.4rem; }
  input[type=text] { width:100%; }
}
"""

SCRIPT = r"""
const body = document.body;
const token = body.dataset.token;
const currency = body.dataset.currency;
const locale = (navigator.languages && navigator.languages[0]) || document.documentElement.lang;
const money = new Intl.NumberFormat(locale, { style: 'currency', currency });
const digits = money.resolvedOptions().maximumFractionDigits;
const scale = 10 ** digits;
function fmt(cents) { return money.format(cents / scale); }
function relocalise(root) {
  root.querySelectorAll('data.money').forEach((el) => { el.textContent = fmt(Number(el.value)); });
  root.querySelectorAll('time[data-day]').forEach((el) => {
    const [y, m, d] = el.dateTime.split('-').map(Number);
    el.textContent = new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeZone: 'UTC' })
      .format(new Date(Date.UTC(y, m - 1, d)));
  });
  root.querySelectorAll('time[data-moment]').forEach((el) => {
    el.textContent = new Intl.DateTimeFormat(locale, { dateStyle: 'long', timeStyle: 'short' })
      .format(new Date(el.dateTime));
  });
}
relocalise(document);
const parts = new Intl.NumberFormat(locale).formatToParts(1234.5);
const decimalSign = (parts.find((p) => p.type === 'decimal') || { value: '.' }).value;
function parseAmount(text) {
  // Typed money as text to integer cents, never through floats: "1,130.25", "1.130,25", "$50".
  let t = String(text).replace(/[^\d.,]/g, '');
  const last = Math.max(t.lastIndexOf('.'), t.lastIndexOf(','));
  let whole = t, frac = '';
  if (last >= 0 && (t[last] === decimalSign || t.length - last - 1 <= digits) &&
      t.length - last - 1 <= digits && t.length - last - 1 > 0) {
    whole = t.slice(0, last); frac = t.slice(last + 1);
  }
  whole = whole.replace(/[.,]/g, '');
  if (!/^\d+$/.test(whole || '0') || (!whole && !frac)) return null;
  return Number(whole || '0') * scale + Number((frac || '').padEnd(digits, '0') || '0');
}
const form = document.getElementById('pay-form');
if (form) {
  const bills = [...document.querySelectorAll('li.bill[data-payable]')].map((li) => ({
    id: li.dataset.billId, label: li.dataset.label, payable: Number(li.dataset.payable),
    account: li.dataset.account,
    due: li.dataset.due || '9999-12-31', issued: li.dataset.issued || '9999-12-31',
    box: li.querySelector('input[name=bill]'),
  }));
  const amountInput = document.getElementById('amount');
  const partBox = document.getElementById('part-amount');
  const summary = document.getElementById('summary');
  const error = document.getElementById('pay-error');
  const button = form.querySelector('button[type=submit]');
  const chosen = () => bills.filter((b) => b.box.checked);
  const method = () => form.querySelector('input[name=method]:checked').value;
  const partial = () => form.querySelector('input[name=how]:checked').value === 'part';
  function allocate(list, amount) {
    // The server's rule (domain/payments.py allocate): oldest due date first, then issued, id.
    const order = [...list].sort((a, b) => (a.due < b.due ? -1 : a.due > b.due ? 1 :
      a.issued < b.issued ? -1 : a.issued > b.issued ? 1 : Number(a.id) - Number(b.id)));
    let left = amount; const out = [];
    for (const b of order) { const share = Math.min(b.payable, left);
      if (share > 0) { out.push([b, share]); left -= share; } }
    return out;
  }
  function clearError() {
    error.textContent = ''; amountInput.removeAttribute('aria-invalid');
  }
  function showError(text, field) {
    error.textContent = text;
    if (field) { field.setAttribute('aria-invalid', 'true'); field.focus(); } else error.focus();
  }
  const saveBox = document.getElementById('save-box');
  const saveTick = document.getElementById('save-method');
  const consent = document.getElementById('save-consent');
  const result = document.getElementById('pay-result');
  const savedRadio = () => form.querySelector('input[name=method][value=saved]:checked');
  function showResult(text) {
    result.replaceChildren();
    const p = document.createElement('p'); p.textContent = text; result.append(p);
    result.hidden = false;
  }
  for (const forget of form.querySelectorAll('button.forget')) {
    forget.addEventListener('click', async () => {
      clearError();
      forget.disabled = true;
      try {
        const answer = await fetch(location.pathname.replace(/\/$/, '') + '/saved-methods/' +
          forget.dataset.savedId + '/forget', { method: 'POST',
          headers: { 'Content-Type': 'application/json' }, body: '{}' });
        const data = await answer.json();
        if (!answer.ok) {
          showError((data.error || {}).message || 'It could not be forgotten. Please try again.',
            null);
          return;
        }
        forget.closest('p').remove();
        document.getElementById('method-card').checked = true;
        update();
        showResult(data.message);
      } catch (e) {
        showError('We could not reach the payment service. Check your connection and try again.',
          null);
      } finally { forget.disabled = false; }
    });
  }
  function update() {
    if (saveBox) {
      saveBox.hidden = !!savedRadio();
      consent.textContent = method() === 'ach' ? consent.dataset.ach : consent.dataset.card;
    }
    const list = chosen();
    const total = list.reduce((s, b) => s + b.payable, 0);
    document.getElementById('full-total').textContent = fmt(total);
    partBox.hidden = !partial();
    let amount = total;
    if (partial()) {
      const typed = parseAmount(amountInput.value);
      amount = typed === null ? 0 : typed;
    }
    const shares = amount > 0 && amount <= total ? allocate(list, amount) : [];
    const p = document.createElement('p');
    summary.replaceChildren(p);
    if (!list.length) p.textContent = 'Choose at least one bill to pay.';
    else if (!shares.length) p.textContent = 'Enter an amount up to ' + fmt(total) +
      ' to see which bills it pays.';
    else {
      p.textContent = 'You will pay ' + fmt(amount) +
        (partial() && list.length > 1 ? ', oldest due bills first:' : ':');
      const ul = document.createElement('ul');
      for (const [b, share] of shares) {
        const li = document.createElement('li');
        li.textContent = b.label + ': ' + fmt(share) + (share < b.payable ?
          ' (part of ' + fmt(b.payable) + ')' : ' (paid in full)');
        ul.append(li);
      }
      summary.append(ul);
      if (new Set(shares.map(([b]) => b.account)).size > 1) {
        const split = document.createElement('p');
        split.textContent = 'Trust and operating money are paid separately: you will pay ' +
          'the trust part and the operating part one after the other, as two charges.';
        summary.append(split);
      }
    }
    const picked = savedRadio();
    const via = picked ? 'with ' + picked.dataset.label :
      method() === 'ach' ? 'by bank transfer' : 'by card';
    button.textContent = shares.length ? 'Pay ' + fmt(amount) + ' ' + via : 'Pay ' + via;
    return { list, total, amount };
  }
  form.addEventListener('input', () => { clearError(); update(); });
  form.addEventListener('change', update);
  update();
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearError();
    const { list, total, amount } = update();
    if (!list.length) { showError('Choose at least one bill to pay.', null); return; }
    if (partial()) {
      const typed = parseAmount(amountInput.value);
      const minimum = Number(body.dataset.minimum);
      let problem = null;
      if (typed === null || typed <= 0) {
        problem = 'Enter the amount to pay, such as ' + fmt(Math.min(total, 125 * scale)) + '.';
      } else if (typed > total) {
        problem = 'That is more than is due on the chosen bills: at most ' + fmt(total) +
          ' can be paid.';
      } else if (typed < minimum) {
        problem = 'The smallest payment that can be made online is ' + fmt(minimum) + '.';
      }
      if (problem) { showError(problem, amountInput); return; }
    }
    const base = location.pathname.replace(/\/$/, '');
    const post = (path, request) => fetch(base + path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Idempotency-Key': crypto.randomUUID() },
      body: JSON.stringify(request),
    });
    const picked = savedRadio();
    const request = picked ? { bill_ids: list.map((b) => b.id) } :
      { bill_ids: list.map((b) => b.id), method: method() };
    if (partial() && amount !== total) request.amount_cents = amount;
    if (!picked && saveTick && saveTick.checked) {
      request.save_method = true;
      if (method() === 'ach') request.mandate_accepted = true;  // the tick accepts the text shown
    }
    button.disabled = true;
    try {
      let answer;
      if (picked) {
        answer = await post('/saved-methods/' + picked.dataset.savedId + '/pay', request);
        const paid = await answer.json();
        if (!answer.ok) {
          const e = paid.error || {};
          showError(e.message || 'The payment could not be made. Please try again.',
            e.field === 'amount_cents' && partial() ? amountInput : null);
          return;
        }
        showResult(paid.message);
        if (!paid.checkout) {
          const again = document.createElement('a');
          again.href = base; again.textContent = 'See your updated bills';
          result.append(again);
          return;
        }
        answer = await post('/checkout', paid.checkout);  // the bank wants a confirmation
      } else {
        answer = await post('/checkout', request);
      }
      const data = await answer.json();
      if (!answer.ok) {
        const e = data.error || {};
        showError(e.message || 'The payment could not be started. Please try again.',
          e.field === 'amount_cents' && partial() ? amountInput : null);
        return;
      }
      const sessions = data.checkout_sessions;
      sessionStorage.setItem('billbridge-pay-' + token, JSON.stringify(sessions.slice(1)));
      location.assign(sessions[0].url);
    } catch (e) {
      showError('We could not reach the payment service. Check your connection and try again.',
        null);
    } finally {
      button.disabled = false;
    }
  });
}
const nextBox = document.getElementById('next-part');
if (nextBox) {
  const key = 'billbridge-pay-' + token;
  const next = JSON.parse(sessionStorage.getItem(key) || '[]');
  if (next.length) {
    const link = nextBox.querySelector('a');
    link.href = next[0].url;
    link.textContent = 'Continue: pay the ' + next[0].account + ' part (' +
      fmt(next[0].amount_cents) + ')';
    sessionStorage.setItem(key, JSON.stringify(next.slice(1)));
    nextBox.hidden = false;
  }
}
"""
