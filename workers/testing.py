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

        def destination_total(self, plugin):
            # how many records (points, documents, lines, requests) the destination received in all
            ...

A plugin that stores nothing readable (e.g. ``discard``) sets ``stores_events = False``; the read-back
checks are then skipped, the others still run. ``sample_events`` can be overridden to give events the
plugin can map (the default is ``storage.file.uploaded`` events).

Besides what reads back, the contract checks what a plugin leaves behind: after ``close()`` the process
holds no file descriptor (socket, file) and no thread that the plugin opened. The contract is a pytest
class (fixtures, skips), so the plugin's tests need pytest installed (``pip install pytest``).
"""

from __future__ import annotations

import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from importlib.metadata import entry_points
from typing import Any, ClassVar, TypeVar

try:
    import pytest
except ImportError as exc:  # the plugin extras do not bring pytest; the contract is a pytest test class
    raise ImportError("workers.testing is a pytest test class: install pytest (pip install pytest)") from exc

from sink_lib.errors import ConfigurationError
from sink_lib.event import Event, build_envelope
from sink_lib.settings import build_settings
from sink_lib.topology import WORKERS_ENTRY_POINT_GROUP

from .plugin import WorkerPlugin, WorkerSettings

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
PluginFactory = Callable[..., WorkerPlugin]
_S = TypeVar("_S", bound=WorkerSettings)
#: how long close() may take to be seen releasing sockets and threads (waited on, not slept)
RELEASE_TIMEOUT_S = 15.0


class _Held:
    """The file descriptors and threads of this process, to tell what a plugin left open."""

    def __init__(self) -> None:
        self.fds = _open_fds()
        self.threads = {t.ident for t in threading.enumerate() if t.is_alive()}

    def left_open(self) -> list[str]:
        """What is open now that was not when this snapshot was taken."""
        fds = [f"file descriptor {fd} -> {target}" for fd, target in _open_fds().items()
               if self.fds.get(fd) != target]
        threads = [f"thread {t.name!r}" for t in threading.enumerate() if t.is_alive() and t.ident not in self.threads]
        return fds + threads

    def assert_released(self, what: str) -> None:
        """Wait until everything opened since the snapshot is closed again; fail naming what is left."""
        deadline = time.monotonic() + RELEASE_TIMEOUT_S
        while (left := self.left_open()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not left, f"{what} left open: {left}"


def _open_fds() -> dict[int, str]:
    """This process's file descriptors and what each points at (sockets, files, pipes); Linux /proc."""
    folder = "/proc/self/fd"
    found: dict[int, str] = {}
    for name in os.listdir(folder) if os.path.isdir(folder) else ():
        try:
            found[int(name)] = os.readlink(os.path.join(folder, name))
        except OSError:  # the descriptor listing the folder itself, closed by now
            continue
    return found


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

    def read_back(self, plugin: WorkerPlugin, ids: Sequence[str]) -> Mapping[str, float]:
        """Override: how many times each of ``ids`` is stored at the destination."""
        raise NotImplementedError("PluginContract subclasses implement read_back (or set stores_events = False)")

    def destination_total(self, plugin: WorkerPlugin) -> int:
        """Override: how many records (points, documents, requests...) the test destination received in all."""
        raise NotImplementedError(
            "PluginContract subclasses implement destination_total (or set stores_events = False)")

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

    def _stored(self, plugin: WorkerPlugin, events: Sequence[Event]) -> Mapping[str, float]:
        if not self.stores_events:
            pytest.skip(f"{self.plugin_class.__name__} stores nothing that can be read back")
        ids = [e.id for e in events]
        found = self.read_back(plugin, ids)
        return {i: found.get(i, 0) for i in ids}

    def _assert_each_stored_once(self, plugin: WorkerPlugin, events: Sequence[Event]) -> None:
        stored = self._stored(plugin, events)
        wrong = {i: n for i, n in stored.items() if n != 1}
        assert not wrong, f"each event must be stored exactly once; stored this many times: {wrong}"

    def _total(self, plugin: WorkerPlugin) -> int | None:
        return self.destination_total(plugin) if self.stores_events else None

    def _snapshot(self, make_plugin: PluginFactory) -> _Held:
        """What the process holds before a plugin runs, once the test's own reading of the destination
        has made its connections (so only the plugin's are counted)."""
        probe = make_plugin()
        self._total(probe)
        probe.close()
        return _Held()

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
        """close() on a plugin whose open() never ran (the runtime closes after a failed open) writes
        nothing and leaves nothing open."""
        held = self._snapshot(make_plugin)
        instance = make_plugin()
        instance.close()
        held.assert_released("close() without open()")
        assert self._total(instance) in (0, None), "close() without open() wrote to the destination"

    def test_open_close_open_again(self, make_plugin: PluginFactory) -> None:
        """Each open/close cycle releases its connections, files and threads; a new instance opened
        afterwards writes normally."""
        held = self._snapshot(make_plugin)
        for cycle in range(2):
            instance = make_plugin()
            instance.open()
            instance.close()
            held.assert_released(f"open() then close() (cycle {cycle + 1})")
        assert self._total(instance) in (0, None), "open() and close() alone wrote to the destination"
        again = make_plugin()
        again.open()
        try:
            events = self.sample_events(2)
            again.deliver(events)
            if self.stores_events:
                self._assert_each_stored_once(again, events)
        finally:
            again.close()
        held.assert_released("open(), write() then close()")

    def test_write_empty_batch(self, plugin: WorkerPlugin) -> None:
        """write([]) sends nothing to the destination, before or after real writes."""
        plugin.deliver([])
        assert self._total(plugin) in (0, None), "write([]) reached the destination"
        events = self.sample_events(3)
        plugin.deliver(events)
        after_events = self._total(plugin)
        plugin.deliver([])
        assert self._total(plugin) == after_events, "write([]) after a batch reached the destination"
        if self.stores_events:
            self._assert_each_stored_once(plugin, events)

    def test_written_events_read_back(self, plugin: WorkerPlugin) -> None:
        """Every event of a delivered batch is stored once."""
        events = self.sample_events(5)
        plugin.deliver(events)
        self._assert_each_stored_once(plugin, events)

    def test_writing_twice_stores_each_once(self, plugin: WorkerPlugin) -> None:
        """Redelivery (after a crash before the ack) does not duplicate: idempotent by event id."""
        events = self.sample_events(4)
        plugin.deliver(events)
        plugin.deliver(events[1:3])
        plugin.deliver(events)
        self._assert_each_stored_once(plugin, events)

    def test_takes_honours_types_setting(self, make_plugin: PluginFactory) -> None:
        """The ``types`` setting decides which events the plugin takes."""
        event = self.sample_events(1)[0]
        family = event.type.split(".")[0]
        assert make_plugin(types=[f"{family}.*"]).takes(event)
        assert not make_plugin(types=["nothing.matches.this"]).takes(event)


def contract_settings(model: type[_S], **overrides: Any) -> _S:
    """Build a plugin's settings for a contract test (raises ConfigurationError like the runtime)."""
    return build_settings(model, **overrides)
