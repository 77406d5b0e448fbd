"""Email templates with merge fields (S2, T1): rendered by Jinja2's sandboxed environment.

A template may use only the merge fields below; an unknown field or bad syntax is refused when
the firm saves its settings, never discovered while sending. The payment link does not exist
until an envelope is sent (P1), so drafts keep `{{ pay_link }}` as written and the send step
puts the link in.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jinja2.sandbox import SandboxedEnvironment

MERGE_FIELDS: dict[str, str] = {
    "client_name": "the client's name as in Clio",
    "bill_numbers": "the envelope's bill numbers, comma-separated",
    "amount_due": "what is outstanding on the envelope's bills, formatted",
    "amounts_due": "each bill's number and outstanding amount, one per line",
    "due_dates": "the bills' due dates, comma-separated",
    "firm_name": "the firm's name from settings",
    "pay_link": "the payment link (filled in when the envelope is sent)",
}
PAY_LINK_MARKER = "{{ pay_link }}"


@cache
def _environment() -> SandboxedEnvironment:
    # Built on first use: Jinja2 is a noticeable part of a cold start, and only settings
    # writes and drafting need it.
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
    )


SAMPLE: dict[str, str] = {
    "client_name": "Acme Ltd",
    "bill_numbers": "INV-0042, INV-0043",
    "amount_due": "$1,500.00",
    "amounts_due": "INV-0042: $1,000.00\nINV-0043: $500.00",
    "due_dates": "Oct 31, 2026",
    "firm_name": "Smith & Jones LLP",
    "pay_link": "https://pay.example.com/pay/abc",
}


class TemplateProblem(ValueError):
    """A template that cannot be rendered: bad syntax or a field that is not a merge field."""


def check_template(text: str) -> None:
    """Raise TemplateProblem naming the problem when `text` is not a usable template."""
    from jinja2 import TemplateError, meta

    try:
        parsed = _environment().parse(text)
    except TemplateError as exc:
        raise TemplateProblem(f"template syntax error: {exc.message}") from None
    unknown = sorted(meta.find_undeclared_variables(parsed) - MERGE_FIELDS.keys())
    if unknown:
        allowed = ", ".join(sorted(MERGE_FIELDS))
        raise TemplateProblem(f"unknown merge field {unknown[0]!r}; allowed: {allowed}")
    try:
        _environment().from_string(text).render(SAMPLE)
    except TemplateError as exc:
        raise TemplateProblem(f"template cannot be rendered: {exc.message}") from None
    except (ArithmeticError, TypeError, ValueError, LookupError) as exc:
        # Expressions of the template itself failing on sample values ({{ 1/0 }}).
        raise TemplateProblem(f"template cannot be rendered: {exc}") from None


def render(text: str, fields: Mapping[str, Any]) -> str:
    """Render with the given merge fields; `pay_link` stays as its marker unless given."""
    values = dict(fields)
    values.setdefault("pay_link", PAY_LINK_MARKER)
    return _environment().from_string(text).render(values)


def fill_pay_link(text: str, url: str) -> str:
    """Put the payment link where the draft kept its marker, or add it when staff removed it."""
    if PAY_LINK_MARKER in text:
        return text.replace(PAY_LINK_MARKER, url)
    return f"{text.rstrip()}\n\nPay online: {url}\n"
