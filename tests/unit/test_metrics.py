"""Handlers' metrics: no EMF line on stdout when POWERTOOLS_METRICS_DISABLED is set, however
many invocations one process serves; unchanged when metrics are on."""

import json

import pytest
from aws_lambda_powertools.metrics import MetricUnit

from billbridge.metrics import handler_metrics


def _handler(metrics):
    @metrics.log_metrics
    def handler(event, context):
        metrics.add_metric(name="EnvelopeSent", unit=MetricUnit.Count, value=1)
        return "ok"

    return handler


def test_given_metrics_disabled_when_one_process_serves_250_invocations_then_nothing_is_printed(
    monkeypatch, capsys
):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    metrics = handler_metrics()
    metrics.clear_metrics()
    handler = _handler(metrics)

    for _ in range(250):
        handler({}, None)

    assert capsys.readouterr().out == ""
    assert metrics.metric_set == {}  # nothing kept either


def test_given_metrics_on_when_invoked_then_each_invocation_flushes_its_emf_line(
    monkeypatch, capsys
):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "BillBridge")
    metrics = handler_metrics()
    metrics.clear_metrics()
    handler = _handler(metrics)

    handler({}, None)
    handler({}, None)

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 2 and all(line["EnvelopeSent"] == [1.0] for line in lines)


def test_given_metrics_disabled_when_a_metric_is_malformed_then_it_still_fails(monkeypatch):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    with pytest.raises(Exception, match="unit"):
        handler_metrics().add_metric(name="Sent", unit="Furlongs", value=1)
