"""The handlers' Powertools Metrics, silent when POWERTOOLS_METRICS_DISABLED says so.

Powertools (3.37) honours the switch only in `flush_metrics`, and there it neither prints nor
clears. `add_metric` never looks at it: once one metric holds 100 values (EMF's limit per
blob) it prints the blob to stdout, switch or not. In Lambda a process handles one event at a
time and flushes after each, so nothing piles up; in one long-lived process (the local stack,
`make bench`, the tests) the unflushed values pile up across invocations, and every hundredth
value of a metric printed an EMF line. Here a disabled metric is still validated (a bad name or
unit fails in tests as in Lambda) and then dropped, and a disabled flush forgets everything.
"""

from __future__ import annotations

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
    AmazonCloudWatchEMFProvider,
)
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.metric_properties import (
    MetricResolution,
    MetricUnit,
)


class QuietWhenDisabled(AmazonCloudWatchEMFProvider):
    def add_metric(
        self,
        name: str,
        unit: MetricUnit | str,
        value: float,
        resolution: MetricResolution | int = 60,
    ) -> None:
        super().add_metric(name=name, unit=unit, value=value, resolution=resolution)
        if is_metrics_disabled():
            # Never more than this one value, so Powertools' print at 100 cannot happen.
            self.metric_set.pop(name.strip(), None)

    def flush_metrics(self, raise_on_empty_metrics: bool = False) -> None:
        if is_metrics_disabled():
            self.clear_metrics()
            return
        super().flush_metrics(raise_on_empty_metrics=raise_on_empty_metrics)


def handler_metrics() -> Metrics:
    """A handler's Metrics: Powertools' own, over the provider above (sharing Powertools'
    class-level sets, as every Metrics instance does)."""
    metrics = Metrics()
    metrics.provider = QuietWhenDisabled(
        metric_set=metrics.metric_set,
        dimension_set=metrics.dimension_set,
        metadata_set=metrics.metadata_set,
        default_dimensions=metrics.default_dimensions,
    )
    return metrics
