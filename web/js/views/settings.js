// Settings (T1): Aggregate Payment Links, the default Clio Status filter, the firm's name and
// sender, payment reminders (X3), and the email templates (invoice, trust request, reminder)
// with a live preview.

import { describe, getJson, sendJson } from "../api.js";
import { isAdmin } from "../auth.js";
import { announce, errorBox, h, loadingBox, newId, pageTitle, replace, setFieldError, textField } from "../dom.js";
import { BILL_STATES } from "../format.js";
import { MERGE_FIELDS, MIXED_FIELDS, preview } from "./template-preview.js";

const TEMPLATE_KINDS = [
  ["invoice", "Invoice email"],
  ["trust_request", "Trust request email"],
  ["mixed", "Invoices and trust requests together"],
  ["reminder", "Payment reminder email"],
];
const REMINDER_NUMBERS = [
  ["first_after_days", "First reminder, days after the bill was sent", 1, 365],
  ["repeat_every_days", "Then every, in days", 1, 365],
  ["max_count", "At most this many reminders a bill", 1, 12],
];

export async function render({ main, signal }) {
  const content = h("div", {});
  replace(main, h("div", { class: "page-head" }, pageTitle("Settings")), content);
  replace(content, loadingBox("Loading settings…"));
  let settings;
  try {
    settings = await getJson("/settings", { signal });
  } catch (err) {
    if (err.name === "AbortError") return;
    replace(content, errorBox(`Settings could not be loaded. ${describe(err)}`, () => location.reload()));
    return;
  }

  const aggregateId = newId("agg");
  const aggregate = h("input", { type: "checkbox", id: aggregateId, name: "aggregate_payment_links", checked: settings.aggregate_payment_links,
    "aria-describedby": `${aggregateId}-hint` });
  const stateBoxes = BILL_STATES.map(([value, label]) => {
    const id = newId("default-state");
    const input = h("input", { type: "checkbox", id, value, checked: settings.default_states.includes(value) });
    return { input, row: h("div", { class: "check" }, input, h("label", { for: id }, label)) };
  });
  const statesSet = h("fieldset", { name: "default_states", class: "field" },
    h("legend", {}, "Default Clio Status filter"),
    h("p", { class: "hint" }, "The bill states Invoices shows when it opens."),
    h("div", { class: "check-grid" }, stateBoxes.map((b) => b.row)));
  const firmName = textField({ label: "Firm name", name: "firm_name", value: settings.firm_name, hint: "Used as {{ firm_name }} in emails." });
  const senderName = textField({ label: "Sender name", name: "sender_name", value: settings.sender_name, hint: "Shown as who the email is from; empty uses the firm name." });
  const replyTo = textField({ label: "Reply-to address", name: "reply_to", value: settings.reply_to, attrs: { type: "email", autocomplete: "email" }, hint: "Where clients' replies go." });
  const editors = TEMPLATE_KINDS.map(([kind, title]) => templateEditor(kind, title, settings.templates[kind], () => firmName.control.value));
  firmName.control.addEventListener("input", () => editors.forEach((e) => e.refresh()));

  const reminders = settings.reminders || { enabled: false, first_after_days: 15, repeat_every_days: 15, max_count: 3 };
  const remindId = newId("remind");
  const remindOn = h("input", { type: "checkbox", id: remindId, name: "reminders.enabled", checked: reminders.enabled, "aria-describedby": `${remindId}-hint` });
  const remindNumbers = REMINDER_NUMBERS.map(([key, label, min, max]) => ({
    key, label, min, max,
    ...textField({ label, name: `reminders.${key}`, value: String(reminders[key]), attrs: { type: "number", min: String(min), max: String(max), step: "1", inputmode: "numeric" } }),
  }));

  const saved = h("p", { role: "status", class: "saved-status" });
  const general = h("div", {});
  const save = h("button", { type: "submit", class: "primary" }, "Save settings");
  const form = h("form", { class: "settings", novalidate: true },
    h("section", { class: "card" }, h("h2", {}, "Invoices"),
      h("div", { class: "field check" }, aggregate, h("label", { for: aggregateId }, "Aggregate Payment Links")),
      h("p", { class: "hint", id: `${aggregateId}-hint` },
        "When several bills of one client are selected, send them in one email with one payment link (at most 10 bills an email). ",
        "If trust and operating bills are paid together, the payment is split between the two accounts."),
      statesSet),
    h("section", { class: "card" }, h("h2", {}, "Sender"), firmName.field, senderName.field, replyTo.field),
    h("section", { class: "card", "aria-labelledby": `${remindId}-title` }, h("h2", { id: `${remindId}-title` }, "Payment reminders"),
      h("div", { class: "field check" }, remindOn, h("label", { for: remindId }, "Send payment reminders")),
      h("p", { class: "hint", id: `${remindId}-hint` },
        "Emails the client again, with the bill and its payment link, while a bill sent from BillBridge is still unpaid. ",
        "Reminders stop by themselves once the bill is paid (here or in Clio), voided or deleted, and while a payment plan covers it; ",
        "you can pause a bill's reminders on Invoices. The message is the payment reminder email below."),
      remindNumbers.map((n) => n.field)),
    h("section", { class: "card" }, h("h2", {}, "Email templates"),
      h("details", { class: "merge-fields" }, h("summary", {}, "Merge fields you can use"),
        h("dl", {}, Object.entries(MERGE_FIELDS).map(([name, [meaning]]) => [h("dt", {}, h("code", {}, `{{ ${name} }}`)), h("dd", {}, meaning)]))),
      editors.map((e) => e.element)),
    h("section", { class: "card" }, h("h2", {}, "Online payments"),
      h("p", { class: "hint" },
        "Card and bank payments go to the trust and operating accounts set up for your firm when it joined BillBridge: ",
        "trust requests into trust, in full (processing fees never come out of trust money), invoices into operating. ",
        "To change an account, contact BillBridge support.")),
    general,
    h("div", { class: "actions end" }, saved, save));
  replace(content, form);
  if (!isAdmin()) {
    // Settings are an admin's to change (api.md): staff read them.
    for (const control of form.querySelectorAll("input, textarea, select")) control.disabled = true;
    save.remove();
    saved.textContent = "Only an admin of your firm can change settings.";
  }

  form.addEventListener("input", () => { saved.textContent = ""; });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const el of form.querySelectorAll("[aria-invalid]")) setFieldError(el, null);
    setFieldError(statesSet, null);
    replace(general);
    const states = stateBoxes.filter((b) => b.input.checked).map((b) => b.input.value);
    if (!states.length) return fail(statesSet, "Choose at least one state for the default filter.", stateBoxes[0].input);
    const remindValues = {};
    for (const n of remindNumbers) {
      const raw = n.control.value.trim();
      const value = Number(raw);
      if (!/^[0-9]+$/.test(raw) || value < n.min || value > n.max) {
        return fail(n.control, `${n.label}: enter a whole number from ${n.min} to ${n.max}.`);
      }
      remindValues[n.key] = value;
    }
    const body = {
      ...settings,
      aggregate_payment_links: aggregate.checked,
      default_states: states,
      firm_name: firmName.control.value.trim(),
      sender_name: senderName.control.value.trim() || null,
      reply_to: replyTo.control.value.trim() || null,
      templates: Object.fromEntries(editors.map((e) => [e.kind, e.value()])),
      reminders: { enabled: remindOn.checked, ...remindValues },
    };
    save.disabled = true;
    save.textContent = "Saving…";
    try {
      settings = await sendJson("PUT", "/settings", body, { signal });
      saved.textContent = "Settings saved.";
      announce("Settings saved.");
    } catch (err) {
      if (err.name === "AbortError") return;
      const target = err.field && (err.field.startsWith("default_states") ? statesSet : form.querySelector(`[name="${CSS.escape(err.field)}"]`));
      if (target) fail(target, describe(err));
      else replace(general, errorBox(`Settings were not saved. ${describe(err)}`));
    } finally {
      save.disabled = false;
      save.textContent = "Save settings";
    }
  });

  function fail(target, message, focus = target) {
    setFieldError(target, message);
    (focus.tagName === "FIELDSET" ? focus.querySelector("input") : focus).focus();
  }
}

