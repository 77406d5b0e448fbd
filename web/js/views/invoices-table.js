// The Invoices table: one row per bill, which becomes a card at phone width (styles.css).

import { describe, getJson, sendJson } from "../api.js";
import { announce, badge, h, linkIcon, replace } from "../dom.js";
import { date, dateTime, flagLabel, isPastDue, kindLabel, money, stateLabel } from "../format.js";
import { sendNote } from "./envelope-parts.js";

const STATE_TONES = {
  awaiting_payment: "info", paid: "good", draft: "neutral",
  awaiting_approval: "neutral", void: "muted", deleted: "muted",
};

// Short words for why a bill cannot be selected, next to its turned-off checkbox; the API's own
// sentence (`unsendable_reason`) is its accessible description and tooltip.
const SHORT_REASONS = {
  nothing_payable: "Paid, not yet in Clio",
  payment_pending: "Payment pending",
  bill_not_outstanding: "Nothing payable",
  client_without_email: "No email address in Clio",
  client_email_invalid: "Email address unusable",
};

/** Why a bill cannot go in an envelope (the API's rule, S1: `sendable`), or null when it can:
 * {short, sentence}. */
export function whyNotSendable(bill) {
  if (bill.sendable !== false) return null;
  const sentence = bill.unsendable_reason || "Nothing is payable on this bill.";
  return { short: SHORT_REASONS[bill.unsendable_code] || "Cannot be sent", sentence };
}

/** True for bills the header checkbox selects: something payable now, and an address. */
export const hasBalance = (bill) => whyNotSendable(bill) === null;

export const COLUMNS = ["ID", "Client", "Matter", "Kind", "Total", "Outstanding (Clio)", "Paid (GL)",
  "Payable now", "Due", "Last sent", "Reminders", "Payment link"];

/** invoicesTable({items, selected, onToggle, headerBox}) -> {table, rows}. `selected` holds the
 * selected bill ids; onToggle(bill, checked) is called when a row's checkbox changes; `rows`
 * maps a bill id to its {tr, box}, so selection changes update rows in place (focus stays). */
export function invoicesTable({ items, selected, onToggle, headerBox }) {
  const head = h("thead", {}, h("tr", {},
    h("th", { scope: "col", class: "select-col" }, headerBox),
    COLUMNS.map((name, i) => h("th", { scope: "col", class: i >= 4 && i <= 7 ? "num" : null }, name))));
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
  const reasonId = `why-${bill.id}`;
  const box = h("input", {
    type: "checkbox", checked, disabled: reason !== null,
    "aria-label": `Select ${bill.number} (${bill.client.name})`,
    "aria-describedby": reason ? reasonId : null,
    title: reason ? reason.sentence : `Select ${bill.number}`,
  });
  box.addEventListener("change", () => onToggle(bill, box.checked));
  const why = reason
    ? h("span", { class: "sub why-not", id: reasonId, title: reason.sentence },
      reason.short, h("span", { class: "visually-hidden" }, `: ${reason.sentence}`))
    : null;
  const flags = (bill.flags || []).map((f) => badge(flagLabel(f), "warn"));
  const matter = bill.matter
    ? [h("span", {}, bill.matter.display_number), bill.matter.description ? h("span", { class: "sub" }, bill.matter.description) : null]
    : h("span", { class: "muted" }, "No matter");
  const overdue = bill.payable_cents > 0 && isPastDue(bill.due_at);
  const tr = h("tr", { "data-bill-id": bill.id, class: checked ? "selected" : null },
    h("td", { class: "select-col" }, box, why),
    h("td", { "data-label": "ID" },
      h("a", { href: bill.clio_url, target: "_blank", rel: "noopener", "aria-label": `${bill.number} in Clio (opens in a new tab)` }, bill.number),
      h("span", { class: "sub" }, `Clio id ${bill.id}`),
      h("span", { class: "badges" }, badge(stateLabel(bill.state), STATE_TONES[bill.state]), flags)),
    h("td", { "data-label": "Client" }, bill.client.name),
    h("td", { "data-label": "Matter" }, matter),
    h("td", { "data-label": "Kind" }, kindLabel(bill.kind)),
    h("td", { "data-label": "Total", class: "num" }, money(bill.total_cents, bill.currency)),
    h("td", { "data-label": "Outstanding (Clio)", class: "num" }, money(bill.outstanding_clio_cents, bill.currency)),
    h("td", { "data-label": "Paid (GL)", class: "num" }, money(bill.paid_gl_cents, bill.currency)),
    h("td", { "data-label": "Payable now", class: "num" }, money(bill.payable_cents, bill.currency),
      bill.pending_cents > 0 ? h("span", { class: "sub" }, `${money(bill.pending_cents, bill.currency)} pending`) : null),
    h("td", { "data-label": "Due", class: overdue ? "overdue nowrap" : "nowrap" },
      date(bill.due_at), overdue ? h("span", { class: "sub" }, "Past due") : null),
    h("td", { "data-label": "Last sent" }, bill.last_sent_at ? dateTime(bill.last_sent_at) : h("span", { class: "muted" }, "Never")),
    h("td", { "data-label": "Reminders" }, remindersCell(bill)),
    h("td", { "data-label": "Payment link" }, bill.payment_link_id
      ? h("a", { href: `#/payment-links/${encodeURIComponent(bill.payment_link_id)}`, class: "icon-link",
        "aria-label": `Payment link of ${bill.number}`, title: "Payment link: transactions and refunds" }, linkIcon())
      : h("span", { class: "muted", title: "Made the first time the bill is sent" }, "–")));
  return { tr, box };
}

