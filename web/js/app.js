// The web UI's entry point: screens by hash route, the header, and the Clio banners (just
// connected; not connected or must reconnect, with the button that connects).

import { describe, getJson, toSignIn } from "./api.js";
import { AuthNotConfigured, authMode, currentUser, isAdmin, signOut, signedIn, whoAmI } from "./auth.js";
import { h, replace } from "./dom.js";
import { navigate, route, setGuard, start } from "./router.js";

route(/^\/invoices$/, "invoices", () => import("./views/invoices.js"));
route(/^\/review\/(?<batchId>[^/]+)$/, "invoices", () => import("./views/review.js"));
route(/^\/review\/(?<batchId>[^/]+)\/all$/, "invoices", () => import("./views/send-all.js"));
route(/^\/payment-links\/(?<linkId>[^/]+)$/, "invoices", () => import("./views/payment-link.js"));
route(/^\/reconciliation$/, "reconciliation", () => import("./views/reconciliation.js"));
route(/^\/settings$/, "settings", () => import("./views/settings.js"));
route(/^\/onboarding$/, "onboarding", () => import("./views/onboarding.js"));
route(/^\/users$/, "users", () => import("./views/users.js"), { admin: true });
route(/^\/audit$/, "audit", () => import("./views/audit.js"), { admin: true });
route(/^\/account$/, "account", () => import("./views/account.js"));
route(/^\/sign-in$/, "sign-in", () => import("./views/sign-in.js"), { open: true });
route(/^\/sign-up$/, "sign-up", () => import("./views/sign-up.js"), { open: true });

async function connectClio(button, message) {
  // GET /clio/connect answers a redirect that needs our Authorization header, which a link
  // cannot send: ask for the address as JSON, then go there. That same answer sets the
  // connect cookie (HttpOnly, for the callback's path only): the callback Clio redirects this
  // browser to accepts the connect only from the browser holding it.
  button.disabled = true;
  try {
    const { authorize_url: url } = await getJson("/clio/connect");
    location.assign(url);
  } catch (err) {
    message.textContent = describe(err);
    button.disabled = false;
  }
}

async function clioStatusBanner() {
  let status;
  try {
    status = (await getJson("/clio/status")).status;
  } catch {
    return; // the screens report an unreachable API themselves
  }
  if (status === "connected") return;
  const slot = document.getElementById("banner");
  const message = h("p", { class: "banner-error", role: "alert" });
  const button = h("button", { type: "button", class: "primary", onclick: () => connectClio(button, message) },
    status === "reconnect_needed" ? "Reconnect Clio" : "Connect Clio");
  replace(slot, h("div", { class: "banner banner-warn", role: "region", "aria-label": "Clio connection" },
    h("p", {}, status === "reconnect_needed"
      ? "Clio stopped accepting BillBridge's access. Reconnect to keep your bills up to date."
      : "Connect your Clio account to import your bills."),
    button, message));
}

/** "the Clio account Smith LLP, as Jo Smith (jo@smith.example)": who Clio says approved. */
export function connectedAs(status) {
  const account = status.clio_account_name ? `the Clio account ${status.clio_account_name}` : "a Clio account";
  if (!status.clio_user_name) return account;
  const email = status.clio_user_email ? ` (${status.clio_user_email})` : "";
  return `${account}, as ${status.clio_user_name}${email}`;
}

async function connectedBanner(slot) {
  // Which Clio account and user was connected, so staff can see at once when someone else's
  // Clio account approved the connect.
  let status = null;
  try {
    status = await getJson("/clio/status");
  } catch {
    status = null; // the screens report an unreachable API themselves
  }
  const who = status && status.status === "connected" ? connectedAs(status) : "a Clio account";
  const close = h("button", { type: "button", class: "link-button", onclick: () => slot.replaceChildren() }, "Dismiss");
  replace(slot, h("div", { class: "banner", role: "status", "aria-label": "Clio connected" },
    h("div", {},
      h("p", {}, `Clio is connected: ${who}. Your bills are being imported and appear on Invoices as they arrive.`),
      h("p", { class: "banner-note" }, "Not the right Clio account? Sign in to Clio as the right user and connect again.")),
    close));
}

function banner() {
  // The Clio OAuth callback lands here with ?clio=connected (WebBaseUrl in template.yaml).
  const params = new URLSearchParams(location.search);
  if (params.get("clio") !== "connected") {
    clioStatusBanner();
    return;
  }
  connectedBanner(document.getElementById("banner"));
  history.replaceState(null, "", `${location.pathname}${location.hash || "#/invoices"}`);
}

document.querySelector(".skip-link").addEventListener("click", (event) => {
  event.preventDefault(); // the hash is the router's
  document.getElementById("main").focus();
});

/** The header once signed in: who, their role's screens, and Sign out. */
export async function showSignedIn() {
  const me = await currentUser(getJson);
  const who = document.getElementById("who");
  const out = authMode() === "cognito"
    ? h("button", { type: "button", class: "link-button", onclick: async () => {
      await signOut();
      showSignedOut();
      navigate("#/sign-in");
    } }, "Sign out")
    : null;
  replace(who, h("span", { "data-testid": "signed-in-as" }, whoAmI()), out ? " " : null, out);
  for (const item of document.querySelectorAll("[data-admin-only]")) item.hidden = !isAdmin();
  for (const item of document.querySelectorAll("[data-signed-in-only]")) item.hidden = false;
  if (!bannerShown) { bannerShown = true; banner(); }
  return me;
}

let bannerShown = false;

function showSignedOut() {
  document.getElementById("who").replaceChildren();
  document.getElementById("banner").replaceChildren();
  bannerShown = false;
  for (const item of document.querySelectorAll("[data-admin-only], [data-signed-in-only]")) item.hidden = true;
}

// Every screen but sign-in and sign-up needs a signed-in user; an admin's screens an admin.
setGuard(async (screen) => {
  if (!signedIn()) {
    showSignedOut();
    toSignIn();
    return false;
  }
  try {
    await showSignedIn();
  } catch (err) {
    if (!signedIn()) return false; // the API refused the session: api.js sent us to sign in
    throw err;
  }
  if (screen.admin && !isAdmin()) {
    const main = document.getElementById("main");
    replace(main, h("div", { class: "error-box", role: "alert" },
      h("h1", { tabindex: "-1", "data-page-title": true }, "Admins only"),
      h("p", {}, "Only an admin of your firm can open this screen.")));
    return false;
  }
  return true;
});

try {
  authMode(); // fails here, once, when config.js names no usable sign-in
  if (!signedIn()) showSignedOut();
  start();
} catch (err) {
  const main = document.getElementById("main");
  replace(main, h("div", { class: "error-box", role: "alert" },
    h("h1", {}, "BillBridge cannot start"),
    h("p", {}, err instanceof AuthNotConfigured ? err.message : String(err))));
}