function templateEditor(kind, title, template, firmName) {
  const subject = textField({ label: "Subject", name: `templates.${kind}.subject`, value: template.subject });
  const body = textField({ label: "Message", name: `templates.${kind}.body`, value: template.body, multiline: true, attrs: { rows: "10" } });
  const previewSubject = h("p", { class: "preview-subject" });
  const previewBody = h("div", { class: "message-preview" });
  const warnings = h("div", { class: "preview-warnings" });
  const headingId = newId("tpl");
  const element = h("fieldset", { class: "template", "aria-labelledby": headingId },
    h("legend", { id: headingId }, title),
    kind === "mixed" ? h("div", { class: "hint mixed-fields" },
      h("p", {}, "Used when one email carries both operating invoices and trust requests (Aggregate Payment Links). These merge fields list them apart:"),
      h("dl", {}, MIXED_FIELDS.map((name) => [h("dt", {}, h("code", {}, `{{ ${name} }}`)), h("dd", {}, MERGE_FIELDS[name][0])]))) : null,
    h("div", { class: "template-grid" },
      h("div", {}, subject.field, body.field),
      h("div", { class: "preview", "aria-label": `${title} preview` },
        h("h3", {}, "Preview with sample values"), previewSubject, previewBody, warnings)));

  function refresh() {
    const s = preview(subject.control.value, firmName());
    const b = preview(body.control.value, firmName());
    previewSubject.textContent = `Subject: ${s.text}`;
    previewBody.textContent = b.text;
    const unknown = [...new Set([...s.unknown, ...b.unknown])];
    replace(warnings,
      unknown.length ? h("p", { class: "warn-text" }, `Not a merge field: ${unknown.join(", ")}. Saving will be refused until it is fixed.`) : null,
      s.approximate || b.approximate ? h("p", { class: "hint" }, "The preview fills in merge fields only; other template logic is checked when you save.") : null);
  }
  subject.control.addEventListener("input", refresh);
  body.control.addEventListener("input", refresh);
  refresh();
  return { kind, element, refresh, value: () => ({ subject: subject.control.value, body: body.control.value }) };
}
