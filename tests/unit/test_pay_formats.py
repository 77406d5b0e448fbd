"""The pay page's server-side money and dates in the client's language (functions/pay/formats.py):
what the page shows before (or without) its script re-formats them with Intl."""

from __future__ import annotations

import importlib.util
from datetime import date
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "pay_formats", Path(__file__).resolve().parents[2] / "functions" / "pay" / "formats.py"
)
assert _SPEC and _SPEC.loader
formats = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(formats)


@pytest.mark.parametrize(
    ("header", "locale"),
    [
        ("de-DE,de;q=0.9,en;q=0.8", "de-DE"),
        ("*", "en-US"),
        (None, "en-US"),
        ('"><script>', "en-US"),  # never a tag that could break out of <html lang="...">
        ("fr;q=0.8", "fr"),
    ],
)
def test_the_clients_first_language_is_a_checked_tag(header: str | None, locale: str) -> None:
    assert formats.client_locale(header) == locale


@pytest.mark.parametrize(
    ("locale", "text"),
    [
        ("en-US", "$1,130.25"),
        ("de-DE", "1.130,25\u00a0$"),
        ("fr-FR", "1\u202f130,25\u00a0$"),
        ("nl-NL", "$1.130,25"),
        ("xx", "$1,130.25"),
    ],
)
def test_money_in_the_clients_language(locale: str, text: str) -> None:
    assert formats.money_in(113_025, "USD", locale) == text


def test_dates_in_the_clients_language() -> None:
    day = date(2026, 10, 5)
    assert formats.date_in(day, "en-US") == "Oct 5, 2026"
    assert formats.date_in(day, "en-GB") == "5 Oct 2026"
    assert formats.date_in(day, "de-DE") == "05.10.2026"
    assert formats.date_in(day, "fr-FR") == "05/10/2026"
