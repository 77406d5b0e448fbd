// The audit trail (A4, admin): who sent, refunded or changed what, and when, newest first.
// Filters by what was done and by who did it, over the entries loaded so far ("Load more"
// reads the next page).

import { describe, getJson } from "../api.js";
import { emptyBox, errorBox, h, loadingBox, newId, pageTitle, replace } from "../dom.js";
import { dateTime, money } from "../format.js";

const ACTIONS = {
  "envelope.sent": "Sent an envelope",
  "refund.created": "Refunded a payment",
  "settings.updated": "Changed settings",
  "payment_account.updated": "Changed a payment account",
  "user.invited": "Invited a user",
  "user.role_changed": "Changed a user's role",
  "user.removed": "Removed a user",
  "firm.created": "Created the firm",
};

/** What the entry's object says, in a sentence. */
export function detail(item) {
  const o = item.object || {};
  switch (item.action) {
    case "envelope.sent":
      return o.envelope_id
        ? `Envelope ${o.envelope_id} to ${o.to || "the client"}${o.bill_ids ? `, bills ${o.bill_ids.join(", ")}` : ""}.`
        : `Every draft of batch ${o.batch_id}.`;
    case "refund.created":
      return `${money(o.amount_cents, o.currency || "USD")} of payment ${o.transaction_id} (payment link ${o.link_id}).`;
    case "settings.updated":
      return o.fields && o.fields.length ? `Changed: ${o.fields.join(", ")}.` : "Saved with no change.";
    case "user.invited":
      return `${o.email} as ${o.role}.`;
    case "user.role_changed":
      return `${o.email}: ${o.from} to ${o.to}.`;
    case "user.removed":
      return `${o.email} (${o.role}).`;
    case "firm.created":
      return `${o.firm_name || o.firm_id}.`;
    default:
      return Object.entries(o).map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join(", ");
  }
}

export async function render({ main, signal }) {
  const items = [];
  let cursor = null;
  const actionId = newId("action");
  const personId = newId("person");
  const action = h("select", { id: actionId },
    h("option", { value: "" }, "Everything"),
    Object.entries(ACTIONS).map(([value, label]) => h("option", { value }, label)));
  const person = h("select", { id: personId }, h("option", { value: "" }, "Everyone"));
  const list = h("div", {});
  const more = h("button", { type: "button", hidden: true }, "Load more");
  const status = h("p", { class: "muted", role: "status" });
  replace(main, h("div", { class: "page-head" }, pageTitle("Audit trail")),
    h("div", { class: "card filters", role: "group", "aria-label": "Filters" },
      h("div", { class: "inline-fields" },
        h("div", { class: "field" }, h("label", { for: actionId }, "What"), action),
        h("div", { class: "field" }, h("label", { for: personId }, "Who"), person))),
    list, status, h("div", { class: "actions" }, more));

  function people() {
    const chosen = person.value;
    const emails = [...new Set(items.map((i) => i.actor.email || i.actor.user_id))].sort();
    replace(person, h("option", { value: "" }, "Everyone"), emails.map((e) => h("option", { value: e }, e)));
    person.value = emails.includes(chosen) ? chosen : "";
  }

  function show() {
    const shown = items.filter((i) => (!action.value || i.action === action.value)
      && (!person.value || (i.actor.email || i.actor.user_id) === person.value));
    status.textContent = `${shown.length} of ${items.length} entries loaded${cursor ? "; older ones are on the next page" : ""}.`;
    if (!shown.length) { replace(list, emptyBox("Nothing here.", items.length ? "No loaded entry matches the filters." : "Sends, refunds and changes show here as they happen.")); return; }
    replace(list, h("div", { class: "table-wrap" }, h("table", { class: "data audit" },
      h("thead", {}, h("tr", {}, ["When", "Who", "What", "Details"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, shown.map((i) => h("tr", {},
        h("td", { "data-label": "When" }, dateTime(i.at)),
        h("td", { "data-label": "Who" }, i.actor.email || i.actor.user_id),
        h("td", { "data-label": "What" }, ACTIONS[i.action] || i.action),
        h("td", { "data-label": "Details" }, detail(i))))))));
  }

  async function load() {
    more.disabled = true;
    if (!items.length) replace(list, loadingBox("Loading the audit trail…"));
    try {
      const page = await getJson("/audit", { query: { cursor }, signal });
      items.push(...page.items);
      cursor = page.next_cursor;
      more.hidden = !cursor;
      people();
      show();
    } catch (err) {
      if (err.name === "AbortError") return;
      replace(list, errorBox(`The audit trail could not be loaded. ${describe(err)}`, load));
    } finally {
      more.disabled = false;
    }
  }

  action.addEventListener("change", show);
  person.addEventListener("change", show);
  more.addEventListener("click", load);
  await load();
}
