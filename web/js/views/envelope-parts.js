// Pieces of the two review screens: the attached bills with their PDF viewer, the envelope's
// status, and saving a draft's edits.

import { describe, getBlob, sendJson } from "../api.js";
import { announce, badge, h, newId, replace, setFieldError } from "../dom.js";
import { ENVELOPE_TONES, envelopeStatusLabel, kindLabel, money } from "../format.js";
import { attachmentName, envelopeBills } from "./common.js";

export const statusBadge = (status) => badge(envelopeStatusLabel(status), ENVELOPE_TONES[status] || "neutral");

export const isDone = (e) => !["draft", "sending"].includes(e.status);
export const isSentOk = (e) => ["sent", "delivered"].includes(e.status);

/** What the send changed so the email asked for what was payable then (the API's `send_note`,
 * a sentence in money format: "INV-7 was $500.00 and is now $300.00."), as a labelled note;
 * null when the email went out as drafted. Static: where it must be announced, it sits in a
 * status region (review.js) or its words go to the announcer (send-all.js). */
export function sendNote(envelope) {
  if (!envelope.send_note) return null;
  const labelId = newId("send-note");
  return h("p", { class: "notice warn send-note", role: "note", "aria-labelledby": labelId, "data-envelope-id": envelope.id },
    h("strong", { id: labelId }, "Amounts changed when sent"), ": ", envelope.send_note);
}

/** Why the API refused to send an envelope as it stands (409): its amounts changed and its
 * text is staff's, or nothing is payable on its bills. Sending it again cannot help. */
export const REFUSED_AS_IT_STANDS = new Set(["amounts_changed", "nothing_payable"]);

/** The envelope's bills by number, each with its amount line and a "View PDF" button. */
export function attachments(envelope) {
  return h("ul", { class: "attachments", "aria-label": "Attached bills" }, envelopeBills(envelope).map((bill) => {
    const name = bill.number;
    const button = h("button", { type: "button", class: "small", "aria-label": `View PDF of ${name}` }, "View PDF");
    button.addEventListener("click", () => viewPdf(envelope.id, bill.id, name, button));
    return h("li", {}, h("span", { class: "pdf-name" }, attachmentName(bill)),
      bill.currency ? h("span", { class: "sub" }, amountLine(bill)) : null, button);
  }));
}

/** "Invoice · $372.10 payable now (Outstanding (Clio) $500.00, Paid (GL) $127.90)". */
export function amountLine(bill) {
  const c = bill.currency;
  const payable = bill.payable_cents ?? bill.outstanding_clio_cents;
  const parts = [`${kindLabel(bill.kind)} · ${money(payable, c)} payable now`];
  const extra = [];
  if (bill.outstanding_clio_cents !== undefined && bill.outstanding_clio_cents !== payable) {
    extra.push(`Outstanding (Clio) ${money(bill.outstanding_clio_cents, c)}`);
  }
  if (bill.paid_gl_cents > 0) extra.push(`Paid (GL) ${money(bill.paid_gl_cents, c)}`);
  if (bill.pending_cents > 0) extra.push(`${money(bill.pending_cents, c)} pending`);
  return extra.length ? `${parts[0]} (${extra.join(", ")})` : parts[0];
}

/** Fetch the bill PDF with the auth header and show it in a dialog (the API needs the header, so
 * a plain link cannot open it); the dialog also offers it in a new tab and as a download. */
export async function viewPdf(envelopeId, billId, name, trigger) {
  const original = trigger.textContent;
  trigger.disabled = true;
  trigger.textContent = "Opening…";
  let url = null;
  try {
    const blob = await getBlob(`/envelopes/${encodeURIComponent(envelopeId)}/bills/${encodeURIComponent(billId)}.pdf`, { accept: "application/pdf" });
    url = URL.createObjectURL(blob.type === "application/pdf" ? blob : new Blob([blob], { type: "application/pdf" }));
    const size = blob.size >= 1024 ? `${Math.round(blob.size / 1024)} KB` : `${blob.size} bytes`;
    const close = h("button", { type: "button", onclick: () => dialog.close() }, "Close");
    const dialog = h("dialog", { class: "pdf-dialog", "aria-labelledby": "pdf-title" },
      h("div", { class: "dialog-head" },
        h("h2", { id: "pdf-title" }, `${name} (PDF, ${size})`),
        h("div", { class: "dialog-actions" },
          h("a", { href: url, target: "_blank", rel: "noopener", class: "button" }, "Open in new tab"),
          h("a", { href: url, download: `${name}.pdf`, class: "button" }, "Download"),
          close)),
      h("iframe", { src: url, title: `PDF of ${name}`, class: "pdf-frame" }));
    dialog.addEventListener("close", () => {
      dialog.remove();
      URL.revokeObjectURL(url);
      trigger.focus();
    });
    document.body.append(dialog);
    dialog.showModal();
    close.focus();
  } catch (err) {
    if (url) URL.revokeObjectURL(url);
    announce(`The PDF could not be opened. ${describe(err)}`);
    const li = trigger.closest("li");
    li.querySelector(".field-error")?.remove();
    li.append(h("p", { class: "field-error", role: "alert" }, `The PDF could not be opened. ${describe(err)}`));
  } finally {
    trigger.disabled = false;
    trigger.textContent = original;
  }
}

/** Subject and message controls for a draft, wired to save only what changed. */
export function draftEditor(envelope, { idPrefix }) {
  const subjectId = `${idPrefix}-subject`;
  const bodyId = `${idPrefix}-body`;
  const subject = h("input", { id: subjectId, name: "subject", type: "text", maxlength: "300", value: envelope.subject });
  const body = h("textarea", { id: bodyId, name: "body", rows: "12", maxlength: "20000" });
  body.value = envelope.body;
  const general = h("div", {});
  const element = h("div", { class: "draft-editor" },
    h("div", { class: "field" }, h("label", { for: subjectId }, "Subject"), subject),
    h("div", { class: "field" }, h("label", { for: bodyId }, "Message"),
      h("p", { class: "hint", id: `${bodyId}-hint` }, "{{ pay_link }} becomes the payment link when the envelope is sent."), body),
    general);
  body.setAttribute("aria-describedby", `${bodyId}-hint`);

  /** PATCH the changed fields; true when saved (or nothing changed), false with the error shown. */
  async function save() {
    setFieldError(subject, null);
    setFieldError(body, null);
    replace(general);
    const changes = {};
    if (subject.value !== envelope.subject) changes.subject = subject.value;
    if (body.value !== envelope.body) changes.body = body.value;
    if (!Object.keys(changes).length) return true;
    if (changes.subject !== undefined && !changes.subject.trim()) {
      setFieldError(subject, "The subject cannot be empty.");
      subject.focus();
      return false;
    }
    if (changes.body !== undefined && !changes.body.trim()) {
      setFieldError(body, "The message cannot be empty.");
      body.focus();
      return false;
    }
    try {
      const saved = await sendJson("PATCH", `/envelopes/${encodeURIComponent(envelope.id)}`, changes);
      Object.assign(envelope, saved);
      return true;
    } catch (err) {
      const control = err.field === "body" ? body : err.field === "subject" ? subject : null;
      if (control) {
        setFieldError(control, describe(err));
        control.focus();
      } else {
        replace(general, h("p", { class: "field-error", role: "alert" }, `Your changes could not be saved. ${describe(err)}`));
      }
      return false;
    }
  }

  function setDisabled(disabled) {
    subject.disabled = disabled;
    body.disabled = disabled;
  }

  return { element, save, setDisabled, subject, body };
}
