// Review and send, one envelope at a time (S2, S3): edit the subject and message, view the
// attached bills, Continue, "Send envelope now", then on to the next draft until all are sent.

import { describe, getJson, pollUntil, sendJson } from "../api.js";
import { emptyBox, errorBox, h, loadingBox, pageTitle, replace } from "../dom.js";
import { dateTime, plural } from "../format.js";
import { REFUSED_AS_IT_STANDS, attachments, draftEditor, isDone, isSentOk, sendNote, statusBadge } from "./envelope-parts.js";
import { attachmentName, billNames, envelopeBills } from "./common.js";

export async function render({ main, params, signal }) {
  const batchId = params.batchId;
  const allHref = `#/review/${encodeURIComponent(batchId)}/all`;
  const summary = h("p", { class: "lead" });
  const list = h("ol", { class: "envelope-list" });
  const panel = h("section", { class: "envelope-panel", "aria-live": "off" });
  const notice = h("div", { class: "notice-slot" });
  replace(main,
    h("div", { class: "page-head" },
      pageTitle("Review and send"),
      h("a", { href: allHref, class: "button primary", onclick: (e) => goAll(e) }, "Send all envelopes")),
    summary, notice,
    h("div", { class: "review-layout" },
      h("nav", { "aria-label": "Envelopes in this batch" }, list),
      panel));
  replace(panel, loadingBox("Loading the envelopes…"));

  let envelopes = [];
  let current = null; // the envelope on screen
  let editor = null;
  // Drafts the API refused to send as they stand (409 amounts_changed, nothing_payable): still
  // drafts, but not offered again as "the next envelope" (the same send would be refused).
  const refused = new Map(); // envelope id -> the API's sentence
  const nextDraft = (except) => envelopes.find((e) => e.status === "draft" && e !== except && !refused.has(e.id)) || null;

  try {
    envelopes = (await getJson(`/batches/${encodeURIComponent(batchId)}`, { signal })).envelopes;
  } catch (err) {
    if (err.name === "AbortError") return;
    replace(panel, errorBox(err.status === 404 ? "This batch of envelopes does not exist (or is not your firm's)." : describe(err), () => location.reload()));
    return;
  }
  if (!envelopes.length) {
    replace(panel, emptyBox("This batch has no envelopes.", "Go back to Invoices and select bills with a balance."));
    return;
  }
  showEdit(envelopes.find((e) => e.status === "draft") || null);

  function refreshFrame() {
    const sent = envelopes.filter(isSentOk).length;
    const failed = envelopes.filter((e) => ["failed", "bounced"].includes(e.status)).length;
    summary.textContent = `${plural(envelopes.length, "envelope")} · ${sent} sent${failed ? ` · ${failed} failed` : ""}`;
    replace(list, envelopes.map((e, i) => {
      const isCurrent = current && e.id === current.id;
      const label = `${i + 1}. ${e.client.name}`;
      // A failed envelope can be edited and sent again, like a draft (nothing reached SES).
      const item = ["draft", "failed"].includes(e.status) && !isCurrent
        ? h("button", { type: "button", class: "link-button", onclick: () => switchTo(e) }, label)
        : h("span", {}, label);
      return h("li", { "aria-current": isCurrent ? "step" : null, class: isCurrent ? "current" : null }, item, " ", statusBadge(e.status));
    }));
  }

  async function switchTo(envelope) {
    if (editor && !(await editor.save())) return;
    showEdit(envelope);
    panel.querySelector("h2")?.focus();
  }

  function goAll(event) {
    // Keep what was typed here: save it before the all-envelopes screen loads the batch.
    if (!editor) return;
    event.preventDefault();
    editor.save().then((ok) => { if (ok) location.hash = allHref; });
  }

  function position(envelope) {
    return `Envelope ${envelopes.indexOf(envelope) + 1} of ${envelopes.length}`;
  }

  function showEdit(envelope) {
    current = envelope;
    editor = null;
    refreshFrame();
    if (!envelope) { showDone(); return; }
    editor = draftEditor(envelope, { idPrefix: `env-${envelope.id}` });
    const continueButton = h("button", { type: "button", class: "primary", onclick: async () => {
      continueButton.disabled = true;
      const ok = await editor.save();
      continueButton.disabled = false;
      if (ok) showConfirm(envelope);
    } }, "Continue");
    replace(panel,
      h("h2", { tabindex: "-1" }, `${position(envelope)}: ${envelope.client.name}`),
      recipient(envelope),
      editor.element,
      h("h3", {}, "Attached bills"),
      attachments(envelope),
      h("div", { class: "actions end" }, continueButton));
  }

  function recipient(envelope) {
    return h("dl", { class: "facts" },
      h("dt", {}, "To"), h("dd", {}, envelope.to || h("span", { class: "warn-text" }, "No email address")),
      h("dt", {}, "Bills"), h("dd", {}, billNames(envelope)));
  }

  function showConfirm(envelope) {
    const status = h("div", { role: "status", class: "send-status" });
    const back = h("button", { type: "button", onclick: () => { showEdit(envelope); panel.querySelector("h2")?.focus(); } }, "Back to editing");
    const send = h("button", { type: "button", class: "primary", onclick: () => sendNow(envelope, { send, back, status }) }, "Send envelope now");
    replace(panel,
      h("h2", { tabindex: "-1" }, `Send ${position(envelope).toLowerCase()}`),
      h("p", {}, `This emails ${envelope.to} now, with ${plural(envelope.bill_ids.length, "bill PDF")} attached and a link to pay.`),
      h("dl", { class: "facts" },
        h("dt", {}, "To"), h("dd", {}, envelope.to),
        h("dt", {}, "Subject"), h("dd", {}, envelope.subject),
        h("dt", {}, "Attachments"), h("dd", {}, envelopeBills(envelope).map(attachmentName).join(", "))),
      h("h3", {}, "Message"),
      h("div", { class: "message-preview" }, envelope.body.replace(/\{\{\s*pay_link\s*\}\}/g, "[payment link]")),
      status,
      h("div", { class: "actions end" }, back, send));
    panel.querySelector("h2").focus();
  }

  async function sendNow(envelope, { send, back, status }) {
    send.disabled = back.disabled = true;
    replace(status, h("span", { class: "spinner", "aria-hidden": "true" }), `Sending to ${envelope.to}…`);
    try {
      await sendJson("POST", `/envelopes/${encodeURIComponent(envelope.id)}/send`, undefined, { signal });
      const { result, timedOut } = await pollUntil(
        () => getJson(`/envelopes/${encodeURIComponent(envelope.id)}`, { signal }),
        (e) => e.status !== "sending" && e.status !== "draft", { interval: 600, timeout: 90000, signal });
      Object.assign(envelope, result);
      if (timedOut) {
        replace(status, errorBox("Sending is taking longer than usual. It carries on if you leave; check the envelope's status later."));
        send.disabled = back.disabled = false;
        refreshFrame();
        return;
      }
      if (isSentOk(envelope)) {
        refused.delete(envelope.id);
        // The status region holds what the send changed too (amounts re-rendered, bills left
        // out), so the clerk hears it, not only that it went: the email differs from the draft.
        replace(notice, h("div", { role: "status" },
          h("p", { class: "notice good" }, `Envelope sent to ${envelope.to}.`), sendNote(envelope)));
        showEdit(nextDraft());
        panel.querySelector("h2")?.focus();
      } else {
        refreshFrame();
        replace(status, errorBox(`The envelope to ${envelope.to} was not sent: ${envelope.error || envelope.status}.`));
        back.replaceWith(onward(envelope));
        if (envelope.status === "failed") {
          // Failed for certain before SES had it: fix what the error names, then send again.
          // A new button, not a new onclick: h() adds listeners, so the old "send" one would
          // still fire and send the envelope again unedited.
          send.replaceWith(h("button", { type: "button", class: "primary", onclick: () => {
            showEdit(envelope);
            panel.querySelector("h2")?.focus();
          } }, "Edit and send again"));
        }
      }
    } catch (err) {
      if (err.name === "AbortError") return;
      replace(status, errorBox(`The envelope could not be sent. ${describe(err)}`));
      if (REFUSED_AS_IT_STANDS.has(err.code)) {
        // The sentence says why and what to do (draft the bills again): the same send would
        // be refused again, so it is not offered; the envelope stays a draft.
        refused.set(envelope.id, describe(err));
        send.remove();
        back.replaceWith(onward(envelope));
      } else {
        send.disabled = back.disabled = false;
      }
    }
  }

  /** On past an envelope that was not sent: the next draft, else the summary. A new button:
   * h() adds listeners, so changing the old one's onclick would run its handler too. */
  function onward(envelope) {
    const next = nextDraft(envelope);
    return h("button", { type: "button", onclick: () => {
      showEdit(next || null);
      panel.querySelector("h2")?.focus();
    } }, next ? "Skip to the next envelope" : "See the summary");
  }

  function showDone() {
    const sent = envelopes.filter(isSentOk).length;
    const waiting = envelopes.filter((e) => !isDone(e) && !refused.has(e.id)).length;
    replace(panel,
      h("h2", { tabindex: "-1" }, sent === envelopes.length ? "All envelopes are sent" : "Nothing left to review"),
      h("ul", { class: "results-list" }, envelopes.map((e) => h("li", {},
        h("span", {}, `${e.client.name} (${e.to})`), " ", statusBadge(e.status),
        e.sent_at ? h("span", { class: "sub" }, dateTime(e.sent_at)) : null,
        e.error ? h("span", { class: "sub warn-text" }, e.error) : null,
        refused.has(e.id) ? h("span", { class: "sub warn-text" }, `Not sent: ${refused.get(e.id)}`) : null,
        isSentOk(e) ? sendNote(e) : null))),
      waiting ? h("p", {}, `${plural(waiting, "envelope")} still sending.`) : null,
      h("div", { class: "actions" }, h("a", { href: "#/invoices", class: "button primary" }, "Back to Invoices")));
  }
}
