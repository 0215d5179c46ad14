"""The shared plugin contract, for the influxdb worker against the real InfluxDB 1.x."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from workers.influxdb import InfluxDBSettings, InfluxDBWorker
from workers.plugin import WorkerPlugin
from workers.testing import PluginContract, PluginFactory, contract_settings

from .conftest import Influx


@pytest.mark.influxdb
class TestInfluxDBContract(PluginContract):
    plugin_class = InfluxDBWorker

    @pytest.fixture
    def make_plugin(self, influx: Influx) -> PluginFactory:
        self.influx = influx

        def make(**overrides: Any) -> InfluxDBWorker:
            settings = contract_settings(InfluxDBSettings, url=influx.url, database=influx.database, **overrides)
            return InfluxDBWorker(settings)

        return make

    def read_back(self, plugin: WorkerPlugin, ids: Sequence[str]) -> Mapping[str, float]:
        """How many points carry each id, over every measurement."""
        wanted = set(ids)
        rows = self.influx.query('SELECT "id" FROM /.*/')
        return Counter(row["id"] for row in rows if row["id"] in wanted)

    def destination_total(self, plugin: WorkerPlugin) -> int:
        """Points in the test database, over every measurement (0 while the database does not exist)."""
        if self.influx.database not in self.influx.databases():
            return 0
        return len(self.influx.query('SELECT "id" FROM /.*/'))
