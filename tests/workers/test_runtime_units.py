"""Pure logic of the runtime, without a broker: batching, the ack plan, backoff, outcomes, loading."""

from __future__ import annotations

import gc
import json
from collections.abc import Sequence

import pika
import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest

from sink_lib.event import Event
from sink_lib.settings import SinkSettings
from workers.discard import DiscardWorker
from workers.errors import PluginError, RejectEvents, RetryLater
from workers.runtime import (
    AckTracker,
    Backoff,
    Batcher,
    Delivery,
    Worker,
    WorkerMetrics,
    build_plugin,
    dead_letter_properties,
    load_plugin_class,
    outcome,
    prepare,
    reason_of,
    tune_gc,
)
from workers.runtime.deadqueue import describe, matches, replay_properties

from .helpers import body_of, make_event
from .plugins import MemoryWorker


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def delivery(tag: int, body: bytes | dict[str, object] | None = None) -> Delivery:
    raw = body_of(make_event()) if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
    return Delivery(tag, raw, pika.BasicProperties())


# -- Batcher ---------------------------------------------------------------------------------------------


def test_batch_is_ready_when_full() -> None:
    clock = FakeClock()
    batcher = Batcher(3, 5.0, clock=clock)
    for tag in (1, 2):
        batcher.add(delivery(tag))
    assert not batcher.ready()
    batcher.add(delivery(3))
    assert batcher.ready()
    assert [d.tag for d in batcher.take()] == [1, 2, 3]
    assert len(batcher) == 0


def test_batch_is_ready_when_the_oldest_waited_timeout() -> None:
    clock = FakeClock()
    batcher = Batcher(100, 1.0, clock=clock)
    batcher.add(delivery(1))
    clock.now += 0.6
    batcher.add(delivery(2))
    assert not batcher.ready() and batcher.time_left() == pytest.approx(0.4)
    clock.now += 0.4
    assert batcher.ready()


def test_take_leaves_the_rest_buffered_with_a_fresh_timer() -> None:
    clock = FakeClock()
    batcher = Batcher(2, 1.0, clock=clock)
    for tag in (1, 2, 3):
        batcher.add(delivery(tag))
    assert [d.tag for d in batcher.take()] == [1, 2]
    assert not batcher.ready() and len(batcher) == 1
    assert batcher.time_left() == pytest.approx(1.0)


def test_empty_batcher_has_no_deadline() -> None:
    assert Batcher(2, 1.0).time_left() is None


# -- AckTracker --------------------------------------------------------------------------------------------


def test_settled_prefix_is_one_multiple_ack() -> None:
    acks = AckTracker()
    for tag in range(1, 6):
        acks.received(tag)
    assert acks.settle([1, 2, 3]) == [(3, True)]
    assert len(acks) == 2


def test_settled_tags_behind_an_unsettled_one_are_acked_singly() -> None:
    # Given tag 2 is being retried, When 1, 3 and 4 are written
    acks = AckTracker()
    for tag in range(1, 6):
        acks.received(tag)
    # Then 1 is acked alone (a single tag needs no multiple), 3 and 4 singly, 2 and 5 stay unacked
    assert acks.settle([1, 3, 4]) == [(1, False), (3, False), (4, False)]
    # When 2 is finally written, Then only 2 is acked (5 is still outstanding)
    assert acks.settle([2]) == [(2, False)]
    assert acks.settle([5]) == [(5, False)]
    assert len(acks) == 0


def test_multiple_ack_never_covers_an_unsettled_tag() -> None:
    acks = AckTracker()
    for tag in range(1, 11):
        acks.received(tag)
    plan = acks.settle([1, 2, 3, 5, 6])
    assert plan == [(3, True), (5, False), (6, False)]
    assert acks.settle([4, 7, 8, 9, 10]) == [(10, True)]


def test_unknown_tags_are_ignored_and_clear_returns_the_rest() -> None:
    acks = AckTracker()
    acks.received(1)
    acks.received(2)
    assert acks.settle([7]) == []
    assert acks.clear() == [1, 2]


# -- Backoff -----------------------------------------------------------------------------------------------


def test_backoff_grows_to_the_cap_with_jitter_in_the_upper_half() -> None:
    low = Backoff(0.5, 4.0, rand=lambda: 0.0)
    assert [low.next_delay() for _ in range(6)] == [0.5, 0.5, 1.0, 2.0, 2.0, 2.0]  # floor min_s
    high = Backoff(0.5, 4.0, rand=lambda: 1.0)
    assert [high.next_delay() for _ in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]


