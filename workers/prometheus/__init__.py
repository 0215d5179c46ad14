"""The prometheus worker plugin: event counters and storage/health gauges, rebuilt exactly after restarts."""

from .settings import PrometheusSettings
from .worker import PrometheusWorker

__all__ = ["PrometheusSettings", "PrometheusWorker"]
