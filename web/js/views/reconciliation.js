// Reconciliation (X2): what to do about our money that Clio does not show: payments and
// refunds to record there, overpayments to refund, money on void or deleted bills to refund or
// apply; the same report as CSV.

import { describe, getBlob, getJson, sendJson } from "../api.js";
import { announce, emptyBox, errorBox, h, loadingBox, pageTitle, replace } from "../dom.js";
import { accountLabel, date, dateTime, methodLabel, money } from "../format.js";

const COLUMNS = ["Bill", "Client", "Date", "Method", "Account", "Reference", "Paid (GL)", "Refunded",
  "Shown in Clio", "Amount", "Action", "Recorded in Clio"];
const NUMERIC = ["Paid (GL)", "Refunded", "Shown in Clio", "Amount"];

export async function render({ main, signal }) {
  const generated = h("p", { class: "sync-status" });
  const download = h("button", { type: "button", onclick: () => csv() }, "Download CSV");
  const downloadError = h("div", {});
  const content = h("div", {});
  replace(main,
    h("div", { class: "page-head" }, pageTitle("Reconciliation"), h("div", { class: "sync" }, generated, download)),
    h("p", { class: "lead" }, "Clio's API cannot record payments, so record these in Clio: open the bill, then Record Payment (or the refund) for the amount shown. Money a bill cannot take (paid twice over, or the bill was voided or deleted) is listed to refund to the client or to apply elsewhere. A line leaves this list once Clio, or a refund, settles it: mark a line recorded in Clio when you have, and it says so until the next sync shows Clio caught up."),
    downloadError, content);
  replace(content, loadingBox("Loading the report…"));
  await load();

  async function load() {
    let report;
    try {
      report = await getJson("/reconciliation", { signal });
    } catch (err) {
      if (err.name === "AbortError") return;
      replace(content, errorBox(`The report could not be loaded. ${describe(err)}`, () => load()));
      return;
    }
    generated.textContent = report.generated_at ? `Generated ${dateTime(report.generated_at)}` : "";
    if (!report.items.length) {
      replace(content, emptyBox("Nothing to do.", "Clio shows every payment and refund taken through BillBridge, and no bill holds money it cannot take."));
      return;
    }
    replace(content, h("div", { class: "table-wrap" }, h("table", { class: "data reconciliation" },
      h("caption", { class: "visually-hidden" }, "Bills to update in Clio"),
      h("thead", {}, h("tr", {}, COLUMNS.map((c) => h("th", { scope: "col", class: NUMERIC.includes(c) ? "num" : null }, c)))),
      h("tbody", {}, report.items.map((item) => row(item))))));
  }

  function row(item) {
    const c = item.currency;
    const txns = item.transactions || [];
    const many = (render) => txns.length ? h("ul", { class: "plain" }, txns.map((t) => h("li", {}, render(t)))) : h("span", { class: "muted" }, "–");
    const recordedCell = h("td", { "data-label": "Recorded in Clio" });
    showRecorded(recordedCell, item);
    return h("tr", { "data-bill-id": item.bill_id, "data-action": item.action },
      h("td", { "data-label": "Bill", class: "nowrap" }, h("a", { href: item.clio_url, target: "_blank", rel: "noopener",
        "aria-label": `${item.number} in Clio (opens in a new tab)` }, item.number)),
      h("td", { "data-label": "Client" }, item.client_name),
      h("td", { "data-label": "Date", class: "nowrap" }, many((t) => date(t.date.slice(0, 10)))),
      h("td", { "data-label": "Method" }, many((t) => methodLabel(t.method))),
      h("td", { "data-label": "Account" }, many((t) => accountLabel(t.account))),
      h("td", { "data-label": "Reference" }, many((t) => h("code", {}, t.reference))),
      h("td", { "data-label": "Paid (GL)", class: "num" }, money(item.paid_gl_cents, c)),
      h("td", { "data-label": "Refunded", class: "num" }, money(item.refunded_cents, c)),
      h("td", { "data-label": "Shown in Clio", class: "num" }, money(item.clio_reflected_cents, c)),
      h("td", { "data-label": "Amount", class: "num" }, money(item.amount_cents, c)),
      h("td", { "data-label": "Action" }, item.note),
      recordedCell);
  }

  function showRecorded(cell, item) {
    if (!["record_payment", "record_refund"].includes(item.action)) {
      replace(cell, h("span", { class: "muted" }, "Not a Clio entry"));
      return;
    }
    const note = item.recorded_in_clio;
    if (note) {
      const who = note.by_email || note.by_user_id;
      const status = note.status === "not_in_clio_at_last_sync"
        ? h("span", { class: "sub warn-text" }, "The last sync still found Clio's balance unchanged: check the entry in Clio.")
        : h("span", { class: "sub" }, "Waiting for the next sync to confirm it.");
      replace(cell, h("span", { class: "recorded" }, `Recorded in Clio by ${who} on ${dateTime(note.at)}.`), status);
      return;
    }
    const error = h("div", {});
    const button = h("button", { type: "button", class: "small",
      "aria-label": `Mark ${item.number}'s ${item.action === "record_refund" ? "refund" : "payment"} of ${money(item.amount_cents, item.currency)} as recorded in Clio` },
    "Mark recorded in Clio");
    button.addEventListener("click", async () => {
      button.disabled = true;
      replace(error);
      try {
        const updated = await sendJson("POST", "/reconciliation/recorded",
          { bill_id: item.bill_id, action: item.action, amount_cents: item.amount_cents }, { signal });
        showRecorded(cell, updated);
        announce(`${item.number} marked as recorded in Clio.`);
      } catch (err) {
        if (err.name === "AbortError") return;
        button.disabled = false;
        replace(error, h("p", { class: "field-error", role: "alert" }, describe(err)));
      }
    });
    replace(cell, button, error);
  }

  async function csv() {
    replace(downloadError);
    download.disabled = true;
    download.textContent = "Preparing CSV…";
    try {
      const blob = await getBlob("/reconciliation", { query: { format: "csv" }, accept: "text/csv", signal });
      const url = URL.createObjectURL(blob);
      const today = new Date().toISOString().slice(0, 10);
      const a = h("a", { href: url, download: `billbridge-reconciliation-${today}.csv`, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      announce("The CSV is downloading.");
    } catch (err) {
      if (err.name === "AbortError") return;
      replace(downloadError, errorBox(`The CSV could not be downloaded. ${describe(err)}`));
    } finally {
      download.disabled = false;
      download.textContent = "Download CSV";
    }
  }
}
