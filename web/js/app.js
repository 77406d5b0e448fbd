// The web UI's entry point: screens by hash route, the header, and the post-connect banner.

import { AuthNotConfigured, authorization, whoAmI } from "./auth.js";
import { h, replace } from "./dom.js";
import { route, start } from "./router.js";

route(/^\/invoices$/, "invoices", () => import("./views/invoices.js"));
route(/^\/review\/(?<batchId>[^/]+)$/, "invoices", () => import("./views/review.js"));
route(/^\/review\/(?<batchId>[^/]+)\/all$/, "invoices", () => import("./views/send-all.js"));
route(/^\/payment-links\/(?<linkId>[^/]+)$/, "invoices", () => import("./views/payment-link.js"));
route(/^\/reconciliation$/, "reconciliation", () => import("./views/reconciliation.js"));
route(/^\/settings$/, "settings", () => import("./views/settings.js"));

function banner() {
  // The Clio OAuth callback lands here with ?clio=connected (WebBaseUrl in template.yaml).
  const params = new URLSearchParams(location.search);
  if (params.get("clio") !== "connected") return;
  const slot = document.getElementById("banner");
  const close = h("button", { type: "button", class: "link-button", onclick: () => slot.replaceChildren() }, "Dismiss");
  replace(slot, h("div", { class: "banner", role: "status" },
    h("p", {}, "Clio is connected. Your bills are being imported and appear on Invoices as they arrive."), close));
  history.replaceState(null, "", `${location.pathname}${location.hash || "#/invoices"}`);
}

document.querySelector(".skip-link").addEventListener("click", (event) => {
  event.preventDefault(); // the hash is the router's
  document.getElementById("main").focus();
});

try {
  authorization(); // fails here, once, when config.js names no usable sign-in
  document.getElementById("who").textContent = whoAmI();
  banner();
  start();
} catch (err) {
  const main = document.getElementById("main");
  replace(main, h("div", { class: "error-box", role: "alert" },
    h("h1", {}, "BillBridge cannot start"),
    h("p", {}, err instanceof AuthNotConfigured ? err.message : String(err))));
}
