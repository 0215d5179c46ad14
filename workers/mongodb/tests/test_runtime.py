"""The mongodb worker under the real runtime and RabbitMQ (mongomock destination, in-process).

Checks the outcomes end to end: written events acked, an event MongoDB cannot store dead-lettered
with its reason, a repeated message stored once.
"""

from __future__ import annotations

import threading
from typing import Any

import mongomock
import pytest

from sink_lib.event import build_envelope
from sink_lib.settings import SinkSettings
from sink_lib.topology import dead_queue_name, queue_name
from tests.support import drain_queue, queue_depth, wait_for
from tests.workers.helpers import publish
from workers.mongodb import MongoDBSettings, MongoDBWorker
from workers.runtime import QueueConsumer, WorkerMetrics

pytestmark = pytest.mark.rabbitmq


def test_stream_is_stored_and_the_unstorable_event_dead_lettered(sink_settings: SinkSettings) -> None:
    # Given 30 events, one of them published twice, and one MongoDB cannot store (a 70-bit integer)
    good = [build_envelope("traffic.page.viewed", {"url": f"/p{i}"}, source="/app") for i in range(30)]
    bad = build_envelope("storage.file.uploaded", {"file_id": "f", "bytes": 2**70}, source="/app")
    publish(sink_settings, "mongodb", [*good[:10], bad, good[3], *good[10:]])

    # When the mongodb worker drains the queue
    client: Any = mongomock.MongoClient(tz_aware=True)
    settings = MongoDBSettings(batch_size=8, batch_timeout_s=0.1)
    metrics = WorkerMetrics("mongodb")
    stop = threading.Event()
    worker = QueueConsumer(
        MongoDBWorker(settings, client_factory=lambda s: client), sink_settings, metrics=metrics, stop_event=stop
    )
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        dead = dead_queue_name(sink_settings.exchange, "mongodb")
        wait_for(lambda: queue_depth(dead) == 1, 60, 0.1, what="the unstorable event to be dead-lettered")
        wait_for(
            lambda: metrics.value("eventsink_worker_events_processed_total") >= len(good), 60, 0.1,
            what="every event written",
        )
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()

    # Then every good event is stored once, the queue is empty, and the dead letter says why
    stored = sorted(d["_id"] for d in client.eventsink.events.find({}, {"_id": 1}))
    assert stored == sorted(e["id"] for e in good)
    assert queue_depth(queue_name(sink_settings.exchange, "mongodb")) == 0
    ((_, props, _),) = drain_queue(dead, expect=1)
    assert props.message_id == bad["id"]
    assert "BSON" in str(props.headers.get("x-eventsink-reason"))
