"""Email templates with merge fields (S2, T1): rendered by Jinja2's sandboxed environment, with
bounds on what one render may spend.

A template may use only the merge fields below; an unknown field or bad syntax is refused when
the firm saves its settings, never discovered while sending. The payment link does not exist
until an envelope is sent (P1), so drafts keep `{{ pay_link }}` as written and the send step
puts the link in.

Staff write these templates, so a render must not be able to spend unbounded time or memory
(`{% for i in range(100000) %}{% for j in range(100000) %}...`, `[client_name] * 3000000`, a
string doubled in a loop). Jinja's sandbox keeps a template from reaching Python objects but
bounds nothing, so every render here runs under `RenderLimits`:

* operations: each call, attribute or item read, operator, filter, `~` concatenation and loop
  turn costs one; a render may make `operations` of them;
* sizes: no string or list it makes may exceed `value_chars` (checked before the operations
  that could make one huge: `*`, `+`, `~`, `replace`, `join`, `center`, `indent`, `batch`,
  `slice`, `range`), and its output may not exceed `output_chars`;
* time: the wall clock is checked at every operation against `seconds`.

Filters and string methods that only make text bigger (`format`, `center` beyond the limit,
`str.ljust`, `str.zfill`, ...) or serialise objects (`tojson`, `pprint`, `xmlattr`) are not
available, nor is the `lipsum` generator. Any failure of a render, a template's own `{{ 1//0 }}`
included, is a `TemplateProblem` with the reason in words: settings refuse it when saving
(sample values), drafting turns it into a 422 naming the template and the bill.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache, lru_cache, wraps
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jinja2 import Template
    from jinja2.sandbox import SandboxedEnvironment

MERGE_FIELDS: dict[str, str] = {
    "client_name": "the client's name as in Clio",
    "bill_numbers": "the envelope's bill numbers, comma-separated",
    "amount_due": "what is payable now on the envelope's bills, formatted",
    "amounts_due": "each bill's number and the amount payable now, one per line",
    "invoice_lines": "the envelope's operating invoices, number and amount, one per line",
    "invoice_amount_due": "what is payable now on the envelope's operating invoices",
    "trust_request_lines": "the envelope's trust requests, number and amount, one per line",
    "trust_amount_due": "what is payable now on the envelope's trust requests",
    "due_dates": "the bills' due dates, comma-separated",
    "firm_name": "the firm's name from settings",
    "pay_link": "the payment link (filled in when the envelope is sent)",
}
PAY_LINK_MARKER = "{{ pay_link }}"
# How the OpenAPI document names a template's grammar (a JSON Schema format).
TEMPLATE_FORMAT = "billbridge-template"

SAMPLE: dict[str, str] = {
    "client_name": "Acme Ltd",
    "bill_numbers": "INV-0042, INV-0043",
    "amount_due": "$1,500.00",
    "amounts_due": "INV-0042: $1,000.00\nINV-0043: $500.00",
    "invoice_lines": "INV-0042: $1,000.00",
    "invoice_amount_due": "$1,000.00",
    "trust_request_lines": "TR-0043: $500.00",
    "trust_amount_due": "$500.00",
    "due_dates": "Oct 31, 2026",
    "firm_name": "Smith & Jones LLP",
    "pay_link": "https://pay.example.com/pay/abc",
}


@dataclass(frozen=True)
class RenderLimits:
    """What one render may spend. A firm's real templates use a few dozen operations."""

    operations: int = 20_000
    value_chars: int = 50_000  # any one string (characters) or list (items) made while rendering
    output_chars: int = 50_000  # the rendered text (a body template is at most 20,000 characters)
    seconds: float = 1.0


DEFAULT_LIMITS = RenderLimits()


class TemplateProblem(ValueError):
    """A template that cannot be rendered: bad syntax, a field that is not a merge field, an
    expression that fails, or a render beyond `RenderLimits`."""


class _LimitReached(Exception):
    """A render went beyond its limits (raised inside Jinja, reported as TemplateProblem)."""


@dataclass
class _Budget:
    limits: RenderLimits
    clock: Callable[[], float]
    operations_left: int = 0
    deadline: float = 0.0

    def __post_init__(self) -> None:
        self.operations_left = self.limits.operations
        self.deadline = self.clock() + self.limits.seconds

    def tick(self) -> None:
        self.operations_left -= 1
        if self.operations_left < 0:
            raise _LimitReached(f"it takes more than {self.limits.operations:,} steps to render")
        if self.clock() > self.deadline:
            raise _LimitReached(f"it takes longer than {self.limits.seconds:g} s to render")

    def check_size(self, size: int, what: str = "a text or list") -> None:
        if size > self.limits.value_chars:
            raise _LimitReached(
                f"it makes {what} longer than {self.limits.value_chars:,} characters or items"
            )

    def check_value(self, value: Any) -> Any:
        if isinstance(value, str | list | tuple | dict | set | frozenset | bytes):
            self.check_size(len(value))
        return value


_BUDGET: ContextVar[_Budget | None] = ContextVar("template_budget", default=None)


