"""The code of workers/README.md ("Writing a worker plugin") is executed here, so the guide stays true:
its example plugin passes the contract (with the guide's own contract class) and runs under the runtime."""

from __future__ import annotations

import json
import re
import sys
import types
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import workers
from sink_lib.event import Event
from sink_lib.settings import SinkSettings
from sink_lib.topology import dead_queue_name
from tests.support import drain_queue, wait_for
from workers.discard import DiscardSettings
from workers.runtime import WorkerMetrics, build_plugin
from workers.testing import PluginContract, contract_settings

from .helpers import make_event, publish, running

GUIDE = Path(workers.__file__).parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.S)
EXAMPLE = next(block for block in BLOCKS if "class JsonLinesWorker" in block)
CONTRACT = next(block for block in BLOCKS if "class TestJsonLinesContract" in block)
METRICS = next(block for block in BLOCKS if "class CountingDiscardWorker" in block)

example = types.ModuleType("workers_guide_example")
sys.modules[example.__name__] = example
exec(compile(EXAMPLE, str(GUIDE), "exec"), example.__dict__)
JsonLinesWorker: Any = example.JsonLinesWorker
JsonLinesSettings: Any = example.JsonLinesSettings

# the guide's contract class, defined in this module so pytest collects it
_namespace: dict[str, Any] = {
    "pytest": pytest, "json": json, "Counter": Counter, "PluginContract": PluginContract,
    "contract_settings": contract_settings, "JsonLinesWorker": JsonLinesWorker, "JsonLinesSettings": JsonLinesSettings,
}
exec(compile(CONTRACT.replace("from workers.testing import PluginContract, contract_settings\n", ""),
             str(GUIDE), "exec"), _namespace)
TestJsonLinesContract = _namespace["TestJsonLinesContract"]
TestJsonLinesContract.registered = False  # the guide's plugin is not installed under an entry point


def lines_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


@pytest.mark.rabbitmq
def test_guide_example_runs_under_the_runtime(sink_settings: SinkSettings, tmp_path: Path) -> None:
    # Given events of which one is longer than the plugin allows
    path = tmp_path / "events.jsonl"
    events = [make_event() for _ in range(5)]
    huge = make_event(file_id="big", bytes=1, note="x" * 2000)
    publish(sink_settings, "jsonl", [*events, huge])
    plugin = build_plugin(JsonLinesWorker, path=path, max_line_bytes=1000, batch_timeout_s=0.1)
    # When the runtime runs the example plugin
    with running(plugin, sink_settings):
        dead = drain_queue(dead_queue_name(sink_settings.exchange, "jsonl"), expect=1, timeout=30)
        wait_for(lambda: path.exists() and len(lines_of(path)) == 5, 30)
    # Then the good events are in the file and the long one is dead-lettered with the reason
    assert [line["id"] for line in lines_of(path)] == [e["id"] for e in events]
    assert dead[0][1].message_id == huge["id"]
    assert "the limit is 1000" in dead[0][1].headers["x-eventsink-reason"]
    # When the same events come again to a restarted worker, Then nothing is duplicated
    publish(sink_settings, "jsonl", events)
    again = build_plugin(JsonLinesWorker, path=path, batch_timeout_s=0.1)
    with running(again, sink_settings) as worker:
        wait_for(lambda: worker.metric("eventsink_worker_events_processed_total") == 5, 30)
    assert len(lines_of(path)) == 5


def test_example_plugin_retries_when_the_file_cannot_be_opened(tmp_path: Path) -> None:
    from workers.errors import RetryLater

    plugin = build_plugin(JsonLinesWorker, path=tmp_path / "missing-dir" / "events.jsonl")
    with pytest.raises(RetryLater, match="cannot open"):
        plugin.open()
    plugin.close()


def test_discard_readme_lists_every_setting() -> None:
    readme = (Path(workers.__file__).parent / "discard" / "README.md").read_text()
    missing = [n for n in DiscardSettings.model_fields if f"`EVENTSINK_DISCARD_{n.upper()}`" not in readme]
    assert not missing


def test_guide_lists_every_runtime_metric() -> None:
    from prometheus_client import CollectorRegistry

    from workers.runtime import WorkerMetrics

    registry = CollectorRegistry()
    WorkerMetrics("x", registry)
    guide = GUIDE.read_text()
    names = {metric.name for metric in registry.collect()}
    undocumented = [n for n in names if n.removeprefix("eventsink_worker").removesuffix("_total") not in guide]
    assert not undocumented


def test_guide_plugin_metrics_example_exports_its_count_on_the_worker_registry() -> None:
    # Given the guide's plugin with a metric of its own, included in a worker's metrics
    module = types.ModuleType("workers_guide_metrics")
    exec(compile(METRICS, str(GUIDE), "exec"), module.__dict__)
    plugin = build_plugin(module.CountingDiscardWorker)
    metrics = WorkerMetrics(plugin.name)
    metrics.include(plugin)
    # When it drops two events without a userid and one with
    events = [make_event(), make_event(), {**make_event(), "userid": "u1"}]
    plugin.deliver([Event.parse(e) for e in events])
    # Then its counter is served beside the runtime's
    assert metrics.value("eventsink_discard_events_anonymous_total") == 2
