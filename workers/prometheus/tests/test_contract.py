"""The shared plugin contract, for the prometheus worker."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Mapping, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from sink_lib.event import Event, build_envelope
from workers.plugin import WorkerPlugin
from workers.prometheus import PrometheusSettings, PrometheusWorker
from workers.testing import PluginContract, PluginFactory, contract_settings

from .conftest import scrape

EVENTS_TOTAL = "eventsink_events_total"


class TestPrometheusContract(PluginContract):
    plugin_class = PrometheusWorker

    @pytest.fixture
    def make_plugin(self, tmp_path: Path) -> PluginFactory:
        self.state_file = tmp_path / "state.sqlite3"

        def make(**overrides: Any) -> PrometheusWorker:
            options = {"port": 0, "address": "127.0.0.1", "state_file": self.state_file, **overrides}
            return PrometheusWorker(contract_settings(PrometheusSettings, **options))

        return make

    def sample_events(self, count: int) -> list[Event]:
        """Events each from its own source, so each is counted in its own eventsink_events_total series."""
        ids = [str(uuid.uuid4()) for _ in range(count)]
        return [
            Event.parse(build_envelope("storage.file.uploaded", {"file_id": f"f{i}", "bytes": 100 + i},
                                       source=f"/contract/{event_id}", id=event_id))
            for i, event_id in enumerate(ids)
        ]

    def read_back(self, plugin: WorkerPlugin, ids: Sequence[str]) -> Mapping[str, float]:
        """How many times each event was counted: the value of the events counter of its own source."""
        assert isinstance(plugin, PrometheusWorker)
        per_source = {dict(labels).get("source"): v for (name, labels), v in scrape(plugin.port).items()
                      if name == EVENTS_TOTAL}
        return {i: per_source[f"/contract/{i}"] for i in ids if f"/contract/{i}" in per_source}

    def destination_total(self, plugin: WorkerPlugin) -> int:
        """Events counted in all: served while the worker is open, else as kept in its state file."""
        assert isinstance(plugin, PrometheusWorker)
        if plugin._server is not None:
            return int(sum(v for (name, _), v in scrape(plugin.port).items() if name == EVENTS_TOTAL))
        if not self.state_file.exists():
            return 0
        with closing(sqlite3.connect(self.state_file)) as db:
            row = db.execute("SELECT COALESCE(SUM(value), 0) FROM series WHERE metric = 'eventsink_events'").fetchone()
        return int(row[0])
