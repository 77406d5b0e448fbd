// Money, dates and labels as people read them: the browser's locale, the bill's currency.

const moneyFormats = new Map();

function moneyFormat(currency) {
  const code = (currency || "USD").toUpperCase();
  if (!moneyFormats.has(code)) {
    moneyFormats.set(code, new Intl.NumberFormat(undefined, { style: "currency", currency: code }));
  }
  return moneyFormats.get(code);
}

/** Digits after the decimal point in a currency's minor unit (2 for USD, 0 for JPY). */
export function minorDigits(currency) {
  return moneyFormat(currency).resolvedOptions().maximumFractionDigits;
}

/** Integer minor units to display text, e.g. 12345, "USD" -> "$123.45". */
export function money(cents, currency) {
  if (cents === null || cents === undefined) return "–";
  const digits = minorDigits(currency);
  // Amounts are only ever added as integers; this division is for display alone.
  return moneyFormat(currency).format(Number(cents) / 10 ** digits);
}

/** Minor units as a plain editable number ("123.45"), for amount fields. */
export function amountText(cents, currency) {
  const digits = minorDigits(currency);
  if (digits === 0) return String(cents);
  const text = String(Math.abs(cents)).padStart(digits + 1, "0");
  return `${cents < 0 ? "-" : ""}${text.slice(0, -digits)}.${text.slice(-digits)}`;
}

/** What someone typed as an amount ("1,200.5", "$80") to integer minor units, or null. Parsed
 * as text, so 0.1 + 0.2 never happens. */
export function parseAmount(text, currency) {
  const digits = minorDigits(currency);
  const decimal = new Intl.NumberFormat().formatToParts(1.5).find((p) => p.type === "decimal")?.value || ".";
  let cleaned = String(text).trim().replace(/[^\d.,]/g, "");
  if (decimal === ",") cleaned = cleaned.replace(/\./g, "").replace(",", ".");
  else cleaned = cleaned.replace(/,/g, "");
  const match = /^(\d+)(?:\.(\d*))?$/.exec(cleaned);
  if (!match) return null;
  const fraction = match[2] || "";
  if (fraction.length > digits) return null;
  return Number(match[1]) * 10 ** digits + Number(fraction.padEnd(digits, "0") || 0);
}

/** A calendar date from the API ("2026-10-31") in the browser's locale; no time zone shift. */
export function date(isoDate) {
  if (!isoDate) return "–";
  const [y, m, d] = String(isoDate).slice(0, 10).split("-").map(Number);
  return new Date(y, m - 1, d).toLocaleDateString(undefined, { dateStyle: "medium" });
}

/** A moment from the API (ISO 8601 UTC) in the browser's locale and time zone. */
export function dateTime(iso) {
  if (!iso) return "–";
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function isPastDue(isoDate) {
  if (!isoDate) return false;
  const [y, m, d] = String(isoDate).slice(0, 10).split("-").map(Number);
  const today = new Date();
  return new Date(y, m - 1, d) < new Date(today.getFullYear(), today.getMonth(), today.getDate());
}

export const BILL_STATES = [
  ["draft", "Draft"],
  ["awaiting_approval", "Awaiting approval"],
  ["awaiting_payment", "Awaiting payment"],
  ["paid", "Paid"],
  ["void", "Void"],
  ["deleted", "Deleted"],
];
const STATE_LABELS = Object.fromEntries(BILL_STATES);
export const stateLabel = (state) => STATE_LABELS[state] || state;

export const kindLabel = (kind) => (kind === "trust_request" ? "Trust request" : "Invoice");

const FLAG_LABELS = {
  refund_not_in_clio: "Refund not in Clio",
  payment_not_in_clio: "Payment not in Clio",
  disputed: "Chargeback open",
  chargeback_lost: "Chargeback lost",
  inquiry: "Card issuer inquiry",
  overpaid: "Overpaid",
  paid_but_unpayable: "Paid, but void or deleted",
};
export const flagLabel = (flag) => FLAG_LABELS[flag] || flag.replace(/_/g, " ");

export const methodLabel = (method) => ({ card: "Card", ach: "Bank (ACH)" }[method] || method);
export const accountLabel = (account) => ({ trust: "Trust", operating: "Operating" }[account] || account);

export const ENVELOPE_TONES = {
  draft: "neutral", sending: "info", sent: "good", delivered: "good",
  failed: "bad", bounced: "bad", complained: "warn",
};
export const envelopeStatusLabel = (status) => ({
  draft: "Draft", sending: "Sending…", sent: "Sent", delivered: "Delivered",
  failed: "Failed", bounced: "Bounced", complained: "Marked as spam",
}[status] || status);

export const plural = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
