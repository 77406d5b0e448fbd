"""Money and dates in the client's language for the server-rendered pay page (from
`Accept-Language`); the page's script then re-formats them with the browser's own `Intl`.

A small table rather than a locale library: the page must read right before its script runs
(and without it), and a few separator conventions cover the languages our clients use. Anything
else falls back to US English.
"""

from __future__ import annotations

import re
from datetime import date

from billbridge.domain.envelopes import CURRENCY_SIGNS

# (group separator, decimal separator, sign after the amount)
_CONVENTIONS = {
    "en": (",", ".", False),
    "de": (".", ",", True),
    "es": (".", ",", True),
    "it": (".", ",", True),
    "nl": (".", ",", False),
    "pt": (".", ",", True),
    "da": (".", ",", True),
    "fr": ("\u202f", ",", True),
    "sv": ("\u00a0", ",", True),
    "nb": ("\u00a0", ",", True),
    "fi": ("\u00a0", ",", True),
    "pl": ("\u00a0", ",", True),
}
_MONTHS_EN = "January February March April May June July August September October November December"
MONTHS = _MONTHS_EN.split()
_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


def client_locale(accept_language: str | None) -> str:
    """The client's first language we can name in `<html lang>` (a checked BCP 47 tag)."""
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip()
        if tag and tag != "*" and len(tag) <= 35 and _TAG.match(tag):
            return tag
    return "en-US"


def _convention(locale: str) -> tuple[str, str, bool]:
    return _CONVENTIONS.get(locale.split("-")[0].lower(), _CONVENTIONS["en"])


def money_in(cents: int, currency: str, locale: str) -> str:
    group, decimal, after = _convention(locale)
    whole = f"{abs(cents) // 100:,}".replace(",", group)
    amount = f"{whole}{decimal}{abs(cents) % 100:02d}"
    sign = CURRENCY_SIGNS.get(currency, currency)
    text = f"{amount}\u00a0{sign}" if after else f"{sign}{amount}"
    return f"-{text}" if cents < 0 else text


def date_in(day: date, locale: str) -> str:
    """A calendar date: "Oct 5, 2026" in English, day.month.year (or day/month/year) else."""
    language = locale.split("-")[0].lower()
    if language == "en":
        if locale.lower() in ("en-gb", "en-ie", "en-au", "en-nz", "en-in"):
            return f"{day.day} {MONTHS[day.month - 1][:3]} {day.year}"
        return f"{MONTHS[day.month - 1][:3]} {day.day}, {day.year}"
    separator = "." if language in ("de", "da", "fi", "nb", "pl") else "/"
    if language == "sv":
        return day.isoformat()
    return f"{day.day:02d}{separator}{day.month:02d}{separator}{day.year}"
