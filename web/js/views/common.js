// Pieces several screens share: the not-found and crash screens, and a small per-tab memory of
// bills the user has seen (so Review can name bills by number, not only by Clio id).

import { describe } from "../api.js";
import { errorBox, h, pageTitle, replace } from "../dom.js";

export function notFound(main, path) {
  replace(main, pageTitle("Page not found"),
    h("p", {}, `There is no page at ${path}. `, h("a", { href: "#/invoices" }, "Go to Invoices"), "."));
}

export function crashed(main, err) {
  replace(main, pageTitle("Something went wrong"), errorBox(describe(err) || "This screen could not be shown.",
    () => location.reload()));
}

const BILLS_KEY = "billbridge.bills";

/** Remember bills from a list answer (id -> number, amounts, kind, client), for this tab only. */
export function rememberBills(bills) {
  let known = {};
  try { known = JSON.parse(sessionStorage.getItem(BILLS_KEY) || "{}"); } catch { known = {}; }
  for (const b of bills) {
    known[b.id] = {
      id: b.id, number: b.number, kind: b.kind, currency: b.currency, total_cents: b.total_cents,
      outstanding_clio_cents: b.outstanding_clio_cents, payable_cents: b.payable_cents,
      due_at: b.due_at, clio_url: b.clio_url,
    };
  }
  const ids = Object.keys(known);
  if (ids.length > 2000) for (const id of ids.slice(0, ids.length - 2000)) delete known[id];
  try { sessionStorage.setItem(BILLS_KEY, JSON.stringify(known)); } catch { /* storage full: names fall back to ids */ }
}

export function knownBill(id) {
  try { return JSON.parse(sessionStorage.getItem(BILLS_KEY) || "{}")[id] || null; } catch { return null; }
}

/** The envelope's bills as the API answers them (`envelope.bills`), in bill_ids order; a bill
 * the store no longer holds falls back to what this tab saw on Invoices, else to its id. */
export function envelopeBills(envelope) {
  const byId = Object.fromEntries((envelope.bills || []).map((b) => [b.id, b]));
  return envelope.bill_ids.map((id) => byId[id] || knownBill(id) || { id, number: `Bill ${id}` });
}

/** The PDF's file name as the email attaches it (the API's `attachment_name`). */
export const attachmentName = (bill) => bill.attachment_name || `${String(bill.number).replace(/[^A-Za-z0-9._-]+/g, "-")}.pdf`;

/** The envelope's bills by number: "INV-00037, TR-00039". */
export const billNames = (envelope) => envelopeBills(envelope).map((b) => b.number).join(", ");

/** "INV-00040" when the bill was seen on Invoices, else "Bill 10040". */
export function billName(id) {
  const bill = knownBill(id);
  return bill ? bill.number : `Bill ${id}`;
}
