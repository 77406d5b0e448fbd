// A payment link (P6, P7): the bills it covers, and every payment and refund made through it,
// with a Refund action on settled payments.

import { describe, getJson } from "../api.js";
import { isAdmin } from "../auth.js";
import { announce, badge, emptyBox, errorBox, h, loadingBox, pageTitle, replace } from "../dom.js";
import { accountLabel, dateTime, flagLabel, kindLabel, methodLabel, money, plural } from "../format.js";
import { openRefund } from "./refund-dialog.js";

const STATUS_TONES = { pending: "info", succeeded: "good", failed: "bad" };
const STATUS_LABELS = { pending: "Pending", succeeded: "Succeeded", failed: "Failed" };

export async function render({ main, params, signal }) {
  const linkId = params.linkId;
  const head = h("div", {});
  const notice = h("div", { class: "notice-slot" });
  const content = h("div", {});
  const title = pageTitle("Payment link");
  replace(main,
    h("p", { class: "back-link" }, h("a", { href: "#/invoices" }, "← Back to the bill list")),
    h("div", { class: "page-head" }, title), head, notice, content);
  replace(content, loadingBox("Loading the payment link…"));
  await load();

  async function load() {
    let link;
    try {
      link = await getJson(`/payment-links/${encodeURIComponent(linkId)}`, { signal });
    } catch (err) {
      if (err.name === "AbortError") return;
      replace(content, err.status === 404
        ? emptyBox("This payment link does not exist.", "Payment links are made the first time a bill is sent.")
        : errorBox(`The payment link could not be loaded. ${describe(err)}`, () => load()));
      return;
    }
    show(link);
  }

  function show(link) {
    // Named by what people know: the bills' numbers and the client, never the link's id.
    const bills = link.bills || [];
    const numbers = bills.length ? bills.map((b) => b.number).join(", ") : `${plural(link.bill_ids.length, "bill")}`;
    const client = bills[0]?.client?.name;
    const text = `Payment link for ${numbers}${client ? ` (${client})` : ""}`;
    title.textContent = text;
    document.title = `${text} · BillBridge`;
    const copy = h("button", { type: "button", class: "small" }, "Copy link");
    copy.addEventListener("click", async () => {
      try { await navigator.clipboard.writeText(link.url); announce("Payment link copied."); copy.textContent = "Copied"; }
      catch { announce("Copying is not allowed here; select the address and copy it."); }
    });
    replace(head, h("p", { class: "link-url" },
      h("span", { class: "muted" }, "The client's pay page: "),
      h("a", { href: link.url, target: "_blank", rel: "noopener" }, link.url), " ", copy));
    const names = Object.fromEntries(bills.map((b) => [b.id, b.number]));
    replace(content,
      h("section", { "aria-labelledby": "bills-title" },
        h("h2", { id: "bills-title" }, "Bills"),
        bills.length ? billsTable(bills) : h("p", {}, `Bills: ${(link.bill_ids || []).join(", ")}`)),
      h("section", { "aria-labelledby": "txn-title" },
        h("h2", { id: "txn-title" }, "Transactions"),
        transactions(link, names)),
      h("p", { class: "hint" }, "Refunds are not written to Clio. After a refund, record it on the bill in Clio; ",
        h("a", { href: "#/reconciliation" }, "Reconciliation"), " lists what to record."));
  }

  function billsTable(bills) {
    return h("div", { class: "table-wrap" }, h("table", { class: "data" },
      h("thead", {}, h("tr", {}, ["Bill", "Client", "Kind", "Total", "Outstanding (Clio)", "Paid (GL)", "Payable"]
        .map((c, i) => h("th", { scope: "col", class: i >= 3 ? "num" : null }, c)))),
      h("tbody", {}, bills.map((b) => h("tr", {},
        h("td", { "data-label": "Bill" },
          h("a", { href: b.clio_url, target: "_blank", rel: "noopener", "aria-label": `${b.number} in Clio (opens in a new tab)` }, b.number),
          h("span", { class: "badges" }, (b.flags || []).map((f) => badge(flagLabel(f), "warn")))),
        h("td", { "data-label": "Client" }, b.client?.name || ""),
        h("td", { "data-label": "Kind" }, kindLabel(b.kind)),
        h("td", { "data-label": "Total", class: "num" }, money(b.total_cents, b.currency)),
        h("td", { "data-label": "Outstanding (Clio)", class: "num" }, money(b.outstanding_clio_cents, b.currency)),
        h("td", { "data-label": "Paid (GL)", class: "num" }, money(b.paid_gl_cents, b.currency)),
        h("td", { "data-label": "Payable", class: "num" }, money(b.payable_cents, b.currency)))))));
  }

  function transactions(link, names) {
    const txns = [...(link.transactions || [])].sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));
    if (!txns.length) {
      return emptyBox("No payments yet.", "When the client pays through this link, the payment shows here.");
    }
    return h("div", { class: "table-wrap" }, h("table", { class: "data transactions" },
      h("thead", {}, h("tr", {}, ["Date", "Type", "Amount", "Method", "Status", "Allocation", "Refunded", "Actions"]
        .map((c) => h("th", { scope: "col", class: ["Amount", "Refunded"].includes(c) ? "num" : null }, c)))),
      h("tbody", {}, txns.map((t) => row(link, t, names)))));
  }

  // Stripe's dispute statuses in words (an inquiry moves no money; a chargeback does).
  function disputeBadge(status) {
    return {
      warning_needs_response: ["Inquiry", "warn"], warning_under_review: ["Inquiry", "warn"],
      warning_closed: ["Inquiry closed", "neutral"], prevented: ["Dispute prevented", "neutral"],
      needs_response: ["Chargeback open", "bad"], under_review: ["Chargeback open", "bad"],
      won: ["Chargeback won", "good"], lost: ["Chargeback lost", "bad"],
    }[status] || ["Disputed", "bad"];
  }

  function row(link, t, names) {
    const currency = t.currency || link.currency;
    const isPayment = t.kind === "payment";
    const what = isPayment ? "Payment" : "Refund";
    return h("tr", { "data-txn-id": t.id },
      h("td", { "data-label": "Date" }, dateTime(t.created_at),
        t.updated_at && t.updated_at !== t.created_at ? h("span", { class: "sub" }, `Updated ${dateTime(t.updated_at)}`) : null),
      h("td", { "data-label": "Type" }, what, t.account ? h("span", { class: "sub" }, accountLabel(t.account)) : null,
        t.reference ? h("span", { class: "sub" }, `Ref. ${t.reference}`) : null),
      h("td", { "data-label": "Amount", class: "num" }, `${isPayment ? "" : "−"}${money(t.amount_cents, currency)}`,
        t.surcharge_note ? h("span", { class: "sub surcharge-note" }, t.surcharge_note) : null),
      h("td", { "data-label": "Method" }, methodLabel(t.method)),
      h("td", { "data-label": "Status" }, badge(STATUS_LABELS[t.status] || t.status, STATUS_TONES[t.status]),
        t.disputed ? badge(...disputeBadge(t.dispute_status)) : null,
        t.status === "pending" && t.method === "ach" && isPayment ? h("span", { class: "sub" }, "Bank payment settling") : null,
        t.status === "failed" && t.failure_reason ? h("span", { class: "sub warn-text" }, t.failure_reason) : null),
      h("td", { "data-label": "Allocation" }, h("ul", { class: "allocations" }, (t.allocations || []).map((a) =>
        h("li", {}, `${names[a.bill_id] || `Bill ${a.bill_id}`} · ${accountLabel(a.account)} · ${money(a.amount_cents, currency)}`)))),
      h("td", { "data-label": "Refunded", class: "num" }, isPayment ? money(t.refunded_cents || 0, currency) : "–"),
      h("td", { "data-label": "Actions" }, action(link, t, currency)));
  }

  function action(link, t, currency) {
    if (t.kind !== "payment") return null;
    if (t.status === "pending") return h("span", { class: "sub" }, "Refundable once it settles");
    if (t.status !== "succeeded" || !(t.refundable_cents > 0)) return null;
    // Refunds are an admin's (api.md): staff see the payment, not the action.
    if (!isAdmin()) return h("span", { class: "sub" }, "An admin can refund this");
    const button = h("button", {
      type: "button", class: "small",
      "aria-label": `Refund the ${methodLabel(t.method).toLowerCase()} payment of ${money(t.amount_cents, currency)}`,
    }, "Refund");
    button.addEventListener("click", () => openRefund({
      link, payment: { ...t, currency },
      onDone: (refund) => {
        const withSurcharge = refund.surcharge_note ? ` ${refund.surcharge_note}` : "";
        const text = refund.status === "succeeded"
          ? `Refund of ${money(refund.amount_cents, currency)} made.${withSurcharge}`
          : `Refund of ${money(refund.amount_cents, currency)} started; it shows as pending until the processor confirms it.${withSurcharge}`;
        replace(notice, h("p", { class: "notice good", role: "status" }, text));
        load();
      },
      onRefused: () => load(),
    }));
    return button;
  }
}
