// The refund dialog (P7): card payments refund in full or in part; ACH payments only in full,
// so for them the amount is locked to the whole payment and the dialog says why.

import { describe, sendJson } from "../api.js";
import { h, newId, setFieldError } from "../dom.js";
import { amountText, date, methodLabel, money, parseAmount } from "../format.js";

// The refusals the API can answer (422), in words for the person at the amount field (the
// API's own messages count in cents).
const REFUSALS = {
  ach_partial_refund: (p, c) => `Bank (ACH) payments can only be refunded in full (${money(p.amount_cents, c)}), not in part.`,
  refund_exceeds_paid: () => "That is more than is left to refund on this payment: it may have been refunded since this window opened. Close it and choose Refund again to see what is left.",
  payment_not_settled: () => "This payment has not settled yet. It can be refunded once it has.",
};

/** openRefund({link, payment, onDone, onRefused}): a modal dialog; onDone(refund) after a 201,
 * onRefused() after a 422 (the payment may have changed: the screen reloads behind it). */
export function openRefund({ link, payment, onDone, onRefused = () => {} }) {
  const currency = payment.currency || link.currency;
  const isAch = payment.method === "ach";
  const left = payment.refundable_cents;
  const amountId = newId("amount");
  const hintId = `${amountId}-hint`;
  const achId = `${amountId}-ach`;
  const amount = h("input", {
    id: amountId, name: "amount", type: "text", inputmode: "decimal", autocomplete: "off",
    value: amountText(left, currency), readonly: isAch,
    "aria-describedby": isAch ? `${achId} ${hintId}` : hintId,
  });
  const submit = h("button", { type: "submit", class: "primary" });
  const cancel = h("button", { type: "button", onclick: () => dialog.close() }, "Cancel");
  const general = h("div", {});
  const titleId = newId("refund-title");

  const form = h("form", { method: "dialog", novalidate: true },
    h("h2", { id: titleId }, "Refund a payment"),
    h("p", {}, `${methodLabel(payment.method)} payment of ${money(payment.amount_cents, currency)} on ${date(payment.created_at)}. `,
      `${money(left, currency)} is left to refund.`),
    isAch ? h("p", { class: "notice warn", id: achId },
      "Bank (ACH) payments cannot be partly refunded: this refunds the whole payment, ",
      h("strong", {}, money(payment.amount_cents, currency)), ".") : null,
    h("div", { class: "field" },
      h("label", { for: amountId }, `Amount to refund (${currency})`),
      h("p", { class: "hint", id: hintId }, isAch ? "Locked to the whole payment." : `Up to ${money(left, currency)}.`),
      amount),
    payment.surcharge_cents > 0 ? h("p", { class: "notice", id: `${amountId}-surcharge` },
      `This payment carried a ${money(payment.surcharge_cents, currency)} card surcharge. The amount above is the bills' money; `,
      "the matching part of the surcharge is refunded with it, in proportion, and shows on the client's refund receipt.") : null,
    h("p", { class: "hint" }, "Refunds are not written to Clio: record this refund on the bill in Clio afterwards (Reconciliation lists what to record)."),
    general,
    h("div", { class: "actions end" }, cancel, submit));
  const dialog = h("dialog", { class: "refund-dialog", "aria-labelledby": titleId }, form);

  // Why the typed amount cannot be refunded, or null; the Refund button is off while it cannot,
  // and says why next to the amount.
  function problem(cents) {
    if (isAch) return null;
    if (cents === null) return String(amount.value).trim() ? "Enter an amount such as 25.00." : "Enter the amount to refund.";
    if (cents <= 0) return "Enter an amount above zero.";
    if (cents > left) return `At most ${money(left, currency)} can be refunded on this payment.`;
    return null;
  }

  function label() {
    const cents = isAch ? payment.amount_cents : parseAmount(amount.value, currency);
    const why = problem(cents);
    submit.disabled = why !== null;
    submit.title = why || "";
    submit.textContent = cents && !why ? `Refund ${money(cents, currency)}` : "Refund";
    return why;
  }
  amount.addEventListener("input", () => {
    const why = label();
    setFieldError(amount, why);
    if (why) submit.setAttribute("aria-describedby", amount.getAttribute("aria-describedby") || "");
    else submit.removeAttribute("aria-describedby");
  });
  label();

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    setFieldError(amount, null);
    general.replaceChildren();
    let body = {};
    if (!isAch) {
      const cents = parseAmount(amount.value, currency);
      if (cents === null) return refuse("Enter an amount such as 25.00.");
      if (cents <= 0) return refuse("Enter an amount above zero.");
      if (cents > left) return refuse(`At most ${money(left, currency)} can be refunded on this payment.`);
      body = { amount_cents: cents };
    }
    submit.disabled = cancel.disabled = true;
    const before = submit.textContent;
    submit.textContent = "Refunding…";
    try {
      const refund = await sendJson("POST",
        `/payment-links/${encodeURIComponent(link.id)}/transactions/${encodeURIComponent(payment.id)}/refunds`, body);
      dialog.close();
      onDone(refund);
    } catch (err) {
      submit.disabled = cancel.disabled = false;
      submit.textContent = before;
      if (REFUSALS[err.code]) {
        refuse(REFUSALS[err.code](payment, currency));
        onRefused();
      } else if (err.field === "amount_cents") refuse(describe(err));
      else general.replaceChildren(h("p", { class: "field-error", role: "alert" }, `The refund was not made. ${describe(err)}`));
    }
  });

  function refuse(message) {
    setFieldError(amount, message);
    amount.focus();
  }

  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  (isAch ? submit : amount).focus();
  if (!isAch) amount.select();
  return dialog;
}
