"""Prometheus metrics of one worker, in a registry of its own (served on ``metrics_port``).

A registry per worker (rather than the process-global one) lets several workers, or a test's workers,
live in one process without clashing metric names.

A plugin adds metrics of its own by defining ``register_metrics(registry)``: :meth:`WorkerMetrics.include`
calls it once with this registry (see "Plugin metrics" in ``workers/README.md``).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from ..errors import PluginError

BATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class WorkerMetrics:
    """Counters, gauges and histograms the runtime updates, all labelled with the worker name."""

    def __init__(self, worker: str, registry: CollectorRegistry | None = None) -> None:
        self.worker = worker
        self.registry = registry if registry is not None else CollectorRegistry()
        r, w = self.registry, ["worker"]

        def counter(name: str, doc: str, labels: list[str] = w) -> Counter:
            return Counter(name, doc, labels, registry=r)

        self._processed = counter("eventsink_worker_events_processed", "Events written to the destination.")
        self._rejected = counter(
            "eventsink_worker_events_rejected", "Events dead-lettered, by cause.", ["worker", "cause"]
        )
        self._retried = counter("eventsink_worker_events_retried", "Events whose write is retried.")
        self._skipped = counter("eventsink_worker_events_skipped", "Events of types the worker does not take.")
        self._duplicates = counter("eventsink_worker_events_duplicate", "Repeated event ids within a batch.")
        self._errors = counter("eventsink_worker_unexpected_errors", "Unexpected exceptions from the plugin.")
        self._reconnects = counter("eventsink_worker_reconnects", "Broker connections lost and retried.")
        self._batch = Histogram(
            "eventsink_worker_batch_seconds", "Duration of deliver() per batch.", w, buckets=BATCH_BUCKETS,
            registry=r,
        )
        self._lag = Gauge("eventsink_worker_lag_seconds", "Now minus the oldest event time of the last batch.", w,
                          registry=r)
        self._depth = Gauge("eventsink_worker_queue_messages", "Messages ready in the worker queue.", w, registry=r)
        self._up = Gauge("eventsink_worker_destination_up", "1 while the destination takes writes.", w, registry=r)
        self.processed = self._processed.labels(worker)
        self.retried = self._retried.labels(worker)
        self.skipped = self._skipped.labels(worker)
        self.duplicates = self._duplicates.labels(worker)
        self.errors = self._errors.labels(worker)
        self.reconnects = self._reconnects.labels(worker)
        self.batch_seconds = self._batch.labels(worker)
        self.lag_seconds = self._lag.labels(worker)
        self.queue_messages = self._depth.labels(worker)
        self.destination_up = self._up.labels(worker)
        self._included: set[int] = set()

    def include(self, plugin: Any) -> None:
        """Let ``plugin`` register its own metrics here, once, when it defines ``register_metrics``.

        Raises PluginError when the plugin's metrics cannot be registered (e.g. a name the runtime uses).
        """
        register = getattr(plugin, "register_metrics", None)
        if register is None or id(plugin) in self._included:
            return
        try:
            register(self.registry)
        except ValueError as exc:  # prometheus_client: duplicated or invalid metric names
            raise PluginError(f"worker {self.worker!r}: its metrics cannot be registered: {exc}") from exc
        self._included.add(id(plugin))

    def rejected(self, cause: str) -> Any:
        """The dead-letter counter for ``cause`` (``rejected`` by the destination, or ``malformed``)."""
        return self._rejected.labels(self.worker, cause)

    def value(self, name: str, **labels: str) -> float:
        """Current value of a sample (for tests and the bench), 0 when absent."""
        found = self.registry.get_sample_value(name, {"worker": self.worker, **labels})
        return found or 0.0

    def serve(self, port: int, addr: str = "127.0.0.1") -> Any:
        """Serve ``/metrics`` on ``addr:port`` (loopback unless told); returns the server (``shutdown()`` stops it)."""
        server, _thread = start_http_server(port, addr=addr, registry=self.registry)
        return server
