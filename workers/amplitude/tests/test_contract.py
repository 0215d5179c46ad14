"""The shared plugin contract, for the amplitude worker against the local fake Amplitude."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from sink_lib.event import Event, build_envelope
from tests.privacy.recorder import RecordingServer
from workers.amplitude import AmplitudeSettings, AmplitudeWorker
from workers.plugin import WorkerPlugin
from workers.testing import PluginContract, PluginFactory, contract_settings

from .conftest import Script


class TestAmplitudeContract(PluginContract):
    plugin_class = AmplitudeWorker

    @pytest.fixture
    def make_plugin(self, amplitude: RecordingServer, script: Script) -> PluginFactory:
        self.script, self.server = script, amplitude

        def make(**overrides: Any) -> AmplitudeWorker:
            values: dict[str, Any] = {"api_key": "contract-key", "server_url": f"{amplitude.url}/2/httpapi",
                                      "privacy_secret": "contract-secret"}
            return AmplitudeWorker(contract_settings(AmplitudeSettings, **{**values, **overrides}))

        return make

    def sample_events(self, count: int) -> list[Event]:
        """Events whose file_id is their own id, so a stored Amplitude event tells which event it was."""
        ids = [str(uuid.uuid4()) for _ in range(count)]
        return [
            Event.parse(build_envelope("storage.file.uploaded", {"file_id": event_id, "bytes": 100 + i},
                                       source="/contract", id=event_id, userid=f"user-{i:05d}"))
            for i, event_id in enumerate(ids)
        ]

    def read_back(self, plugin: WorkerPlugin, ids: Sequence[str]) -> Mapping[str, float]:
        """How many events Amplitude keeps of each (it drops repeats of an insert_id, so only a stable
        insert_id per event keeps redeliveries from counting twice)."""
        return Counter(e.get("event_properties", {}).get("file_id") for e in self.script.stored)

    def destination_total(self, plugin: WorkerPlugin) -> int:
        """Requests that reached the fake Amplitude."""
        return len(self.server.requests)