def _budget() -> _Budget:
    budget = _BUDGET.get()
    if budget is None:  # only render() uses this environment, and it always sets one
        raise _LimitReached("a template was rendered without limits")
    return budget


def _length(value: Any) -> int:
    return len(value) if isinstance(value, str | list | tuple) else 0


def _estimate_replace(s: Any, old: Any = "", new: Any = "", count: Any = None) -> int:
    text, old_text, new_text = str(s), str(old), str(new)
    hits = text.count(old_text) if old_text else len(text) + 1
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    return len(text) + hits * max(0, len(new_text) - len(old_text))


def _estimate_join(value: Any, d: Any = "", attribute: Any = None) -> int:
    items = list(value) if isinstance(value, list | tuple | str) else []
    return sum(len(str(i)) for i in items) + len(str(d)) * max(0, len(items) - 1)


def _estimate_indent(s: Any, width: Any = 4, first: Any = False, blank: Any = False) -> int:
    pad = width if isinstance(width, int) else len(str(width))
    return len(str(s)) + (str(s).count("\n") + 1) * max(0, pad)


def _estimate_center(value: Any, width: Any = 80) -> int:
    return max(len(str(value)), width if isinstance(width, int) else 0)


def _estimate_batch(value: Any, linecount: Any = 1, fill_with: Any = None) -> int:
    # The last batch is filled up to `linecount` items.
    return (linecount if isinstance(linecount, int) else 0) + _length(value)


def _estimate_slice(value: Any, slices: Any = 1, fill_with: Any = None) -> int:
    return (slices if isinstance(slices, int) else 0) + _length(value)


# Filters that could make a value far bigger than their input: the result's size, estimated
# from the arguments before the filter runs.
_SIZE_BEFORE: dict[str, Callable[..., int]] = {
    "replace": _estimate_replace,
    "join": _estimate_join,
    "indent": _estimate_indent,
    "center": _estimate_center,
    "batch": _estimate_batch,
    "slice": _estimate_slice,
}
_REMOVED_FILTERS = ("format", "tojson", "pprint", "xmlattr", "urlize", "filesizeformat")
# str methods a template may call: none of them can make a string bigger than itself.
_STR_METHODS = frozenset(
    {
        "lower",
        "upper",
        "title",
        "capitalize",
        "casefold",
        "swapcase",
        "strip",
        "lstrip",
        "rstrip",
        "split",
        "rsplit",
        "splitlines",
        "partition",
        "rpartition",
        "removeprefix",
        "removesuffix",
        "startswith",
        "endswith",
        "count",
        "find",
        "rfind",
        "isalpha",
        "isalnum",
        "isdigit",
        "isdecimal",
        "isnumeric",
        "isspace",
        "islower",
        "isupper",
        "istitle",
    }
)
_MAX_POWER_BITS = 256


def _guarded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    from jinja2.utils import _PassArg

    estimate = _SIZE_BEFORE.get(name)
    # A filter that asks for the environment, context or eval context gets it first.
    skip = 0 if _PassArg.from_obj(function) is None else 1

    @wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        budget = _budget()
        budget.tick()
        if estimate is not None:
            budget.check_size(estimate(*args[skip:], **kwargs))
        return budget.check_value(function(*args, **kwargs))

    return guarded


def _bounded_range(*args: int) -> range:
    budget = _budget()
    budget.tick()
    numbers = range(*args)
    budget.check_size(len(numbers), "a range")
    return numbers


def _loop_turns(iterable: Iterable[Any]) -> Iterator[Any]:
    """Every `{% for %}` iterates through this: one operation per turn."""
    budget = _budget()
    for item in iterable:
        budget.tick()
        yield item


def _concat(*parts: Any) -> str:
    """`a ~ b`: the joined length is checked before the text is made."""
    budget = _budget()
    budget.tick()
    texts = [str(p) for p in parts]
    budget.check_size(sum(len(t) for t in texts))
    return "".join(texts)


_INTERNAL_NAMES = {"__bb_loop_turns__": _loop_turns, "__bb_concat__": _concat}
_INTERNALS = (_loop_turns, _concat)


