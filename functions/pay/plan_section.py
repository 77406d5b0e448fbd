"""The pay page's own section for issue 12, mounted by page.py with one call: the card surcharge
told before paying (`GET /pay/{token}/surcharge`), and "Pay in installments": the client
chooses an installment amount, weekly or monthly, a start date, card or bank account (the
bank debit authorization shown and accepted first), then saves the method on Stripe's page;
back on the pay page the plan is shown with its installments. The section builds itself from
the JSON endpoints (plan_routes.py, surcharge_routes.py), so the rest of the page is untouched.
"""

from __future__ import annotations

SECTION = """
<p id="surcharge-note" class="card" role="note" hidden></p>
<section class="card" id="plans" aria-labelledby="plans-title" hidden>
<h2 id="plans-title">Pay in installments</h2>
<div id="plan-list"></div>
<form id="plan-form" aria-label="Set up a payment plan">
<p class="muted" id="plan-limits"></p>
<label for="plan-amount">Installment amount</label>
<input type="text" inputmode="decimal" id="plan-amount" required>
<label for="plan-every">How often</label>
<select id="plan-every"><option value="month">Every month</option>
<option value="week">Every week</option></select>
<label for="plan-start">First installment on</label>
<input type="date" id="plan-start" required>
<label for="plan-method">Pay the installments by</label>
<select id="plan-method"><option value="card">Card</option>
<option value="ach">Bank account (ACH)</option></select>
<div id="plan-mandate" hidden><p id="plan-mandate-text"></p>
<label><input type="checkbox" id="plan-mandate-ok"> I authorize these debits</label></div>
<button type="submit">Set up payment plan</button>
<p class="error" role="alert" id="plan-error"></p><p role="status" id="plan-done"></p>
</form>
</section>
<script>
(() => {
  const token = document.body.dataset.token;
  const base = "/pay/" + encodeURIComponent(token);
  const fmt = (c) => "$" + (c / 100).toLocaleString("en-US",
    {minimumFractionDigits: 2, maximumFractionDigits: 2});
  const json = (r) => r.json().then((b) => ({ok: r.ok, body: b}));
  const el = (id) => document.getElementById(id);
  const text = (node, value) => { node.textContent = value; return node; };
  fetch(base + "/surcharge").then(json).then(({ok, body}) => {
    if (ok && body.applies) { text(el("surcharge-note"), body.note).hidden = false; }
  });
  let billIds = [];
  const showPlans = (plans) => {
    const list = el("plan-list");
    list.replaceChildren();
    for (const plan of plans.filter((p) => p.status !== "canceled")) {
      const item = document.createElement("div");
      item.className = "plan";
      const head = document.createElement("p");
      const words = {awaiting_method: "waiting for your card or bank account",
        active: "active", completed: "paid in full", failed: "stopped"}[plan.status] || plan.status;
      text(head, "Your payment plan (" + words + "): " + plan.summary +
        (plan.method ? ", paid by " + plan.method + "." : "."));
      item.append(head);
      const ol = document.createElement("ol");
      for (const i of plan.installments) {
        const li = document.createElement("li");
        text(li, i.due_on + ": " + fmt(i.amount_cents) + " (" + i.status.replace("_", " ") + ")");
        ol.append(li);
      }
      item.append(ol);
      list.append(item);
    }
    return plans;
  };
  const load = (tries) => fetch(base + "/payment-plans").then(json).then(({ok, body}) => {
    if (!ok) { return; }
    const plans = showPlans(body.plans);
    const back = new URLSearchParams(location.search).get("plan");
    const waiting = plans.find((p) => p.id === back && p.status === "awaiting_method");
    if (waiting && tries > 0) { setTimeout(() => load(tries - 1), 500); }
    if (!body.options.offered) { el("plan-form").hidden = true; }
    text(el("plan-limits"), "Installments of at least " +
      fmt(body.options.min_installment_cents) + ", at most " + body.options.max_installments +
      " of them. Each is charged on its date to the card or bank account you save.");
    text(el("plan-mandate-text"), body.options.mandate_text);
  });
  fetch(base, {headers: {Accept: "application/json"}}).then(json).then(({ok, body}) => {
    if (!ok) { return; }
    billIds = body.bills.filter((b) => b.outstanding_cents > 0).map((b) => b.id);
    if (billIds.length) { el("plans").hidden = false; }
  });
  el("plan-start").value = new Date().toISOString().slice(0, 10);
  el("plan-method").addEventListener("change", () => {
    el("plan-mandate").hidden = el("plan-method").value !== "ach";
  });
  el("plan-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const error = el("plan-error");
    const raw = el("plan-amount").value.replace(/[$,\\s]/g, "");
    if (!/^\\d+(\\.\\d{1,2})?$/.test(raw)) {
      text(error, "Enter the installment as an amount, such as 100.00.");
      return;
    }
    const [whole, frac = ""] = raw.split(".");
    const cents = Number(whole) * 100 + Number((frac + "00").slice(0, 2));
    const method = el("plan-method").value;
    const payload = {bill_ids: billIds, installment_cents: cents, every: el("plan-every").value,
      start_on: el("plan-start").value, method: method,
      mandate_accepted: el("plan-mandate-ok").checked};
    fetch(base + "/payment-plans", {method: "POST",
      headers: {"Content-Type": "application/json"}, body: JSON.stringify(payload)})
      .then(json).then(({ok, body}) => {
        if (ok && body.setup_url) { location.assign(body.setup_url); return; }
        if (ok) { text(el("plan-done"), body.message); load(0); return; }  // saved method
        text(error, (body.error && body.error.message) || "The plan could not be set up.");
      });
  });
  load(20);
})();
</script>
"""


def plan_section(token: str) -> str:
    """The section's HTML and script (the token is read from the page's `data-token`)."""
    del token  # the script reads it from the page, as the page's own script does
    return SECTION
