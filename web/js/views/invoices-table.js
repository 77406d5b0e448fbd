// The Invoices table: one row per bill, which becomes a card at phone width (styles.css).

import { badge, h, linkIcon } from "../dom.js";
import { date, dateTime, flagLabel, isPastDue, kindLabel, money, stateLabel } from "../format.js";

const STATE_TONES = {
  awaiting_payment: "info", paid: "good", draft: "neutral",
  awaiting_approval: "neutral", void: "muted", deleted: "muted",
};

/** Why a bill cannot go in an envelope (the API's rule, S1), or null when it can. */
export function whyNotSendable(bill) {
  if (bill.state !== "awaiting_payment" || bill.outstanding_clio_cents <= 0) return "No balance to send";
  if (!bill.client.email) return "No email address in Clio";
  return null;
}

/** True for bills the header checkbox selects: an outstanding balance a client can be sent. */
export const hasBalance = (bill) => whyNotSendable(bill) === null;

export const COLUMNS = ["ID", "Client", "Matter", "Kind", "Total", "Outstanding (Clio)", "Paid (GL)",
  "Due", "Last sent", "Payment link"];

/** invoicesTable({items, selected, onToggle, headerBox}) -> {table, rows}. `selected` holds the
 * selected bill ids; onToggle(bill, checked) is called when a row's checkbox changes; `rows`
 * maps a bill id to its {tr, box}, so selection changes update rows in place (focus stays). */
export function invoicesTable({ items, selected, onToggle, headerBox }) {
  const head = h("thead", {}, h("tr", {},
    h("th", { scope: "col", class: "select-col" }, headerBox),
    COLUMNS.map((name, i) => h("th", { scope: "col", class: i >= 4 && i <= 6 ? "num" : null }, name))));
  const rows = new Map();
  const body = h("tbody", {}, items.map((bill) => {
    const made = row(bill, selected.has(bill.id), onToggle);
    rows.set(bill.id, made);
    return made.tr;
  }));
  const table = h("table", { class: "data invoices" }, h("caption", { class: "visually-hidden" }, "Clio bills"), head, body);
  return { table, rows };
}

/** Mark a row selected or not, as its checkbox and its highlight. */
export function markRow(made, checked) {
  made.box.checked = checked;
  made.tr.classList.toggle("selected", checked);
}

function row(bill, checked, onToggle) {
  const reason = whyNotSendable(bill);
  const box = h("input", {
    type: "checkbox", checked, disabled: reason !== null,
    "aria-label": `Select bill ${bill.id} (${bill.client.name})`,
    title: reason || `Select bill ${bill.id}`,
  });
  box.addEventListener("change", () => onToggle(bill, box.checked));
  const flags = (bill.flags || []).map((f) => badge(flagLabel(f), "warn"));
  const matter = bill.matter
    ? [h("span", {}, bill.matter.display_number), bill.matter.description ? h("span", { class: "sub" }, bill.matter.description) : null]
    : h("span", { class: "muted" }, "No matter");
  const overdue = bill.outstanding_clio_cents > 0 && isPastDue(bill.due_at);
  const tr = h("tr", { "data-bill-id": bill.id, class: checked ? "selected" : null },
    h("td", { class: "select-col" }, box, reason && reason !== "No balance to send" ? h("span", { class: "sub warn-text" }, reason) : null),
    h("td", { "data-label": "ID" },
      h("a", { href: bill.clio_url, target: "_blank", rel: "noopener", "aria-label": `Bill ${bill.id} in Clio (opens in a new tab)` }, bill.id),
      h("span", { class: "sub" }, bill.number),
      h("span", { class: "badges" }, badge(stateLabel(bill.state), STATE_TONES[bill.state]), flags)),
    h("td", { "data-label": "Client" }, bill.client.name),
    h("td", { "data-label": "Matter" }, matter),
    h("td", { "data-label": "Kind" }, kindLabel(bill.kind)),
    h("td", { "data-label": "Total", class: "num" }, money(bill.total_cents, bill.currency)),
    h("td", { "data-label": "Outstanding (Clio)", class: "num" }, money(bill.outstanding_clio_cents, bill.currency)),
    h("td", { "data-label": "Paid (GL)", class: "num" }, money(bill.paid_gl_cents, bill.currency)),
    h("td", { "data-label": "Due", class: overdue ? "overdue nowrap" : "nowrap" },
      date(bill.due_at), overdue ? h("span", { class: "sub" }, "Past due") : null),
    h("td", { "data-label": "Last sent" }, bill.last_sent_at ? dateTime(bill.last_sent_at) : h("span", { class: "muted" }, "Never")),
    h("td", { "data-label": "Payment link" }, bill.payment_link_id
      ? h("a", { href: `#/payment-links/${encodeURIComponent(bill.payment_link_id)}`, class: "icon-link",
        "aria-label": `Payment link of bill ${bill.id}`, title: "Payment link: transactions and refunds" }, linkIcon())
      : h("span", { class: "muted", title: "Made the first time the bill is sent" }, "–")));
  return { tr, box };
}
