"""The prometheus worker: turns events into counters and gauges that Prometheus scrapes.

Values live in a SQLite state file and are served by a collector reading that state, so a restart
serves exactly the totals it had (counters never reset) and a redelivered event is not counted twice.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from typing import ClassVar
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server

from sink_lib.event import Event
from workers.errors import RetryLater
from workers.plugin import WorkerPlugin

from .collector import StateCollector
from .mapping import Update, updates
from .settings import PrometheusSettings
from .state import MetricState


class PrometheusWorker(WorkerPlugin):
    """Serves event counters and storage/health gauges on ``EVENTSINK_PROMETHEUS_PORT``."""

    name: ClassVar[str] = "prometheus"
    settings_model = PrometheusSettings
    settings: PrometheusSettings

    def __init__(self, settings: PrometheusSettings) -> None:
        super().__init__(settings)
        self.state = MetricState(settings.state_path, settings.dedupe_window_s, settings.dedupe_max_ids)
        self.registry = CollectorRegistry()
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._storage_labels = tuple(settings.storage_labels)

    @property
    def port(self) -> int:
        """The port the metrics are served on (the chosen one when the setting is 0)."""
        if self._server is None:
            raise RuntimeError("the prometheus worker is not open")
        return int(self._server.server_address[1])

    def open(self) -> None:
        """Load the state and start serving it; RetryLater while the state file or port is taken."""
        try:
            self.state.open()
        except sqlite3.Error as exc:
            self.state.close()
            raise RetryLater(f"cannot open the state file {self.state.path}: {exc}") from exc
        self.registry = CollectorRegistry()
        self.registry.register(StateCollector(self.state))
        try:
            self._server, self._thread = start_http_server(
                self.settings.port, addr=self.settings.address, registry=self.registry
            )
        except OSError as exc:
            self.state.close()
            raise RetryLater(
                f"cannot listen on {self.settings.address}:{self.settings.port} (EVENTSINK_PROMETHEUS_PORT): {exc}"
            ) from exc

    def write(self, batch: Sequence[Event]) -> None:
        """Apply the events not applied before; returns once the new totals are on disk."""
        try:
            self.state.apply(batch, self._changes)
        except sqlite3.Error as exc:
            raise RetryLater(f"cannot update the state file {self.state.path}: {exc}") from exc

    def close(self) -> None:
        """Stop serving and close the state file."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.state.close()

    def _changes(self, event: Event) -> list[Update]:
        return updates(event, self._storage_labels)
