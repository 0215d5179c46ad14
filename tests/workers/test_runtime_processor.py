"""The per-batch policy with fakes (no broker): what is acked, dead-lettered and retried, and when."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pika

import workers.runtime
from workers.errors import RejectEvents, RetryLater
from workers.runtime import Backoff, BatchProcessor, Delivery, WorkerMetrics, build_plugin

from .helpers import body_of, make_event
from .plugins import MemoryWorker


class Recorder:
    """Fakes of the consumer's callables, recording every call in order."""

    def __init__(self, stop_after_waits: int | None = None) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.stop_after_waits = stop_after_waits

    def ack(self, tags: Iterable[int]) -> None:
        self.calls.append(("ack", sorted(tags)))

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        self.calls.append(("dead", (delivery.tag, reason)))

    def wait(self, seconds: float) -> bool:
        self.calls.append(("wait", seconds))
        waits = sum(1 for kind, _ in self.calls if kind == "wait")
        return self.stop_after_waits is None or waits <= self.stop_after_waits


def setup(recorder: Recorder, **settings: object) -> tuple[MemoryWorker, BatchProcessor, WorkerMetrics]:
    plugin = build_plugin(MemoryWorker, **settings)
    assert isinstance(plugin, MemoryWorker)
    metrics = WorkerMetrics("memory")
    processor = BatchProcessor(
        plugin, metrics, Backoff(1.0, 8.0, rand=lambda: 1.0),
        ack=recorder.ack, dead_letter=recorder.dead_letter, wait=recorder.wait,
    )
    return plugin, processor, metrics


def deliveries(*bodies: bytes) -> list[Delivery]:
    return [Delivery(tag, body, pika.BasicProperties()) for tag, body in enumerate(bodies, start=1)]


def test_success_acks_the_whole_batch_once_after_the_write() -> None:
    rec = Recorder()
    plugin, processor, metrics = setup(rec)
    events = [make_event() for _ in range(3)]
    processor.process(deliveries(*map(body_of, events)))
    assert rec.calls == [("ack", [1, 2, 3])]
    assert len(plugin.writes) == 1 and metrics.value("eventsink_worker_events_processed_total") == 3


def test_transient_failure_acks_nothing_until_the_retry_succeeds() -> None:
    rec = Recorder()
    plugin, processor, _ = setup(rec)
    plugin.failures = [RetryLater("down"), RetryLater("still down", delay_s=30.0)]
    processor.process(deliveries(*(body_of(make_event()) for _ in range(2))))
    # backoff: 1s, then the destination's 30s hint; the ack only after the third (successful) write
    assert rec.calls == [("wait", 1.0), ("wait", 30.0), ("ack", [1, 2])]
    assert plugin.writes[0] == plugin.writes[1] == plugin.writes[2]


def test_stop_during_backoff_leaves_the_batch_unacked() -> None:
    rec = Recorder(stop_after_waits=0)
    plugin, processor, _ = setup(rec)
    plugin.down = True
    processor.process(deliveries(body_of(make_event())))
    assert rec.calls == [("wait", 1.0)]
    assert not processor.destination_ok


def test_rejected_events_are_dead_lettered_before_their_ack() -> None:
    rec = Recorder()
    plugin, processor, metrics = setup(rec)
    events = [make_event() for _ in range(3)]
    plugin.reject = {events[1]["id"]: "type conflict"}
    processor.process(deliveries(*map(body_of, events)))
    assert rec.calls == [("dead", (2, "type conflict")), ("ack", [1, 2, 3])]
    assert metrics.value("eventsink_worker_events_rejected_total", cause="rejected") == 1


def test_malformed_skipped_and_duplicates_are_settled_with_the_batch() -> None:
    rec = Recorder()
    plugin, processor, metrics = setup(rec, types=["storage.*"])
    event = make_event()
    other = make_event("health.status", service="s", state="up")
    processor.process(deliveries(body_of(event), b"\xff", body_of(other), body_of(event)))
    dead, ack = rec.calls
    assert dead[0] == "dead" and dead[1][0] == 2 and "not JSON" in dead[1][1]
    assert ack == ("ack", [1, 2, 3, 4])
    assert plugin.writes == [[event["id"]]]
    assert metrics.value("eventsink_worker_events_skipped_total") == 1
    assert metrics.value("eventsink_worker_events_duplicate_total") == 1


def test_reject_of_a_duplicated_event_dead_letters_every_copy() -> None:
    rec = Recorder()
    plugin, processor, _ = setup(rec)
    event = make_event()
    plugin.failures = [RejectEvents({event["id"]: "no"})]
    processor.process(deliveries(body_of(event), body_of(event)))
    assert rec.calls == [("dead", (1, "no")), ("dead", (2, "no")), ("ack", [1, 2])]


def test_dry_run_neither_writes_nor_acks() -> None:
    rec = Recorder()
    plugin = build_plugin(MemoryWorker)
    assert isinstance(plugin, MemoryWorker)
    processor = BatchProcessor(
        plugin, WorkerMetrics("memory"), Backoff(1, 2), ack=rec.ack, dead_letter=rec.dead_letter,
        wait=rec.wait, dry_run=True,
    )
    processor.process(deliveries(body_of(make_event()), b"junk"))
    assert rec.calls == [] and plugin.writes == []


def test_public_names_are_pinned() -> None:
    assert workers.runtime.__all__ == sorted(workers.runtime.__all__)
    assert {"run_worker", "QueueConsumer", "WorkerMetrics", "build_plugin", "load_plugin_class"} <= set(
        workers.runtime.__all__
    )


def test_partial_retry_acks_the_written_part_before_waiting() -> None:
    rec = Recorder()
    plugin, processor, _ = setup(rec)
    events = [make_event() for _ in range(3)]
    plugin.failures = [RetryLater("throttled", event_ids=[events[2]["id"]])]
    processor.process(deliveries(*map(body_of, events)))
    assert rec.calls == [("ack", [1, 2]), ("wait", 1.0), ("ack", [3])]
    assert plugin.writes[1] == [events[2]["id"]]
