"""The shared plugin contract, run against the discard template and the in-memory test plugin."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import pytest

from workers.discard import DiscardSettings, DiscardWorker
from workers.plugin import WorkerPlugin
from workers.testing import PluginContract, PluginFactory, contract_settings

from .plugins import MemorySettings, MemoryWorker


class TestDiscardContract(PluginContract):
    plugin_class = DiscardWorker
    stores_events = False

    @pytest.fixture
    def make_plugin(self) -> PluginFactory:
        return lambda **overrides: DiscardWorker(contract_settings(DiscardSettings, **overrides))


class TestMemoryContract(PluginContract):
    plugin_class = MemoryWorker
    registered = False

    @pytest.fixture
    def make_plugin(self) -> PluginFactory:
        return lambda **overrides: MemoryWorker(contract_settings(MemorySettings, **overrides))

    def read_back(self, plugin: WorkerPlugin, ids: Sequence[str]) -> Mapping[str, float]:
        assert isinstance(plugin, MemoryWorker)
        return Counter(plugin.rows)

    def destination_total(self, plugin: WorkerPlugin) -> int:
        assert isinstance(plugin, MemoryWorker)
        return len(plugin.rows)


def test_discard_counts_what_it_drops() -> None:
    plugin = DiscardWorker(contract_settings(DiscardSettings))
    events = TestDiscardContract().sample_events(3)
    plugin.deliver(events)
    plugin.deliver(events[:1])
    assert plugin.count == 4


class _Undocumented(MemorySettings):
    model_config = {**MemorySettings.model_config, "env_prefix": "EVENTSINK_SLOPPY_"}

    endpoint: str  # no default, no description


class _SloppyWorker(MemoryWorker):
    name = "sloppy"
    settings_model = _Undocumented


def test_contract_catches_an_undocumented_setting() -> None:
    # Given a plugin with a setting lacking a description, When the contract checks it, Then it fails
    class Check(PluginContract):
        plugin_class = _SloppyWorker
        registered = False

    with pytest.raises(AssertionError, match="endpoint"):
        Check().test_settings_model_prefix_and_descriptions()


def test_contract_requires_the_entry_point_of_a_registered_plugin() -> None:
    class Check(PluginContract):
        plugin_class = _SloppyWorker

    with pytest.raises(AssertionError, match="entry point"):
        Check().test_name_and_entry_point()


def test_required_setting_error_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    class Check(PluginContract):
        plugin_class = _SloppyWorker
        registered = False

    monkeypatch.setenv("EVENTSINK_SLOPPY_ENDPOINT", "http://x")
    # passes: the check clears the plugin's variables and expects the error to name EVENTSINK_SLOPPY_ENDPOINT
    Check().test_required_settings_fail_with_a_clear_error(monkeypatch)


def test_every_plugin_of_the_project_runs_the_contract() -> None:
    # Given the plugins this distribution registers, and the contract classes of the project's tests
    import importlib
    from importlib.metadata import entry_points

    ours = {ep.name: ep.load() for ep in entry_points(group="eventsink.workers")
            if ep.dist is not None and ep.dist.name == "eventsink"}
    covered = set()
    for name in ours:
        module = f"workers.{name}.tests.test_contract" if name != "discard" else __name__
        namespace = vars(importlib.import_module(module))
        covered |= {v.plugin_class for v in namespace.values()
                    if isinstance(v, type) and issubclass(v, PluginContract) and hasattr(v, "plugin_class")}
    # Then each one has a PluginContract subclass in its tests
    assert {name for name, cls in ours.items() if cls not in covered} == set()