def test_backoff_honours_the_destination_hint_and_resets() -> None:
    backoff = Backoff(0.5, 4.0, rand=lambda: 1.0)
    assert backoff.next_delay(hint_s=10.0) == 10.0
    backoff.next_delay()
    backoff.reset()
    assert backoff.next_delay() == 0.5


def test_backoff_refuses_nonsense_bounds() -> None:
    with pytest.raises(ValueError):
        Backoff(2.0, 1.0)


# -- prepare / outcome -------------------------------------------------------------------------------------


def test_prepare_sorts_malformed_skipped_and_duplicates() -> None:
    good, other = make_event(), make_event("health.status", service="db", state="down")
    batch = [delivery(1, good), delivery(2, b"{nope"), delivery(3, other), delivery(4, good), delivery(5, b"[1]")]
    prepared = prepare(batch, lambda e: e.type.startswith("storage."))
    assert list(prepared.events) == [good["id"]]
    assert prepared.tags[good["id"]] == [1, 4] and prepared.duplicates == 1
    assert prepared.skipped == [3]
    assert [d.tag for d, _ in prepared.malformed] == [2, 5]
    assert "not JSON" in prepared.malformed[0][1] and "JSON object" in prepared.malformed[1][1]


def test_prepare_names_the_invalid_field() -> None:
    bad = make_event()
    del bad["source"]
    (_, reason), = prepare([delivery(1, bad)], lambda e: True).malformed
    assert "source" in reason


def test_outcome_success_writes_everything() -> None:
    result = outcome(["a", "b"], None)
    assert result.written == {"a", "b"} and not result.retry and not result.rejected


def test_outcome_retry_later_whole_batch_or_listed_ids() -> None:
    whole = outcome(["a", "b"], RetryLater("down", delay_s=3))
    assert whole.retry == {"a", "b"} and not whole.written and whole.delay_s == 3
    part = outcome(["a", "b", "c"], RetryLater("partial", event_ids=["b", "zzz"]))
    assert part.retry == {"b"} and part.written == {"a", "c"}


def test_outcome_reject_events() -> None:
    result = outcome(["a", "b", "c"], RejectEvents({"a": "bad", "x": "not ours"}, retry_ids=["c"]))
    assert result.rejected == {"a": "bad"} and result.retry == {"c"} and result.written == {"b"}


def test_outcome_unexpected_exception_is_transient() -> None:
    result = outcome(["a"], KeyError("boom"))
    assert result.unexpected and result.retry == {"a"} and not result.rejected and "KeyError" in result.reason


# -- loading -----------------------------------------------------------------------------------------------


def test_load_by_entry_point_name_and_by_module_spec() -> None:
    assert load_plugin_class("discard") is DiscardWorker
    assert load_plugin_class("tests.workers.plugins:MemoryWorker") is MemoryWorker


def test_unknown_plugin_lists_the_installed_ones() -> None:
    with pytest.raises(PluginError, match=r"unknown worker 'nosuch'.*discard"):
        load_plugin_class("nosuch")


def test_module_spec_errors_are_plugin_errors() -> None:
    with pytest.raises(PluginError, match=r"cannot be imported.*PYTHONPATH") as raised:
        load_plugin_class("no_such_module_xyz:Thing")
    assert "pip install" not in str(raised.value)  # a module path is not an extra of eventsink
    with pytest.raises(PluginError, match="not found"):
        load_plugin_class("tests.workers.plugins:Nothing")
    with pytest.raises(PluginError, match="not a WorkerPlugin"):
        load_plugin_class("tests.workers.helpers:make_event")


def test_bad_setting_names_the_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from sink_lib.errors import ConfigurationError

    monkeypatch.setenv("EVENTSINK_DISCARD_BATCH_SIZE", "zero")
    with pytest.raises(ConfigurationError, match="EVENTSINK_DISCARD_BATCH_SIZE"):
        build_plugin(DiscardWorker)


# -- dead-letter headers -----------------------------------------------------------------------------------


def test_dead_letter_properties_keep_the_original_and_add_the_reason() -> None:
    original = pika.BasicProperties(message_id="e1", type="a.b.c", headers={"trace": "t1"})
    props = dead_letter_properties(original, "influxdb", "x" * 5000, failed_at="2026-01-01T00:00:00Z")
    assert props.message_id == "e1" and props.type == "a.b.c" and props.delivery_mode == 2
    assert props.headers["trace"] == "t1" and props.headers["x-eventsink-worker"] == "influxdb"
    assert len(props.headers["x-eventsink-reason"]) == 2000
    assert reason_of(props.headers).startswith("xxx")


