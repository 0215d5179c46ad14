"""The runtime against the real RabbitMQ: events flow, outages are retried, refusals are dead-lettered."""

from __future__ import annotations

import pytest

from sink_lib.settings import SinkSettings
from sink_lib.topology import dead_queue_name, queue_name
from tests.support import drain_queue, queue_depth, wait_for
from workers.errors import RejectEvents, RetryLater
from workers.runtime import build_plugin
from workers.runtime.deadletter import FAILED_AT_HEADER, REASON_HEADER, WORKER_HEADER

from .helpers import make_event, publish, running
from .plugins import MemoryWorker

pytestmark = pytest.mark.rabbitmq


def memory(**overrides: object) -> MemoryWorker:
    """A memory plugin with quick batches and backoff."""
    settings = {"batch_size": 10, "batch_timeout_s": 0.1, "backoff_min_s": 0.05, "backoff_max_s": 0.2}
    plugin = build_plugin(MemoryWorker, **{**settings, **overrides})
    assert isinstance(plugin, MemoryWorker)
    return plugin


def test_events_flow_and_are_acked(sink_settings: SinkSettings) -> None:
    # Given 25 events in the worker's queue
    events = [make_event() for _ in range(25)]
    publish(sink_settings, "memory", events)
    plugin = memory()
    # When the worker runs
    with running(plugin, sink_settings) as worker:
        wait_for(lambda: len(plugin.stored) == 25, 20, what="25 events written")
        wait_for(lambda: worker.metric("eventsink_worker_events_processed_total") == 25, 30)
    # Then every event was written in batches no larger than batch_size, and nothing is left
    assert plugin.stored_ids() == {e["id"] for e in events}
    assert max(len(w) for w in plugin.writes) <= 10
    assert queue_depth(queue_name(sink_settings.exchange, "memory")) == 0
    assert plugin.opened == 1 and plugin.closed == 1


def test_retry_later_keeps_messages_unacked_then_flows(sink_settings: SinkSettings) -> None:
    # Given a destination that is down
    events = [make_event() for _ in range(5)]
    publish(sink_settings, "memory", events)
    plugin = memory()
    plugin.down = True
    with running(plugin, sink_settings) as worker:
        # When the worker has retried a few times
        wait_for(lambda: len(plugin.writes) >= 3, 30, what="three attempts")
        # Then nothing was acked (nothing ready, everything unacked) and nothing was dead-lettered
        assert queue_depth(dead_queue_name(sink_settings.exchange, "memory")) == 0
        assert not plugin.stored
        # and the same batch is retried
        assert plugin.writes[1] == plugin.writes[0]
        # When the destination comes back
        plugin.down = False
        wait_for(lambda: len(plugin.stored) == 5, 30, what="events written after recovery")
        assert worker.metric("eventsink_worker_events_retried_total") >= 10
    assert queue_depth(queue_name(sink_settings.exchange, "memory")) == 0
    assert queue_depth(dead_queue_name(sink_settings.exchange, "memory")) == 0


def test_reject_events_dead_letters_exactly_those_with_reason(sink_settings: SinkSettings) -> None:
    # Given 6 events, two of which the destination refuses
    events = [make_event() for _ in range(6)]
    bad = {events[1]["id"]: "field type conflict on bytes", events[4]["id"]: "too old"}
    publish(sink_settings, "memory", events)
    plugin = memory()
    plugin.reject = dict(bad)
    # When the worker runs
    with running(plugin, sink_settings):
        wait_for(lambda: len(plugin.stored) == 4, 30, what="the four good events")
        dead = drain_queue(dead_queue_name(sink_settings.exchange, "memory"), expect=2, timeout=30)
    # Then exactly the refused ones are in the dead-letter queue with their reason; the rest is acked
    assert {props.message_id: props.headers[REASON_HEADER] for _, props, _ in dead} == bad
    for _, props, _ in dead:
        assert props.headers[WORKER_HEADER] == "memory"
        assert props.headers[FAILED_AT_HEADER].endswith("Z")
    assert queue_depth(queue_name(sink_settings.exchange, "memory")) == 0


