"""A prometheus-client collector that serves the series of a MetricState (no global metrics)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .mapping import METRICS
from .state import MetricState


class StateCollector(Collector):
    """Yields one metric family per metric that has series, with the exact persisted values."""

    def __init__(self, state: MetricState) -> None:
        self._state = state

    def collect(self) -> Iterable[Metric]:
        """The families, built from a snapshot of the state at scrape time."""
        families: dict[str, Metric] = {}
        for metric, labels, value in self._state.snapshot():
            family = families.get(metric)
            if family is None:
                spec = METRICS[metric]
                family_type = CounterMetricFamily if spec.kind == "counter" else GaugeMetricFamily
                family = families[metric] = family_type(spec.name, spec.help)
            sample = f"{metric}_total" if family.type == "counter" else metric
            family.add_sample(sample, labels, value)
        return [families[name] for name in sorted(families)]
