"""The shared plugin contract, for the google_analytics worker against the local fake GA4."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from tests.privacy.recorder import RecordingServer
from workers.google_analytics import GoogleAnalyticsSettings, GoogleAnalyticsWorker
from workers.plugin import WorkerPlugin
from workers.testing import PluginContract, PluginFactory, contract_settings

from .conftest import Script


class TestGoogleAnalyticsContract(PluginContract):
    plugin_class = GoogleAnalyticsWorker

    @pytest.fixture
    def make_plugin(self, ga4: RecordingServer, script: Script) -> PluginFactory:
        self.script, self.server = script, ga4

        def make(**overrides: Any) -> GoogleAnalyticsWorker:
            values: dict[str, Any] = {"measurement_id": "G-CONTRACT", "api_secret": "s", "endpoint": ga4.url,
                                      "privacy_secret": "contract-secret"}
            return GoogleAnalyticsWorker(contract_settings(GoogleAnalyticsSettings, **{**values, **overrides}))

        return make

    def read_back(self, plugin: WorkerPlugin, ids: Sequence[str]) -> Mapping[str, float]:
        """How many times GA4 received each event (GA4 itself would count every copy)."""
        return Counter(e["params"]["event_id"] for e in self.script.accepted)

    def destination_total(self, plugin: WorkerPlugin) -> int:
        """Requests that reached the fake GA4."""
        return len(self.server.requests)
