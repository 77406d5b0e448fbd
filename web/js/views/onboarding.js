// Get started: the onboarding checklist (GET /onboarding). Each step comes from the firm's
// real state (Clio connected, the trust and operating Stripe accounts ready, the sender and
// its SES identity), or from what the person marked (templates reviewed, a step skipped); the
// server remembers it, so the screen opens where they left off. Stripe's hosted onboarding
// sends the person back here: `?stripe=return&account=…` (show what Stripe now says, waiting
// a little for its account.updated) or `?stripe=refresh&account=…` (the link expired: a new
// one at once).

import { describe, getJson, pollUntil, sendJson } from "../api.js";
import { announce, badge, errorBox, h, loadingBox, pageTitle, replace } from "../dom.js";
import { replaceQuery } from "../router.js";

const STATUS_TEXT = { done: "Done", todo: "To do", skipped: "Skipped" };
const STATUS_TONE = { done: "good", todo: "neutral", skipped: "warn" };
const ACCOUNT_OF_STEP = { trust_account: "trust", operating_account: "operating" };
const IDENTITY_TEXT = {
  verified: "verified",
  pending: "waiting for verification",
  failed: "verification failed",
  not_found: "not set up in SES",
};

export async function render({ main, query, signal }) {
  const notice = h("div", { role: "status" });
  const content = h("div", {});
  replace(main,
    h("div", { class: "page-head" }, pageTitle("Get started")),
    h("p", { class: "lead" }, "Set up BillBridge in a few steps. Each one is checked against the real thing (Clio, Stripe, email), and you can come back at any time: this page remembers where you are."),
    notice, content);
  replace(content, loadingBox("Loading your checklist…"));

  const stripe = query.get("stripe");
  const returned = query.get("account");
  if (stripe === "refresh" && (returned === "trust" || returned === "operating")) {
    // Stripe's link expired or was used: ask for a new one and go straight back.
    replace(notice, h("p", {}, "That Stripe link had expired; opening a new one…"));
    await openStripe(returned, notice);
    return;
  }

  let checklist;
  try {
    checklist = await getJson("/onboarding", { signal });
    if (stripe === "return" && ACCOUNT_OF_STEP[`${returned}_account`]) {
      replaceQuery(new URLSearchParams());
      replace(notice, h("p", {}, "Checking with Stripe…"));
      // The account.updated webhook may land a moment after the person does.
      const found = await pollUntil(
        () => getJson("/onboarding", { signal }),
        (c) => stepOf(c, `${returned}_account`).status === "done",
        { interval: 700, timeout: 15000, signal });
      checklist = found.result;
      const account = checklist.payment_accounts.find((a) => a.account === returned);
      replace(notice, h("p", { class: account.status === "ready" ? "notice good" : "notice warn" }, account.message));
      announce(account.message);
    }
  } catch (err) {
    if (err.name === "AbortError") return;
    replace(content, errorBox(`The checklist could not be loaded. ${describe(err)}`, () => location.reload()));
    return;
  }
  show(checklist);

  function show(list) {
    replace(content, h("ol", { class: "checklist", "aria-label": "Onboarding steps" },
      list.steps.map((step) => stepItem(list, step))));
  }

  function stepItem(list, step) {
    const current = list.current_step === step.id;
    const message = h("p", { class: "banner-error", role: "alert" });
    const actions = h("div", { class: "step-actions" }, stepActions(list, step, message));
    return h("li", { class: `step step-${step.status}`, "aria-current": current ? "step" : null, "data-step": step.id },
      h("h2", {}, step.title, " ", badge(STATUS_TEXT[step.status], STATUS_TONE[step.status])),
      h("p", { class: "step-detail" }, step.detail),
      stepFacts(list, step),
      actions, message);
  }

  function stepFacts(list, step) {
    const kind = ACCOUNT_OF_STEP[step.id];
    if (kind) {
      const account = list.payment_accounts.find((a) => a.account === kind);
      if (!account.requirements.length || account.status === "ready") return null;
      return h("details", {}, h("summary", {}, `What Stripe still needs (${account.requirements.length})`),
        h("ul", { class: "requirements" }, account.requirements.map((r) => h("li", {}, h("code", {}, r)))));
    }
    if (step.id === "sender") {
      const s = list.sender;
      return h("dl", { class: "facts" },
        h("dt", {}, "Sender name"), h("dd", {}, s.sender_name || "Not set (the firm name is used)"),
        h("dt", {}, "Reply-to"), h("dd", {}, s.reply_to || "Not set"),
        h("dt", {}, "Sent from"), h("dd", {}, `${s.sender_address || "No address configured"}: ${IDENTITY_TEXT[s.identity_status]}`));
    }
    return null;
  }

  function stepActions(list, step, message) {
    const buttons = [];
    if (step.id === "clio" && step.status !== "done") {
      const connect = h("button", { type: "button", class: "primary", onclick: () => connectClio(connect, message) },
        list.clio === "connected" ? "Reconnect Clio" : "Connect Clio");
      buttons.push(connect);
    }
    const kind = ACCOUNT_OF_STEP[step.id];
    if (kind && step.status !== "done") {
      const account = list.payment_accounts.find((a) => a.account === kind);
      const label = account.status === "not_started" ? `Set up the ${kind} account with Stripe` : `Continue the ${kind} account with Stripe`;
      const go = h("button", { type: "button", class: "primary", onclick: () => { go.disabled = true; openStripe(kind, message).finally(() => { go.disabled = false; }); } }, label);
      buttons.push(go);
    }
    if (step.id === "sender" || step.id === "templates") {
      buttons.push(h("a", { href: "#/settings", class: step.status === "todo" && step.id === "sender" ? "button primary" : "button" }, "Open Settings"));
    }
    if (step.can_mark_done && step.status !== "done") {
      buttons.push(markButton(step, "done", "Mark as reviewed", message, "primary"));
    }
    if (step.id === "done") {
      buttons.push(h("a", { href: "#/invoices", class: step.status === "done" ? "button primary" : "button" }, "Go to Invoices"));
    } else if (step.status === "todo") {
      buttons.push(markButton(step, "skipped", "Skip for now", message));
    } else if (step.decided_by === "person") {
      buttons.push(markButton(step, "todo", step.status === "skipped" ? "Undo skip" : "Not reviewed yet", message));
    }
    return buttons;
  }

  function markButton(step, status, label, message, tone = null) {
    const button = h("button", { type: "button", class: tone, onclick: async () => {
      button.disabled = true;
      try {
        const list = status === "done"
          ? await sendJson("POST", "/onboarding/templates/reviewed")
          : await sendJson("POST", `/onboarding/steps/${step.id}`, { status });
        show(list);
        announce(`${step.title}: ${STATUS_TEXT[stepOf(list, step.id).status]}.`);
      } catch (err) {
        message.textContent = describe(err);
        button.disabled = false;
      }
    } }, label);
    return button;
  }
}

function stepOf(list, id) {
  return list.steps.find((s) => s.id === id);
}

async function openStripe(account, message) {
  try {
    const link = await sendJson("POST", "/payment-accounts/onboarding", { account });
    location.assign(link.onboarding_url);
  } catch (err) {
    message.textContent = `Stripe onboarding could not be opened. ${describe(err)}`;
  }
}

async function connectClio(button, message) {
  // As the Clio banner does: the connect address comes as JSON (a link cannot send our
  // Authorization header), and the same answer sets the connect cookie for the callback.
  button.disabled = true;
  try {
    const { authorize_url: url } = await getJson("/clio/connect");
    location.assign(url);
  } catch (err) {
    message.textContent = describe(err);
    button.disabled = false;
  }
}
