"""Bill PDFs: Clio's pre-rendered bill preview HTML turned into a PDF with fpdf2 (pure Python, so it
runs in Lambda without a browser or native libraries).

Clio API v4 has no PDF endpoint for bills, only `GET /bills/{id}/preview.json`, which answers a
themed HTML document meant for an iframe. fpdf2's `write_html` understands a small subset of HTML
and only Latin-1 text with its built-in fonts, so the preview is first reduced to that subset
(headings, paragraphs, emphasis, lists, simple tables) with the text folded to Latin-1. When even
the reduced document defeats the renderer (odd table shapes, say), the bill's text is laid out as
plain lines instead: a plainer PDF beats no attachment.
"""

from __future__ import annotations

import re
import unicodedata
from html import escape
from html.parser import HTMLParser

from fpdf import FPDF

# Elements whose content is never shown.
_HIDDEN = frozenset(
    {
        "head",
        "style",
        "script",
        "title",
        "noscript",
        "template",
        "svg",
        "iframe",
        "object",
        "button",
        "select",
        "textarea",
    }
)
_BLOCK = frozenset({"h1", "h2", "h3", "h4", "h5", "h6", "p", "ul", "ol", "li", "blockquote", "pre"})
_INLINE = frozenset({"b", "strong", "i", "em", "u"})
_VOID = frozenset({"br", "hr"})
# Block-ish containers fpdf2 does not know: they only separate lines.
_BREAKERS = frozenset(
    {
        "div",
        "section",
        "article",
        "header",
        "footer",
        "main",
        "address",
        "nav",
        "aside",
        "figure",
        "dl",
        "dt",
        "dd",
    }
)
_CELL_ALIGN = frozenset({"left", "center", "right"})
_SPACES = re.compile(r"\s+")

# Characters common in legal bills that Latin-1 lacks, and what to print instead.
_FOLD = {
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": ",",
    "\u201b": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u2013": "-",
    "\u2014": "-",
    "\u2015": "-",
    "\u2212": "-",
    "\u2026": "...",
    "\u2022": "*",
    "\u2023": "*",
    "\u2027": "-",
    "\u20ac": "EUR",
    "\u2122": "(TM)",
    "\u2009": " ",
    "\u200a": " ",
    "\u2002": " ",
    "\u2003": " ",
    "\u202f": " ",
    "\u200b": "",
    "\u200d": "",
    "\ufeff": "",
    "\u2032": "'",
    "\u2033": '"',
    "\u2116": "No.",
    "\u20b9": "INR",
    "\u2192": "->",
}


def to_latin1(text: str) -> str:
    """Fold `text` into what fpdf2's core fonts can print (Latin-1), keeping it readable."""
    out: list[str] = []
    for ch in text:
        if ord(ch) < 256:
            out.append(ch)
        elif ch in _FOLD:
            out.append(_FOLD[ch])
        else:
            base = "".join(
                c for c in unicodedata.normalize("NFKD", ch) if ord(c) < 256 and c.isprintable()
            )
            out.append(base or "?")
    return "".join(out)


