"""The shared plugin contract, for the prometheus worker."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from workers.plugin import WorkerPlugin
from workers.prometheus import PrometheusSettings, PrometheusWorker
from workers.testing import PluginContract, PluginFactory, contract_settings

from .conftest import scrape


class TestPrometheusContract(PluginContract):
    plugin_class = PrometheusWorker

    @pytest.fixture
    def make_plugin(self, tmp_path: Path) -> PluginFactory:
        def make(**overrides: Any) -> PrometheusWorker:
            options = {"port": 0, "address": "127.0.0.1", "state_file": tmp_path / "state.sqlite3", **overrides}
            return PrometheusWorker(contract_settings(PrometheusSettings, **options))

        return make

    def read_back(self, plugin: WorkerPlugin, ids: Sequence[str]) -> Mapping[str, int]:
        """Processed ids count once each only while the event counter equals how many there are."""
        assert isinstance(plugin, PrometheusWorker)
        processed = plugin.state.seen(ids)
        samples = scrape(plugin.port)
        counted = sum(v for (name, _), v in samples.items() if name == "eventsink_events_total")
        times = round(counted / len(processed)) if processed else 0
        return {event_id: times for event_id in processed}
