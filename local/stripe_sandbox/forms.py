"""Stripe's request encoding: `application/x-www-form-urlencoded` bodies whose keys nest with
brackets (`line_items[0][price_data][unit_amount]=500`, `metadata[firm_id]=x`, `expand[]=y`),
parsed into plain dicts and lists of strings, plus the check that refuses unknown parameters.

Hashes whose keys are all integers become lists, ordered by index, except under `metadata`, which
is always a hash. Values stay strings, as Stripe receives them; the state coerces them.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

_KEY = re.compile(r"([^\[\]]+)((?:\[[^\[\]]*\])*)")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")

# A schema names the parameters an endpoint accepts: a nested dict for a hash (applied to every
# element when the value is a list), None for a value taken as is.
Schema = dict[str, Any]


class FormError(ValueError):
    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


def parse_form(body: bytes | str) -> dict[str, Any]:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    root: dict[str, Any] = {}
    for raw_key, value in parse_qsl(text, keep_blank_values=True):
        match = _KEY.fullmatch(raw_key)
        segments = [raw_key] if match is None else [match[1], *_SEGMENT.findall(match[2])]
        node = root
        for depth, segment in enumerate(segments):
            if segment == "":  # `key[]`: append to the list
                segment = str(len(node))
            if depth == len(segments) - 1:
                if isinstance(node.get(segment), dict):
                    raise FormError(f"Invalid hash: {raw_key}", raw_key)
                node[segment] = value
                break
            child = node.setdefault(segment, {})
            if not isinstance(child, dict):
                raise FormError(f"Invalid array or hash: {raw_key}", raw_key)
            node = child
    return _listify(root, None)


def _listify(value: Any, key: str | None) -> Any:
    if not isinstance(value, dict):
        return value
    items = {k: _listify(v, k) for k, v in value.items()}
    if key != "metadata" and items and all(k.isdigit() for k in items):
        return [items[k] for k in sorted(items, key=int)]
    return items


def check_known(params: Any, schema: Schema, prefix: str = "") -> None:
    """Raise FormError naming the first parameter the schema does not know, as Stripe does."""
    if isinstance(params, list):
        for index, item in enumerate(params):
            check_known(item, schema, f"{prefix}[{index}]")
        return
    if not isinstance(params, dict):
        raise FormError(f"Invalid hash: {prefix}", prefix)
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else key
        if key not in schema:
            raise FormError(f"Received unknown parameter: {name}", name)
        if schema[key] is not None:
            check_known(value, schema[key], name)
