"""The shared plugin contract, for the amplitude worker against the local fake Amplitude."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from tests.privacy.recorder import RecordingServer
from workers.amplitude import AmplitudeSettings, AmplitudeWorker
from workers.plugin import WorkerPlugin
from workers.testing import PluginContract, PluginFactory, contract_settings

from .conftest import Script


class TestAmplitudeContract(PluginContract):
    plugin_class = AmplitudeWorker

    @pytest.fixture
    def make_plugin(self, amplitude: RecordingServer, script: Script) -> PluginFactory:
        self.script = script

        def make(**overrides: Any) -> AmplitudeWorker:
            values: dict[str, Any] = {"api_key": "contract-key", "server_url": f"{amplitude.url}/2/httpapi",
                                      "privacy_secret": "contract-secret"}
            return AmplitudeWorker(contract_settings(AmplitudeSettings, **{**values, **overrides}))

        return make

    def read_back(self, plugin: WorkerPlugin, ids: Sequence[str]) -> Mapping[str, int]:
        """Amplitude counts an insert_id once (it ignores repeats for 7 days): accepted ids count 1."""
        accepted = set(self.script.accepted)
        return {i: 1 for i in ids if i in accepted}