// --- reminders (X3): the next one, pause and resume, and the bill's sent emails ------------------

function remindersCell(bill) {
  const cell = h("div", { class: "reminders-cell" });
  show();
  return cell;

  function show(message) {
    const sent = Boolean(bill.last_sent_at);
    const open = bill.state === "awaiting_payment" && sent;
    let status;
    if (!sent) status = h("span", { class: "muted" }, "Not sent yet");
    else if (bill.reminders_paused) status = badge("Paused", "warn");
    else if (bill.next_reminder_at) status = h("span", {}, `Next ${date(bill.next_reminder_at.slice(0, 10))}`);
    else status = h("span", { class: "muted" }, "None scheduled");
    const toggle = open
      ? h("button", { type: "button", class: "small", "aria-label": `${bill.reminders_paused ? "Resume" : "Pause"} reminders of bill ${bill.id}`,
        onclick: () => flip(toggle) }, bill.reminders_paused ? "Resume" : "Pause")
      : null;
    replace(cell, status, toggle, sent ? history() : null, message ? h("p", { class: "sub", role: "status" }, message) : null);
  }

  async function flip(button) {
    const action = bill.reminders_paused ? "resume" : "pause";
    button.disabled = true;
    try {
      const updated = await sendJson("POST", `/invoices/${encodeURIComponent(bill.id)}/reminders/${action}`);
      Object.assign(bill, updated);
      const said = action === "pause" ? `Reminders of bill ${bill.id} paused.` : `Reminders of bill ${bill.id} resumed.`;
      show(said);
      announce(said);
      cell.querySelector("button")?.focus();
    } catch (err) {
      button.disabled = false;
      show(`Not changed. ${describe(err)}`);
    }
  }

  function history() {
    // A button, not <details>: the screen's only disclosure summary is the status filter's.
    const list = h("div", { class: "sent-history", hidden: true });
    const button = h("button", { type: "button", class: "small link-like", "aria-expanded": "false",
      "aria-label": `Sent emails of bill ${bill.id}` }, "Sent emails");
    button.addEventListener("click", async () => {
      const opening = list.hidden;
      list.hidden = !opening;
      button.setAttribute("aria-expanded", String(opening));
      if (!opening) return;
      replace(list, h("p", { class: "muted" }, "Loading…"));
      try {
        const { items } = await getJson(`/invoices/${encodeURIComponent(bill.id)}/envelopes`);
        replace(list, items.length
          ? h("ol", { class: "plain", "aria-label": `Emails that carried bill ${bill.id}` }, items.map((item) => h("li", { "data-purpose": item.purpose },
            badge(item.label, item.purpose === "reminder" ? "info" : "neutral"), " ", dateTime(item.sent_at),
            sendNote({ id: item.envelope_id, send_note: item.send_note }))))
          : h("p", { class: "muted" }, "No email has carried this bill yet."));
      } catch (err) {
        replace(list, h("p", { class: "warn-text" }, `The sent emails could not be loaded. ${describe(err)}`));
      }
    });
    return [button, list];
  }
}