@cache
def _environment() -> SandboxedEnvironment:
    # Built on first use: Jinja2 is a noticeable part of a cold start, and only settings
    # writes and drafting need it.
    from jinja2 import StrictUndefined
    from jinja2.runtime import Context
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class BoundedSandbox(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})
        intercepted_unops = frozenset({"-", "+"})

        def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
            if isinstance(obj, str) and callable(value) and attr not in _STR_METHODS:
                return False
            return bool(super().is_safe_attribute(obj, attr, value))

        def getattr(self, obj: Any, attribute: str) -> Any:
            _budget().tick()
            return super().getattr(obj, attribute)

        def getitem(self, obj: Any, argument: Any) -> Any:
            _budget().tick()
            return super().getitem(obj, argument)

        def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
            budget = _budget()
            budget.tick()
            if operator == "*":
                for seq, times in ((left, right), (right, left)):
                    if isinstance(seq, str | list | tuple) and isinstance(times, int):
                        budget.check_size(len(seq) * max(0, times))
            elif operator == "+" and isinstance(left, str | list | tuple):
                budget.check_size(_length(left) + _length(right))
            elif operator == "%" and isinstance(left, str):
                raise _LimitReached("% formatting of text is not available in templates")
            elif operator == "**" and isinstance(left, int) and isinstance(right, int):
                if abs(left) > 1 and right * max(1, abs(left).bit_length()) > _MAX_POWER_BITS:
                    raise _LimitReached("it raises a number to too large a power")
            return budget.check_value(super().call_binop(context, operator, left, right))

        def call_unop(self, context: Context, operator: str, arg: Any) -> Any:
            _budget().tick()
            return super().call_unop(context, operator, arg)

        def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
            budget = _budget()
            if obj not in _INTERNALS:
                budget.tick()
            return budget.check_value(super().call(context, obj, *args, **kwargs))

    environment = BoundedSandbox(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
    )
    for name in _REMOVED_FILTERS:
        environment.filters.pop(name, None)
    environment.filters = {
        name: _guarded_filter(name, function) for name, function in environment.filters.items()
    }
    environment.globals.pop("lipsum", None)
    environment.globals["range"] = _bounded_range
    return environment


def _syntax(text: str) -> Any:
    """The parsed template, or TemplateProblem for bad syntax."""
    from jinja2 import TemplateError

    try:
        return _environment().parse(text)
    except TemplateError as exc:
        raise TemplateProblem(
            f"The template has a syntax error: {_sentence(exc.message)}"
        ) from None


@lru_cache(maxsize=256)
def _compiled(text: str) -> Template:
    """The template, compiled once per text, with every loop turn and `~` counted."""
    from jinja2 import TemplateError, nodes

    parsed = _syntax(text)
    for loop in parsed.find_all(nodes.For):
        loop.iter = nodes.Call(nodes.Name("__bb_loop_turns__", "load"), [loop.iter], [], None, None)
    for concat in list(parsed.find_all(nodes.Concat)):
        parts = concat.nodes
        concat.nodes = [nodes.Call(nodes.Name("__bb_concat__", "load"), parts, [], None, None)]
    try:
        return _environment().from_string(parsed)
    except TemplateError as exc:
        raise TemplateProblem(
            f"The template has a syntax error: {_sentence(exc.message)}"
        ) from None


@lru_cache(maxsize=256)
def check_template(text: str) -> None:
    """Raise TemplateProblem naming the problem when `text` is not a usable template. (Every
    settings read validates the firm's templates: a template found usable is not checked
    again; a problem is never cached.)"""
    from jinja2 import meta

    unknown = sorted(meta.find_undeclared_variables(_syntax(text)) - MERGE_FIELDS.keys())
    if unknown:
        allowed = ", ".join(sorted(MERGE_FIELDS))
        raise TemplateProblem(f"Unknown merge field {unknown[0]!r}. Allowed: {allowed}.")
    render(text, SAMPLE)


def render(
    text: str,
    fields: Mapping[str, Any],
    *,
    limits: RenderLimits = DEFAULT_LIMITS,
    clock: Callable[[], float] = time.monotonic,
) -> str:
    """Render with the given merge fields, within `limits`; `pay_link` stays as its marker
    unless given. Any failure is a TemplateProblem saying why."""
    from jinja2 import TemplateError

    template = _compiled(text)
    values = {**dict(fields), **_INTERNAL_NAMES}
    values.setdefault("pay_link", PAY_LINK_MARKER)
    token = _BUDGET.set(_Budget(limits, clock))
    try:
        out: list[str] = []
        size = 0
        for chunk in template.generate(values):
            size += len(chunk)
            if size > limits.output_chars:
                raise _LimitReached(f"it renders more than {limits.output_chars:,} characters")
            out.append(chunk)
        return "".join(out)
    except _LimitReached as exc:
        raise TemplateProblem(f"The template does too much: {exc}.") from None
    except TemplateError as exc:
        raise TemplateProblem(
            f"The template cannot be rendered: {_sentence(exc.message)}"
        ) from None
    except (ArithmeticError, TypeError, ValueError, LookupError, RecursionError) as exc:
        # Expressions of the template itself failing on these values ({{ 1 // 0 }}).
        raise TemplateProblem(f"The template cannot be rendered: {_reason(exc)}.") from None
    finally:
        _BUDGET.reset(token)


def _sentence(text: str | None) -> str:
    """Jinja's own words, ended as a sentence."""
    text = (text or "").strip() or "unknown problem"
    return text if text.endswith((".", "?", "!")) else f"{text}."


def _reason(exc: Exception) -> str:
    return f"{exc} ({type(exc).__name__})" if str(exc) else type(exc).__name__


def fill_pay_link(text: str, url: str) -> str:
    """Put the payment link where the draft kept its marker, or add it when staff removed it."""
    if PAY_LINK_MARKER in text:
        return text.replace(PAY_LINK_MARKER, url)
    return f"{text.rstrip()}\n\nPay online: {url}\n"