class _Reducer(HTMLParser):
    """Rewrites arbitrary HTML into the subset fpdf2 renders, and collects plain text lines."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.lines: list[str] = [""]
        self._hidden = 0
        self._tables = 0  # table nesting depth as met in the source
        self._in_row = False
        self._cell_tag: str | None = None  # "td" or "th" while inside a cell
        self._rows_in_table = 0
        self._table_start = 0  # index in parts of the open table's start tag
        self._row_start = 0
        self._cells_in_row = 0
        self._open_inline: list[str] = []

    # -- plain-text side -------------------------------------------------------------------

    def _newline(self) -> None:
        if self.lines[-1].strip():
            self.lines.append("")

    # -- HTML side -------------------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self._hidden += 1
            return
        if self._hidden:
            return
        attrs_map = {k: v for k, v in attrs if v is not None}
        if tag == "table":
            self._tables += 1
            if self._tables == 1:
                self._close_inline()
                self._rows_in_table = 0
                self._table_start = len(self.parts)
                border = "1" if attrs_map.get("border", "0") not in ("", "0") else "0"
                self.parts.append(f'<table border="{border}" width="100%">')
            self._newline()
        elif tag == "tr":
            if self._tables == 1:
                self._end_row()
                self._row_start = len(self.parts)
                self._cells_in_row = 0
                self.parts.append("<tr>")
                self._in_row = True
            self._newline()
        elif tag in ("td", "th"):
            if self._tables == 1 and self._in_row:
                self._end_cell()
                # fpdf2 takes column widths from the first row only (and warns about others).
                first_row = self._rows_in_table == 0
                self.parts.append(f"<{tag}{_cell_attrs(attrs_map, with_width=first_row)}>")
                self._cell_tag = tag
                self._cells_in_row += 1
            self.lines[-1] += "  "
        elif self._cell_tag is not None or self._tables:
            # Inside a table fpdf2 accepts text and emphasis only.
            if tag in _INLINE and self._cell_tag is not None:
                self.parts.append(f"<{_canonical(tag)}>")
                self._open_inline.append(_canonical(tag))
            elif tag == "br":
                self.parts.append(" ")
        elif tag in _BLOCK:
            self._close_inline()
            self.parts.append(f"<{tag}>")
            self._newline()
        elif tag in _INLINE:
            self.parts.append(f"<{_canonical(tag)}>")
            self._open_inline.append(_canonical(tag))
        elif tag in _VOID:
            self.parts.append(f"<{tag}>")
            self._newline()
        elif tag in _BREAKERS:
            self._newline()

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self._hidden = max(0, self._hidden - 1)
            return
        if self._hidden:
            return
        if tag == "table":
            if self._tables == 1:
                self._end_row()
                if self._rows_in_table == 0:
                    # fpdf2 cannot lay out a table without rows: drop the empty shell.
                    del self.parts[self._table_start :]
                else:
                    self.parts.append("</table>")
            self._tables = max(0, self._tables - 1)
            self._newline()
        elif tag == "tr":
            if self._tables == 1:
                self._end_row()
            self._newline()
        elif tag in ("td", "th"):
            if self._tables == 1:
                self._end_cell()
        elif self._tables:
            if self._cell_tag is not None and _canonical(tag) in self._open_inline:
                self._pop_inline(_canonical(tag))
        elif tag in _BLOCK:
            self._close_inline()
            self.parts.append(f"</{tag}>")
            self._newline()
        elif tag in _INLINE and _canonical(tag) in self._open_inline:
            self._pop_inline(_canonical(tag))
        elif tag in _BREAKERS:
            self.parts.append("<br>")
            self._newline()

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        # Runs of whitespace print as one space, as a browser shows them.
        text = to_latin1(_SPACES.sub(" ", data))
        if self._tables and not self._cell_tag is not None:
            return  # stray text between rows or cells
        self.parts.append(escape(text, quote=False))
        self.lines[-1] += text

    def _pop_inline(self, tag: str) -> None:
        while self._open_inline:
            top = self._open_inline.pop()
            self.parts.append(f"</{top}>")
            if top == tag:
                return

    def _close_inline(self) -> None:
        while self._open_inline:
            self.parts.append(f"</{self._open_inline.pop()}>")

    def _end_cell(self) -> None:
        if self._cell_tag is not None:
            self._close_inline()
            self.parts.append(f"</{self._cell_tag}>")
            self._cell_tag = None

    def _end_row(self) -> None:
        self._end_cell()
        if self._in_row:
            if self._cells_in_row:
                self.parts.append("</tr>")
                self._rows_in_table += 1
            else:
                del self.parts[self._row_start :]  # a row without cells breaks fpdf2's layout
            self._in_row = False

    def close(self) -> None:
        super().close()
        self._end_row()
        if self._tables:
            if self._rows_in_table:
                self.parts.append("</table>")
            else:
                del self.parts[self._table_start :]
        self._close_inline()


def _canonical(tag: str) -> str:
    return {"strong": "b", "em": "i"}.get(tag, tag)


def _cell_attrs(attrs: dict[str, str], *, with_width: bool) -> str:
    out = ""
    align = attrs.get("align", "").lower()
    if align in _CELL_ALIGN:
        out += f' align="{align}"'
    colspan = attrs.get("colspan", "").strip()
    if colspan.isdigit() and 1 < int(colspan) <= 20:
        out += f' colspan="{colspan}"'
    width = attrs.get("width", "").strip() if with_width else ""
    if width.endswith("%") and width[:-1].isdigit() and 0 < int(width[:-1]) <= 100:
        out += f' width="{width}"'
    return out


def reduce_html(html: str) -> tuple[str, list[str]]:
    """The fpdf2-safe HTML of `html`, and its text as lines (for the plain fallback)."""
    reducer = _Reducer()
    reducer.feed(html)
    reducer.close()
    lines = [_SPACES.sub(" ", line).strip() for line in reducer.lines if line.strip()]
    return "".join(reducer.parts), lines


def _new_pdf(title: str | None) -> FPDF:
    pdf = FPDF(format="Letter")
    pdf.set_creator("billbridge")
    if title:
        pdf.set_title(to_latin1(title))
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font("Helvetica", size=10)
    return pdf


def html_to_pdf(html: str, *, title: str | None = None) -> bytes:
    """Render bill preview HTML as a PDF document (bytes starting with `%PDF`)."""
    safe_html, lines = reduce_html(html)
    try:
        pdf = _new_pdf(title)
        pdf.write_html(safe_html)
        return bytes(pdf.output())
    except Exception:  # fpdf2 raises many kinds on HTML it cannot lay out
        pdf = _new_pdf(title)
        for line in lines or ["(empty bill preview)"]:
            pdf.multi_cell(0, 5, line, new_x="LMARGIN", new_y="NEXT")
        return bytes(pdf.output())