def test_malformed_body_is_dead_lettered_and_stream_keeps_flowing(sink_settings: SinkSettings) -> None:
    # Given a non-JSON body and an invalid event between good ones
    good = [make_event() for _ in range(4)]
    invalid = make_event()
    invalid["time"] = "yesterday"
    publish(sink_settings, "memory", [good[0], b"not json {", good[1], invalid, good[2], good[3]])
    plugin = memory()
    # When the worker runs
    with running(plugin, sink_settings) as worker:
        wait_for(lambda: len(plugin.stored) == 4, 30, what="the good events")
        dead = drain_queue(dead_queue_name(sink_settings.exchange, "memory"), expect=2, timeout=30)
        assert worker.metric("eventsink_worker_events_rejected_total", cause="malformed") == 2
    # Then both are dead-lettered with the parse error as the reason, the good ones written
    reasons = sorted(props.headers[REASON_HEADER] for _, props, _ in dead)
    assert any("not JSON" in r for r in reasons)
    assert any("time" in r for r in reasons)
    assert plugin.stored_ids() == {e["id"] for e in good}


def test_unexpected_exception_is_retried_not_dead_lettered(sink_settings: SinkSettings) -> None:
    events = [make_event() for _ in range(3)]
    publish(sink_settings, "memory", events)
    plugin = memory()
    plugin.failures = [ZeroDivisionError("bug"), RetryLater("throttled", delay_s=0.1)]
    with running(plugin, sink_settings) as worker:
        wait_for(lambda: len(plugin.stored) == 3, 30, what="events written after two failures")
        assert worker.metric("eventsink_worker_unexpected_errors_total") == 1
    assert len(plugin.writes) == 3
    assert queue_depth(dead_queue_name(sink_settings.exchange, "memory")) == 0


def test_partial_retry_writes_only_the_listed_events_again(sink_settings: SinkSettings) -> None:
    events = [make_event() for _ in range(4)]
    publish(sink_settings, "memory", events)
    plugin = memory(batch_timeout_s=0.5)
    first, second = events[0]["id"], events[2]["id"]
    plugin.failures = [RejectEvents({first: "bad"}, retry_ids=[second])]
    with running(plugin, sink_settings):
        wait_for(lambda: len(plugin.writes) >= 2 and len(plugin.stored) == 1, 30, what="the retry")
        dead = drain_queue(dead_queue_name(sink_settings.exchange, "memory"), expect=1, timeout=30)
        wait_for(lambda: queue_depth(queue_name(sink_settings.exchange, "memory")) == 0, 30)
    # The failed first write stored nothing (scripted), so only `second` was retried and stored
    assert plugin.writes[1] == [second]
    assert [props.message_id for _, props, _ in dead] == [first]


def test_types_not_taken_are_acked_and_counted(sink_settings: SinkSettings) -> None:
    taken = [make_event("health.status", service="web", state="up") for _ in range(3)]
    other = [make_event() for _ in range(2)]
    publish(sink_settings, "memory", [*taken, *other])
    plugin = memory(types=["health.*"])
    with running(plugin, sink_settings) as worker:
        wait_for(lambda: worker.metric("eventsink_worker_events_skipped_total") == 2, 30, what="2 skipped")
        wait_for(lambda: len(plugin.stored) == 3, 30)
    assert plugin.stored_ids() == {e["id"] for e in taken}
    assert queue_depth(queue_name(sink_settings.exchange, "memory")) == 0


def test_duplicate_ids_in_a_batch_are_written_once(sink_settings: SinkSettings) -> None:
    event = make_event()
    publish(sink_settings, "memory", [event, event, make_event()])
    plugin = memory(batch_timeout_s=0.5)
    with running(plugin, sink_settings) as worker:
        wait_for(lambda: len(plugin.stored) == 2, 30)
        wait_for(lambda: queue_depth(queue_name(sink_settings.exchange, "memory")) == 0, 30)
        assert worker.metric("eventsink_worker_events_duplicate_total") == 1
    assert sum(ids.count(event["id"]) for ids in plugin.writes) == 1


def test_stop_while_the_destination_is_down_returns_every_message(sink_settings: SinkSettings) -> None:
    # Given a worker retrying a batch against a destination that is down, with more events buffered
    events = [make_event() for _ in range(25)]
    publish(sink_settings, "memory", events)
    plugin = memory(backoff_min_s=0.2, backoff_max_s=0.5)
    plugin.down = True
    with running(plugin, sink_settings):
        wait_for(lambda: len(plugin.writes) >= 2, 30, what="a retry")
    # When it stops, Then every message is back in the queue and none dead-lettered; the buffered
    # events were not tried at shutdown (every attempt was the same first batch)
    assert wait_for(lambda: queue_depth(queue_name(sink_settings.exchange, "memory")) == 25, 30)
    assert queue_depth(dead_queue_name(sink_settings.exchange, "memory")) == 0
    assert not plugin.stored and plugin.closed == 1
    assert all(ids == plugin.writes[0] for ids in plugin.writes)
