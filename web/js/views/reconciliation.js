// Reconciliation (X2): what to do about our money that Clio does not show: payments and
// refunds to record there, overpayments to refund, money on void or deleted bills to refund or
// apply; the same report as CSV.

import { describe, getBlob, getJson } from "../api.js";
import { announce, emptyBox, errorBox, h, loadingBox, pageTitle, replace } from "../dom.js";
import { dateTime, money } from "../format.js";

export async function render({ main, signal }) {
  const generated = h("p", { class: "sync-status" });
  const download = h("button", { type: "button", onclick: () => csv() }, "Download CSV");
  const downloadError = h("div", {});
  const content = h("div", {});
  replace(main,
    h("div", { class: "page-head" }, pageTitle("Reconciliation"), h("div", { class: "sync" }, generated, download)),
    h("p", { class: "lead" }, "Clio's API cannot record payments, so record these in Clio: open the bill, then Record Payment (or the refund) for the amount shown. Money a bill cannot take (paid twice over, or the bill was voided or deleted) is listed to refund to the client or to apply elsewhere. A line leaves this list once Clio, or a refund, settles it."),
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
    replace(content, h("div", { class: "table-wrap" }, h("table", { class: "data" },
      h("caption", { class: "visually-hidden" }, "Bills to update in Clio"),
      h("thead", {}, h("tr", {}, ["Bill", "Client", "Paid (GL)", "Refunded", "Shown in Clio", "Amount", "Action"]
        .map((c, i) => h("th", { scope: "col", class: i >= 2 && i <= 5 ? "num" : null }, c)))),
      h("tbody", {}, report.items.map((item) => h("tr", {},
        h("td", { "data-label": "Bill" }, h("a", { href: item.clio_url, target: "_blank", rel: "noopener",
          "aria-label": `${item.number} in Clio (opens in a new tab)` }, item.number)),
        h("td", { "data-label": "Client" }, item.client_name),
        h("td", { "data-label": "Paid (GL)", class: "num" }, money(item.paid_gl_cents, item.currency)),
        h("td", { "data-label": "Refunded", class: "num" }, money(item.refunded_cents, item.currency)),
        h("td", { "data-label": "Shown in Clio", class: "num" }, money(item.clio_reflected_cents, item.currency)),
        h("td", { "data-label": "Amount", class: "num" }, money(item.amount_cents, item.currency)),
        h("td", { "data-label": "Action" }, item.note)))))));
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
