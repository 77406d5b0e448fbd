"""Email templates (T1, S2) under bounds: a template that fails on a bill's own values is a 422
naming the template and the bill, with nothing drafted; one that would spend unbounded time or
memory is refused when saved; what firms really write still renders."""

from __future__ import annotations

import itertools

import pytest
from pydantic import ValidationError

from billbridge.domain.errors import RuleViolation
from billbridge.domain.settings import EmailTemplate, FirmSettings, Templates
from billbridge.domain.templates import (
    SAMPLE,
    RenderLimits,
    TemplateProblem,
    check_template,
    render,
)
from tests.fakes import FakeSettings
from tests.unit.test_envelopes import FIRM, _service, stored

FAILS_ON_REAL_VALUES = "{% if client_name != 'Acme Ltd' %}{{ 1//0 }}{% endif %}"


def _settings_with_body(body: str) -> FakeSettings:
    settings = FakeSettings()
    settings.items[FIRM] = FirmSettings(
        templates=Templates(invoice=EmailTemplate(subject="Invoice {{ bill_numbers }}", body=body))
    )
    return settings


def test_given_a_template_failing_only_on_real_values_when_drafting_then_422_and_nothing_drafted():
    settings = _settings_with_body(FAILS_ON_REAL_VALUES)  # the sample values pass
    service, envelopes = _service([stored(1), stored(2, client_id=2)], settings)

    with pytest.raises(RuleViolation) as refused:
        service.draft(FIRM, [1, 2])

    error = refused.value
    assert (error.code, error.field) == ("template_failed", "bill_ids")
    assert "invoice email template's body" in error.message
    assert "for INV-1 of" in error.message and "'Client 1'" in error.message
    assert "division" in error.message and "templates.invoice.body" in error.message
    assert envelopes.envelopes == {} and envelopes.batches == {}


@pytest.mark.parametrize(
    "costly",
    [
        "{{ ([client_name]*3000000)|length }}",
        "{% for i in range(3000) %}{% for j in range(3000) %}{% endfor %}{% endfor %}",
        "{% set ns = namespace(s='x') %}{% for i in range(25) %}{% set ns.s = ns.s ~ ns.s %}"
        "{% endfor %}{{ ns.s|length }}",
        "{% for i in range(5000) %}{{ firm_name }}{% endfor %}",
        "{{ client_name|center(100000000) }}",
        "{{ client_name|replace('', client_name * 6000) }}",
        "{{ [1, 2]|batch(100000000, 'x')|list|length }}",
        "{{ 9 ** 9 ** 9 }}",
        "{{ '%100000000s' % client_name }}",
        "{{ client_name.ljust(100000000) }}",
        "{{ range(1000000000)|length }}",
    ],
)
def test_given_a_template_that_would_spend_unbounded_time_or_memory_then_it_is_refused(costly):
    with pytest.raises(TemplateProblem) as refused:
        check_template(costly)

    assert str(refused.value)
    with pytest.raises(ValidationError):
        EmailTemplate(subject="Invoice", body=costly)


def test_given_a_render_past_its_time_then_it_stops_saying_so():
    seconds = itertools.count(step=0.5)  # a clock that advances half a second per look

    with pytest.raises(TemplateProblem) as refused:
        render(
            "{% for i in range(10) %}{{ i }}{% endfor %}",
            SAMPLE,
            limits=RenderLimits(seconds=2.0),
            clock=lambda: next(seconds),
        )

    assert "longer than 2 s" in str(refused.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Invoice {{ bill_numbers }} from {{ firm_name }}", "Invoice INV-0042, INV-0043 from "),
        ("{% if amount_due %}Due: {{ amount_due }}{% endif %}", "Due: $1,500.00"),
        ("{{ amounts_due|replace('\n', '; ') }}", "INV-0042: $1,000.00; INV-0043: $500.00"),
        ("{{ client_name|upper }} / {{ client_name.split()|first }}", "ACME LTD / Acme"),
        ("{% for n in bill_numbers.split(', ') %}[{{ loop.index }}:{{ n }}]{% endfor %}", "[1:"),
        ("{{ firm_name ~ ' - ' ~ due_dates }}", "Smith & Jones LLP - Oct 31, 2026"),
    ],
)
def test_given_what_firms_write_then_it_renders_as_before(text, expected):
    assert expected in render(text, SAMPLE)
