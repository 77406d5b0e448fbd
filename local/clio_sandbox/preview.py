"""HTML pages of the Clio sandbox: a bill's pre-rendered preview (what Clio's
`GET /bills/{id}/preview.json` answers, meant for an iframe) and the `/nc/` UI stand-in that bill
links point at.

Clio's real preview is a themed document with inline CSS and a DOCTYPE; this one keeps the same
outer form but only simple elements (headings, paragraphs, one table), so a pure-Python renderer
such as fpdf2's `write_html` can turn it into a PDF.
"""

from __future__ import annotations

from html import escape

from local.clio_sandbox.state import Bill, SandboxState

# How an invoice's total is split into line items for display (percent shares, summing to 100).
_INVOICE_LINES = (
    ("Professional services", 70),
    ("Court filing fees", 20),
    ("Photocopying and courier", 10),
)


def _money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}${whole:,}.{part:02d}"


def _lines(bill: Bill) -> list[tuple[str, int]]:
    if bill.kind == "trust_kind":
        return [("Funds requested into trust", bill.total_cents)]
    lines: list[tuple[str, int]] = []
    left = bill.total_cents
    for i, (label, share) in enumerate(_INVOICE_LINES):
        amount = left if i == len(_INVOICE_LINES) - 1 else bill.total_cents * share // 100
        lines.append((label, amount))
        left -= amount
    return lines


def bill_preview_html(state: SandboxState, bill: Bill) -> str:
    with state.lock:
        acct = state.accounts[bill.account]
        client = state.contacts[bill.client_id]
        matter = state.matters.get(bill.matter_id) if bill.matter_id is not None else None
    title = "Trust Request" if bill.kind == "trust_kind" else "Invoice"
    rows = "\n".join(
        f'<tr><td width="75%">{escape(label)}</td>'
        f'<td width="25%" align="right">{_money(amount)}</td></tr>'
        for label, amount in _lines(bill)
    )
    matter_line = (
        f"<p><b>Matter:</b> {escape(matter.display_number)} - {escape(matter.description)}</p>"
        if matter
        else ""
    )
    issued = bill.issued_at.isoformat() if bill.issued_at else "not issued"
    due = bill.due_at.isoformat() if bill.due_at else "-"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{escape(title)} {escape(bill.number)}</title>
<style>
body {{ font-family: Helvetica, Arial, sans-serif; color: #222; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ padding: 4px; border-bottom: 1px solid #ccc; }}
</style>
</head>
<body>
<h1 style="color: #1a3d6d;">{escape(acct.firm_name)}</h1>
<h2>{escape(title)} {escape(bill.number)}</h2>
<p><b>Bill to:</b> {escape(client.name)}</p>
{matter_line}
<p><b>Bill number:</b> {escape(bill.number)}<br>
<b>Issue date:</b> {issued}<br>
<b>Due date:</b> {due}<br>
<b>Status:</b> {escape(bill.state.replace("_", " "))}</p>
<table border="1" width="100%">
<thead><tr><th width="75%" align="left">Description</th>
<th width="25%" align="right">Amount</th></tr></thead>
<tbody>
{rows}
<tr><td width="75%"><b>Total</b></td>
<td width="25%" align="right"><b>{_money(bill.total_cents)}</b></td></tr>
<tr><td width="75%">Paid</td><td width="25%" align="right">{_money(bill.paid_cents)}</td></tr>
<tr><td width="75%"><b>Balance due</b></td>
<td width="25%" align="right"><b>{_money(bill.balance_cents)}</b></td></tr>
</tbody>
</table>
<p style="color: #666;">Thank you for your business.</p>
</body>
</html>
"""


NC_PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Clio sandbox</title></head>
<body style="font-family: sans-serif;">
<h1>Clio sandbox bill</h1>
<p>Bill id: <strong id="bill-id">(none)</strong></p>
<p>This page stands in for Clio's web UI (<code>/nc/#/bills/&lt;id&gt;</code>).</p>
<script>
function show() {
  var m = /#\\/bills\\/(\\d+)/.exec(window.location.hash);
  document.getElementById("bill-id").textContent = m ? m[1] : "(none)";
}
window.addEventListener("hashchange", show);
show();
</script>
</body>
</html>
"""
