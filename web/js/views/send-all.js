// "Send all envelopes" (S4): every subject and message editable on one screen; Continue saves
// the edits, sends the batch, and shows each envelope's result as it arrives.

import { describe, getJson, pollUntil, sendJson } from "../api.js";
import { announce, emptyBox, errorBox, h, loadingBox, pageTitle, replace } from "../dom.js";
import { plural } from "../format.js";
import { billNames } from "./common.js";
import { attachments, draftEditor, isDone, isSentOk, sendNote, statusBadge } from "./envelope-parts.js";

export async function render({ main, params, signal }) {
  const batchId = params.batchId;
  const content = h("div", {});
  replace(main,
    h("div", { class: "page-head" },
      pageTitle("Send all envelopes"),
      h("a", { href: `#/review/${encodeURIComponent(batchId)}`, class: "button" }, "Review one at a time")),
    h("p", { class: "lead" }, "Check each subject and message, then Continue to send every envelope."),
    content);
  replace(content, loadingBox("Loading the envelopes…"));

  let envelopes;
  try {
    envelopes = (await getJson(`/batches/${encodeURIComponent(batchId)}`, { signal })).envelopes;
  } catch (err) {
    if (err.name === "AbortError") return;
    replace(content, errorBox(err.status === 404 ? "This batch of envelopes does not exist (or is not your firm's)." : describe(err), () => location.reload()));
    return;
  }
  if (!envelopes.length) {
    replace(content, emptyBox("This batch has no envelopes."));
    return;
  }

  const editors = new Map();
  const cards = envelopes.map((envelope, i) => {
    const headingId = `card-${envelope.id}`;
    const status = h("span", { class: "card-status" }, statusBadge(envelope.status));
    const body = h("div", { class: "card-body" });
    if (envelope.status === "draft") {
      const editor = draftEditor(envelope, { idPrefix: `all-${envelope.id}` });
      editors.set(envelope.id, editor);
      replace(body, editor.element, attachments(envelope));
    } else {
      replace(body, h("p", { class: "muted" }, "Already sent: it is not sent again."), sendNote(envelope), readOnly(envelope));
    }
    const card = h("section", { class: "card", "aria-labelledby": headingId },
      h("h2", { id: headingId }, `${i + 1}. ${envelope.client.name}`, " ", status),
      h("p", { class: "sub" }, `To ${envelope.to} · ${billNames(envelope)}`),
      body);
    return { envelope, card, status, body };
  });

  const progress = h("div", { class: "progress-slot", role: "status" });
  const failure = h("div", {});
  const drafts = envelopes.filter((e) => e.status === "draft");
  const continueButton = h("button", { type: "button", class: "primary", onclick: () => sendAll() },
    drafts.length ? "Continue" : "Nothing to send");
  continueButton.disabled = !drafts.length;
  replace(content, cards.map((c) => c.card), failure, progress,
    h("div", { class: "actions end" }, continueButton));

  async function sendAll() {
    replace(failure);
    continueButton.disabled = true;
    continueButton.textContent = "Saving…";
    for (const editor of editors.values()) {
      if (!(await editor.save())) {
        replace(failure, errorBox("Fix the highlighted field, then Continue again."));
        continueButton.disabled = false;
        continueButton.textContent = "Continue";
        return;
      }
    }
    for (const editor of editors.values()) editor.setDisabled(true);
    continueButton.textContent = "Sending…";
    const sending = new Set(drafts.map((e) => e.id));
    showProgress(envelopes, sending);
    try {
      await sendJson("POST", `/batches/${encodeURIComponent(batchId)}/send`, undefined, { signal });
      const { result, timedOut } = await pollUntil(async () => {
        const latest = (await getJson(`/batches/${encodeURIComponent(batchId)}`, { signal })).envelopes;
        showProgress(latest, sending);
        return latest;
      }, (latest) => latest.filter((e) => sending.has(e.id)).every(isDone), { interval: 800, timeout: 180000, signal });
      finish(result, sending, timedOut);
    } catch (err) {
      if (err.name === "AbortError") return;
      replace(failure, errorBox(`The envelopes could not be sent. ${describe(err)}`));
      for (const editor of editors.values()) editor.setDisabled(false);
      continueButton.disabled = false;
      continueButton.textContent = "Continue";
    }
  }

  function showProgress(latest, sending) {
    const mine = latest.filter((e) => sending.has(e.id));
    const done = mine.filter(isDone).length;
    for (const c of cards) {
      const now = latest.find((e) => e.id === c.envelope.id);
      if (now) replace(c.status, statusBadge(now.status));
    }
    replace(progress,
      h("label", { for: "send-progress" }, `${done} of ${mine.length} sent`),
      h("progress", { id: "send-progress", max: String(mine.length), value: String(done) }));
  }

  function finish(latest, sending, timedOut) {
    const mine = latest.filter((e) => sending.has(e.id));
    const ok = mine.filter(isSentOk).length;
    const bad = mine.filter((e) => isDone(e) && !isSentOk(e));
    const headline = timedOut
      ? `${ok} of ${mine.length} sent so far; the rest are still sending and carry on if you leave.`
      : bad.length ? `${ok} of ${plural(mine.length, "envelope")} sent; ${bad.length} failed.` : `All ${plural(mine.length, "envelope")} sent.`;
    // The email may differ from the draft on screen (amounts re-rendered at send, a bill left
    // out): say how many, and each card says what changed.
    const updated = mine.filter((e) => isSentOk(e) && e.send_note).length;
    announce(updated ? `${headline} ${updated === 1 ? "One envelope's" : `${updated} envelopes'`} amounts changed when sent: see ${updated === 1 ? "its card" : "their cards"}.` : headline);
    continueButton.remove();
    // What was sent is history: its subject and message are shown, no longer editable. One
    // that failed says why on its own card, next to the text that was not sent.
    for (const c of cards) {
      const now = latest.find((e) => e.id === c.envelope.id);
      if (now && isSentOk(now)) {
        editors.delete(now.id);
        replace(c.body, sendNote(now), readOnly(now), attachments(now));
      } else if (now && sending.has(now.id) && now.status === "failed" && now.error) {
        c.body.querySelector(".card-error")?.remove();
        c.body.prepend(h("p", { class: "notice warn card-error", role: "note", "aria-label": "Why it was not sent" }, now.error));
      }
    }
    replace(progress,
      h("h2", { tabindex: "-1", class: "result-title" }, headline),
      h("ul", { class: "results-list" }, mine.map((e) => h("li", {},
        h("span", {}, `${e.client.name} (${e.to})`), " ", statusBadge(e.status),
        e.error ? h("span", { class: "sub warn-text" }, e.error) : null,
        isSentOk(e) && e.send_note ? h("span", { class: "sub" }, "Amounts changed when sent: see its card.") : null))),
      h("div", { class: "actions" }, h("a", { href: "#/invoices", class: "button primary" }, "Back to Invoices")));
    progress.querySelector("h2").focus();
  }
}

/** A sent envelope's subject and message, as text. */
function readOnly(envelope) {
  return h("dl", { class: "facts sent-text" },
    h("dt", {}, "Subject"), h("dd", { class: "sent-subject" }, envelope.subject),
    h("dt", {}, "Message"), h("dd", {}, h("div", { class: "message-preview" }, envelope.body)));
}