def test_reason_of_broker_dead_letters() -> None:
    assert reason_of({"x-death": [{"reason": b"delivery_limit"}]}) == "dead-lettered by the broker (delivery_limit)"
    assert reason_of(None) == ""


def test_describe_reads_the_body_when_properties_lack_id_and_filters_match() -> None:
    event = make_event()
    letter = describe(pika.BasicProperties(headers={"x-eventsink-reason": "bad"}), body_of(event))
    assert (letter.id, letter.type, letter.reason) == (event["id"], event["type"], "bad")
    assert matches(letter, "storage.*", None) and not matches(letter, "health.*", None)
    assert matches(letter, None, [event["id"]]) and not matches(letter, None, ["other"])
    assert describe(pika.BasicProperties(), b"garbage").id == "?"


def test_replay_drops_the_dead_letter_headers() -> None:
    props = replay_properties(pika.BasicProperties(message_id="e", headers={
        "x-eventsink-reason": "r", "x-eventsink-worker": "w", "x-eventsink-failed-at": "t", "x-death": [], "keep": 1,
    }))
    assert props.headers == {"keep": 1} and props.message_id == "e"


def test_plugin_with_missing_dependencies_is_listed_unavailable_with_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from importlib.metadata import EntryPoint

    from workers.runtime import describe_plugins, loader

    ghost = EntryPoint(name="ghost", value="no_such_module_xyz.plugin:Ghost", group="eventsink.workers")
    discard = EntryPoint(name="discard", value="workers.discard:DiscardWorker", group="eventsink.workers")
    monkeypatch.setattr(loader, "_entry_points", lambda: {"ghost": ghost, "discard": discard})
    info = {p.name: p for p in describe_plugins()}
    assert info["discard"].available and info["discard"].description.startswith("Counts and drops")
    assert not info["ghost"].available
    assert "no_such_module_xyz" in info["ghost"].problem and "eventsink[ghost]" in info["ghost"].problem
    with pytest.raises(PluginError, match=r"eventsink\[ghost\]"):
        load_plugin_class("ghost")


class CountingWorker(MemoryWorker):
    """A plugin with a metric of its own."""

    def register_metrics(self, registry: CollectorRegistry) -> None:
        self.seen = Counter("eventsink_test_seen", "Events this plugin saw.", registry=registry)

    def write(self, batch: Sequence[Event]) -> None:
        self.seen.inc(len(batch))
        super().write(batch)


def test_a_plugin_registers_its_own_metrics_once_in_the_worker_registry() -> None:
    # Given a plugin defining register_metrics
    plugin = build_plugin(CountingWorker)
    assert isinstance(plugin, CountingWorker)
    metrics = WorkerMetrics(plugin.name)
    # When a Worker is built on these metrics (and the plugin is included again, which is a no-op)
    Worker(plugin, SinkSettings(exchange="unused"), metrics=metrics)
    metrics.include(plugin)
    plugin.deliver([Event.parse(make_event()), Event.parse(make_event())])
    # Then its metric is in the worker's registry beside the runtime's, counted by the plugin
    assert metrics.registry.get_sample_value("eventsink_test_seen_total") == 2
    assert "eventsink_worker_events_processed_total" in generate_latest(metrics.registry).decode()


def test_a_plugin_metric_clashing_with_the_runtime_is_a_plugin_error() -> None:
    class Clashing(MemoryWorker):
        def register_metrics(self, registry: CollectorRegistry) -> None:
            Counter("eventsink_worker_events_processed", "Clash.", registry=registry)

    metrics = WorkerMetrics("memory")
    with pytest.raises(PluginError, match="metrics cannot be registered"):
        metrics.include(build_plugin(Clashing))


def test_plugins_without_metrics_need_nothing() -> None:
    metrics = WorkerMetrics("discard")
    before = generate_latest(metrics.registry)
    metrics.include(build_plugin(DiscardWorker))
    assert generate_latest(metrics.registry) == before


def test_tune_gc_freezes_start_up_objects_and_raises_the_young_threshold() -> None:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)  # CPython's defaults (an earlier run_worker in this process tuned them)
    gc.unfreeze()
    try:
        tune_gc()
        # workers/README.md: the young-generation threshold is 100,000 allocations instead of 700
        assert gc.get_threshold()[0] == 100_000
        assert gc.get_freeze_count() > 0
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
