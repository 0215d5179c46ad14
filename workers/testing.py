"""The contract every worker plugin passes: subclass :class:`PluginContract` in the plugin's tests.

::

    from workers.testing import PluginContract

    class TestMyContract(PluginContract):
        plugin_class = MyWorker

        @pytest.fixture
        def make_plugin(self, my_test_destination):
            # a factory: settings overrides -> an unopened plugin pointed at the test destination
            return lambda **overrides: MyWorker(build_settings(MySettings, url=my_test_destination, **overrides))

        def read_back(self, plugin, ids):
            # how many times each id is stored at the destination (0 when absent)
            ...

A plugin that stores nothing readable (e.g. ``discard``) sets ``stores_events = False``; the read-back
checks are then skipped, the others still run. ``sample_events`` can be overridden to give events the
plugin can map (the default is ``storage.file.uploaded`` events).
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from importlib.metadata import entry_points
from typing import Any, ClassVar, TypeVar

import pytest

from sink_lib.errors import ConfigurationError
from sink_lib.event import Event, build_envelope
from sink_lib.settings import build_settings
from sink_lib.topology import WORKERS_ENTRY_POINT_GROUP

from .plugin import WorkerPlugin, WorkerSettings

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
PluginFactory = Callable[..., WorkerPlugin]
_S = TypeVar("_S", bound=WorkerSettings)


class PluginContract:
    """Checks of the plugin surface; the subclass provides ``plugin_class``, ``make_plugin`` and ``read_back``."""

    plugin_class: ClassVar[type[WorkerPlugin]]
    #: False for a plugin whose destination cannot be read back (the read-back checks are skipped)
    stores_events: ClassVar[bool] = True
    #: False for a plugin not registered under the entry points (e.g. one defined in a test suite)
    registered: ClassVar[bool] = True

    # -- what the subclass provides --------------------------------------------------------------------

    @pytest.fixture
    def make_plugin(self) -> PluginFactory:
        """Override: a factory building an unopened plugin against a test destination from overrides."""
        raise NotImplementedError("PluginContract subclasses provide a make_plugin fixture")

    def read_back(self, plugin: WorkerPlugin, ids: Sequence[str]) -> Mapping[str, int]:
        """Override: how many times each of ``ids`` is stored at the destination."""
        raise NotImplementedError("PluginContract subclasses implement read_back (or set stores_events = False)")

    def sample_events(self, count: int) -> list[Event]:
        """Events the plugin takes and can write; override for plugins with narrow ``accepts``."""
        return [
            Event.parse(build_envelope(
                "storage.file.uploaded", {"file_id": f"f{i}", "bytes": 100 + i}, source="/contract",
                id=str(uuid.uuid4()), userid=f"u{i}",
            ))
            for i in range(count)
        ]

    @pytest.fixture
    def plugin(self, make_plugin: PluginFactory) -> Iterator[WorkerPlugin]:
        """An opened plugin, closed after the test."""
        instance = make_plugin()
        instance.open()
        try:
            yield instance
        finally:
            instance.close()

    def _stored(self, plugin: WorkerPlugin, events: Sequence[Event]) -> Mapping[str, int]:
        if not self.stores_events:
            pytest.skip(f"{self.plugin_class.__name__} stores nothing that can be read back")
        ids = [e.id for e in events]
        found = self.read_back(plugin, ids)
        return {i: int(found.get(i, 0)) for i in ids}

    # -- the contract ----------------------------------------------------------------------------------

    def test_name_and_entry_point(self) -> None:
        """The name is a lowercase identifier, and the entry point of that name loads this class."""
        cls = self.plugin_class
        assert NAME_PATTERN.fullmatch(cls.name), f"name {cls.name!r} must match {NAME_PATTERN.pattern}"
        if not self.registered:
            return
        found = {ep.name: ep for ep in entry_points(group=WORKERS_ENTRY_POINT_GROUP)}
        assert cls.name in found, f"no {WORKERS_ENTRY_POINT_GROUP!r} entry point named {cls.name!r}"
        assert found[cls.name].load() is cls

    def test_settings_model_prefix_and_descriptions(self) -> None:
        """Settings subclass WorkerSettings, use EVENTSINK_<NAME>_, and every field is described."""
        model = self.plugin_class.settings_model
        assert issubclass(model, WorkerSettings)
        expected = f"EVENTSINK_{self.plugin_class.name.upper()}_"
        assert model.model_config.get("env_prefix") == expected
        undocumented = [n for n, f in model.model_fields.items() if not (f.description or "").strip()]
        assert not undocumented, f"settings without a description: {undocumented}"

    def test_required_settings_fail_with_a_clear_error(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Every setting has a default, or leaving it unset is a startup error naming its variable."""
        model = self.plugin_class.settings_model
        prefix = f"EVENTSINK_{self.plugin_class.name.upper()}_"
        for var in [v for v in os.environ if v.upper().startswith(prefix)]:
            monkeypatch.delenv(var)
        required = [n for n, f in model.model_fields.items() if f.is_required()]
        if not required:
            build_settings(model)
            return
        with pytest.raises(ConfigurationError) as info:
            build_settings(model)
        for name in required:
            assert f"{prefix}{name.upper()}" in str(info.value)

    def test_close_without_open(self, make_plugin: PluginFactory) -> None:
        """close() is safe on a plugin whose open() never ran (the runtime closes after a failed open)."""
        make_plugin().close()

    def test_open_close_open_again(self, make_plugin: PluginFactory) -> None:
        """A plugin can be opened and closed, and a new instance opened again afterwards."""
        for _ in range(2):
            instance = make_plugin()
            instance.open()
            instance.close()

    def test_write_empty_batch(self, plugin: WorkerPlugin) -> None:
        """write([]) is accepted."""
        plugin.deliver([])

    def test_written_events_read_back(self, plugin: WorkerPlugin) -> None:
        """Every event of a delivered batch is stored once."""
        events = self.sample_events(5)
        plugin.deliver(events)
        assert self._stored(plugin, events) == {e.id: 1 for e in events}

    def test_writing_twice_stores_each_once(self, plugin: WorkerPlugin) -> None:
        """Redelivery (after a crash before the ack) does not duplicate: idempotent by event id."""
        events = self.sample_events(4)
        plugin.deliver(events)
        plugin.deliver(events[1:3])
        plugin.deliver(events)
        assert self._stored(plugin, events) == {e.id: 1 for e in events}

    def test_takes_honours_types_setting(self, make_plugin: PluginFactory) -> None:
        """The ``types`` setting decides which events the plugin takes."""
        event = self.sample_events(1)[0]
        family = event.type.split(".")[0]
        assert make_plugin(types=[f"{family}.*"]).takes(event)
        assert not make_plugin(types=["nothing.matches.this"]).takes(event)


def contract_settings(model: type[_S], **overrides: Any) -> _S:
    """Build a plugin's settings for a contract test (raises ConfigurationError like the runtime)."""
    return build_settings(model, **overrides)
