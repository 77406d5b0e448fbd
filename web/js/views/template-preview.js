// A live preview of an email template with sample values. The server renders templates with
// Jinja2 and is the judge of what is valid (it refuses a bad template on save, naming the
// problem); this preview fills in `{{ field }}` placeholders only and points out the rest.

// The merge fields and sample values of layers/billbridge/billbridge/domain/templates.py.
export const MERGE_FIELDS = {
  client_name: ["the client's name as in Clio", "Acme Ltd"],
  bill_numbers: ["the envelope's bill numbers, comma-separated", "INV-0042, INV-0043"],
  amount_due: ["what is payable now on the envelope's bills, formatted", "$1,500.00"],
  amounts_due: ["each bill's number and the amount payable now, one per line", "INV-0042: $1,000.00\nINV-0043: $500.00"],
  invoice_lines: ["the envelope's operating invoices, number and amount, one per line", "INV-0042: $1,000.00"],
  invoice_amount_due: ["what is payable now on the envelope's operating invoices", "$1,000.00"],
  trust_request_lines: ["the envelope's trust requests, number and amount, one per line", "TR-0043: $500.00"],
  trust_amount_due: ["what is payable now on the envelope's trust requests", "$500.00"],
  due_dates: ["the bills' due dates, comma-separated", "Oct 31, 2026"],
  firm_name: ["the firm's name from settings", "Smith & Jones LLP"],
  pay_link: ["the payment link (filled in when the envelope is sent)", "https://pay.example.com/pay/abc"],
};

// The merge fields that list a mixed envelope's invoices and trust requests apart.
export const MIXED_FIELDS = ["invoice_lines", "invoice_amount_due", "trust_request_lines", "trust_amount_due"];

const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

/** {text, unknown: [names], approximate: bool}: the template with sample values filled in. */
export function preview(template, firmName) {
  const unknown = new Set();
  const text = String(template).replace(PLACEHOLDER, (whole, name) => {
    if (!(name in MERGE_FIELDS)) { unknown.add(name); return whole; }
    if (name === "firm_name" && firmName) return firmName;
    return MERGE_FIELDS[name][1];
  });
  // Anything else in braces (filters, {% if %}) is Jinja the preview does not run.
  const approximate = /\{\{|\{%/.test(text.replace(PLACEHOLDER, ""));
  return { text, unknown: [...unknown], approximate };
}
