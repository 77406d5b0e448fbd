"""Schemathesis hooks (SCHEMATHESIS_HOOKS=tests.e2e.schemathesis_hooks): what the OpenAPI
documents say that JSON Schema cannot spell, taught to the generator. Nothing here filters or
forgives a failure; each hook only makes generated requests mean what the document means.

- `billbridge-template` (the email templates' format): Jinja2 over the merge fields. Plain
  text and merge fields are valid templates; anything else is for the server to refuse.
- `email` (the reply-to address): the API takes what pydantic's EmailStr (email-validator)
  takes, which refuses special-use domains such as `.test` (RFC 6761) that the format alone
  allows; generated addresses are held to that same validator.
- `billbridge-password` (sign-up's password): the user pool's policy, 12 or more characters
  with an upper and a lower case letter and a digit, which JSON Schema spells only with
  look-aheads; generated passwords meet it.
- Money (`*_cents`) is a JSON integer literal. JSON Schema 2020-12 (OpenAPI 3.1) counts 2.0 as
  the integer 2, and schemathesis sends such whole floats as valid integers; the API refuses
  them (issue 9, finding 7: `1e2` is not an amount). The same number spelled as an integer is
  what the document means by `"type": "integer"`. So are the reminder settings' day and count
  fields (StrictInt, like money).
"""

from __future__ import annotations

import sys
from typing import Any

import schemathesis
from hypothesis import strategies as st
from hypothesis.internal import lambda_sources
from pydantic import EmailStr, TypeAdapter, ValidationError

from billbridge.domain.accounts import PASSWORD_FORMAT
from billbridge.domain.templates import MERGE_FIELDS, TEMPLATE_FORMAT

# Printable text with none of Jinja2's delimiters' characters.
_PLAIN = st.text(
    alphabet=st.characters(
        categories=("L", "N", "P", "S", "Zs"), exclude_characters="{}%#\u2028\u2029"
    ),
    min_size=1,
    max_size=30,
)
_FIELD = st.sampled_from(sorted(MERGE_FIELDS)).map(lambda name: "{{ " + name + " }}")
TEMPLATES = st.lists(st.one_of(_PLAIN, _FIELD), min_size=1, max_size=5).map("".join)

schemathesis.openapi.format(TEMPLATE_FORMAT, TEMPLATES)

_EMAIL = TypeAdapter(EmailStr)


def _email_accepted(address: str) -> bool:
    # `format: email` is RFC 5321's ASCII address (an internationalized one is `idn-email`):
    # schemathesis checks answers against that, so generate only what both sides call email.
    if not address.isascii():
        return False
    try:
        _EMAIL.validate_python(address)
    except ValidationError:
        return False
    return True


schemathesis.openapi.format("email", st.emails().filter(_email_accepted))

_PASSWORD_TAIL = st.text(
    alphabet=st.characters(categories=("L", "N", "P", "S")), min_size=9, max_size=40
)
schemathesis.openapi.format(
    PASSWORD_FORMAT,
    st.tuples(
        st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
        st.sampled_from("abcdefghijklmnopqrstuvwxyz"),
        st.sampled_from("0123456789"),
        _PASSWORD_TAIL,
    ).map("".join),
)


# Fields the API takes as strict JSON integers: money, the reminder settings' day and count
# fields (`first_after_days`, `repeat_every_days`, `max_count`) and the plan limits'
# `max_installments`.
STRICT_INTEGER_SUFFIXES = ("_cents", "_days", "_count", "_installments")


def _integer_spelling(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: int(item)
            if key.endswith(STRICT_INTEGER_SUFFIXES)
            and isinstance(item, float)
            and item.is_integer()
            else _integer_spelling(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_integer_spelling(item) for item in value]
    return value


@schemathesis.hook
def map_body(context: Any, body: Any) -> Any:
    return _integer_spelling(body)


def _describe_lambdas_safely() -> None:
    """Work around CPython 3.11.7's `SystemError: AST constructor recursion depth mismatch`
    (python/cpython#106905): Hypothesis parses a module's source to describe a lambda in a
    strategy's repr, and deep in schemathesis' call stack that parse fails, erroring the
    operation. A description is cosmetic, so a failed parse describes the lambda as unknown,
    as Hypothesis itself does when it cannot find the source."""
    if sys.version_info >= (3, 12):
        return
    original = lambda_sources._lambda_description

    def described(f: Any, *args: Any, **kwargs: Any) -> str:
        try:
            return str(original(f, *args, **kwargs))
        except SystemError:
            return "lambda: <unknown>"

    lambda_sources._lambda_description = described


_describe_lambdas_safely()
