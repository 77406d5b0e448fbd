"""What may reach an email header (S3): the subject, the sender's display name, the To and
Reply-To addresses.

A header is one line: a CR or LF in a value would end it and start another (`Bcc:` injection),
and Python's email package refuses to write such a value at all, so an envelope carrying one
could never be sent. The package also treats the other line breaks Python knows (VT, FF, the
file/group/record separators, NEL, U+2028, U+2029) as line ends, and writes the remaining
control characters (NUL, ESC, ...) raw into the header, which mail servers refuse. So: no
character of Unicode category Cc (controls), Zl or Zp (line and paragraph separators) in a
header value. Addresses must be one plain address (no display name, no list) with an ASCII
local part, as SES takes them.

Values staff type (settings, an envelope's subject) are refused with the field named; values
from Clio (a client's name or bill number merged into a subject) are made safe instead, since
staff cannot fix them here.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from billbridge.domain.errors import RuleViolation

HEADER_UNSAFE = "header_unsafe"
_BREAKING_CATEGORIES = ("Cc", "Zl", "Zp")
# The same rule as a JSON Schema pattern, for the OpenAPI documents: no Cc (U+0000-001F,
# U+007F-009F), no Zl (U+2028), no Zp (U+2029). check_header_text enforces it.
HEADER_TEXT_PATTERN = "^[^\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029]*$"
# Runs of whitespace-like controls become one space when a value is made safe.
_SPACING = re.compile(r"[\t\n\v\f\r\x1c-\x1f\x85\u2028\u2029]+")


def _describe(char: str) -> str:
    if char in "\r\n":
        return "a line break (CR or LF)"
    if char == "\t":
        return "a tab"
    if unicodedata.category(char) in ("Zl", "Zp"):
        return f"a line separator (U+{ord(char):04X})"
    return f"the control character U+{ord(char):04X}"


def header_problem(value: str) -> str | None:
    """What in `value` would break an email header, in words; None when nothing would."""
    for char in value:
        if unicodedata.category(char) in _BREAKING_CATEGORIES:
            return _describe(char)
    return None


def check_header_text(value: str, field: str, what: str) -> None:
    """Refuse a value staff gave for a header (RuleViolation naming `field`)."""
    problem = header_problem(value)
    if problem is not None:
        raise RuleViolation(
            f"{what[:1].upper()}{what[1:]} goes in the email's header and must be one line of "
            f"text: it contains {problem}.",
            field=field,
            code=HEADER_UNSAFE,
        )


def header_safe(value: str) -> str:
    """`value` made fit for a header: line breaks and tabs become one space, other control
    characters are dropped."""
    spaced = _SPACING.sub(" ", value)
    return "".join(c for c in spaced if unicodedata.category(c) not in _BREAKING_CATEGORIES)


@lru_cache(maxsize=4096)  # a pure function; checking an address costs about a millisecond
def address_problem(address: str) -> str | None:
    """Why `address` cannot be an email's To or Reply-To, in words; None when it can."""
    # Imported on first use: email-validator costs every cold start otherwise.
    from email_validator import EmailNotValidError, validate_email

    problem = header_problem(address)
    if problem is not None:
        return f"it contains {problem}"
    try:
        validate_email(address, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        return str(exc)
    return None


def sendable_address(address: str) -> str:
    """The address as SES takes it: as written, or with an internationalised domain in its
    ASCII form. Call only after `address_problem` found nothing."""
    if address.isascii():
        return address
    from email_validator import validate_email

    checked = validate_email(address, check_deliverability=False, allow_smtputf8=False)
    return str(checked.ascii_email or address)
