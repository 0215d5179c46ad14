"""Clowder's event sink, unchanged, into the influxdb, mongodb and prometheus workers.

Messages are built as Clowder's EventSinkService builds them and published as its RabbitMQ service
does (durable fanout exchange, no AMQP properties), each one twice, through the real broker. InfluxDB
and RabbitMQ are real; MongoDB is mongomock inside the test process.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import mongomock
import pytest
import requests

from sink_lib.settings import SinkSettings
from sink_lib.topology import dead_queue_name, declare, queue_name
from tests.support import queue_depth, wait_for
from tests.workers import clowder_messages as cm
from workers.influxdb import InfluxDBSettings, InfluxDBWorker
from workers.mongodb import MongoDBSettings, MongoDBWorker
from workers.plugin import WorkerPlugin
from workers.prometheus import PrometheusSettings, PrometheusWorker
from workers.runtime import Worker, WorkerMetrics

pytestmark = [pytest.mark.rabbitmq, pytest.mark.influxdb]

QUICK = {"batch_size": 8, "batch_timeout_s": 0.1}
# What each message must become, from the mapping table (README, "Connect Clowder").
EXPECTED_TYPES = Counter({
    "activity.user.signed_up": 1, "activity.user.logged_in": 1, "activity.resource.viewed": 4,
    "activity.extractor.submitted": 3, "storage.file.uploaded": 2, "traffic.resource.downloaded": 2,
    "storage.file.archived": 1, "storage.file.unarchived": 1,
})


@contextmanager
def running(plugin: WorkerPlugin, settings: SinkSettings) -> Iterator[WorkerMetrics]:
    """Run ``plugin`` under the runtime in a thread until the block ends."""
    metrics = WorkerMetrics(plugin.name)
    stop = threading.Event()
    worker = Worker(plugin, settings, metrics=metrics, stop_event=stop)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        yield metrics
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()


def settled(metrics: WorkerMetrics) -> float:
    """Deliveries a worker has finished with: written, merged as duplicates, skipped or dead-lettered."""
    return sum(metrics.value(f"eventsink_worker_events_{name}_total")
               for name in ("processed", "duplicate", "skipped")) + metrics.value(
        "eventsink_worker_events_rejected_total", cause="malformed")


def influx_rows(url: str, database: str, q: str) -> list[dict[str, Any]]:
    resp = requests.get(url + "/query", params={"db": database, "q": q}, timeout=10)
    resp.raise_for_status()
    rows = []
    for result in resp.json()["results"]:
        for series in result.get("series", []):
            rows += [dict(zip(series["columns"], values, strict=True)) | {"_series": series["name"]}
                     for values in series["values"]]
    return rows


def test_clowder_messages_published_twice_are_stored_once_without_names(
    sink_settings: SinkSettings, influxdb_url: str, tmp_path: Path
) -> None:
    # Given EventSink's workers bound to the exchange Clowder publishes to
    workers = ("influxdb", "mongodb", "prometheus")
    declare(sink_settings, workers)
    database = f"test_{uuid.uuid4().hex[:12]}"
    mongo: Any = mongomock.MongoClient(tz_aware=True)
    plugins: list[WorkerPlugin] = [
        InfluxDBWorker(InfluxDBSettings(url=influxdb_url, database=database, **QUICK)),
        MongoDBWorker(MongoDBSettings(**QUICK), client_factory=lambda _s: mongo),
        PrometheusWorker(PrometheusSettings(port=0, address="127.0.0.1", state_file=tmp_path / "p.sqlite3", **QUICK)),
    ]
    # and every kind of message Clowder sends, each published twice, the way Clowder publishes
    messages = cm.every_message()
    try:
        cm.publish_like_clowder(sink_settings.amqp_url, sink_settings.exchange, messages)
        cm.publish_like_clowder(sink_settings.amqp_url, sink_settings.exchange, messages)

        # When the workers drain their queues
        with ExitStack() as stack:
            metrics = [stack.enter_context(running(p, sink_settings)) for p in plugins]
            for m in metrics:
                wait_for(lambda m=m: settled(m) >= 2 * len(messages), 60, 0.1,
                         what=f"worker {m.worker} to settle every delivery")
            prometheus = plugins[2]
            assert isinstance(prometheus, PrometheusWorker)
            scraped = requests.get(f"http://127.0.0.1:{prometheus.port}/metrics", timeout=5).text

        # Then nothing was dead-lettered or left behind
        for name, m in zip(workers, metrics, strict=True):
            assert m.value("eventsink_worker_events_rejected_total", cause="malformed") == 0, name
            assert queue_depth(dead_queue_name(sink_settings.exchange, name)) == 0, name
            assert queue_depth(queue_name(sink_settings.exchange, name)) == 0, name

        # InfluxDB: one point per message, of the mapped type, no names, no user id as a tag
        points = influx_rows(influxdb_url, database, 'SELECT * FROM "activity", "storage", "traffic"')
        assert Counter(p["type"] for p in points) == EXPECTED_TYPES
        assert {p["source"] for p in points} == {"/clowder"}
        text = repr(points)
        for name in cm.NAMES:
            assert name not in text
        assert cm.USER not in text and cm.AUTHOR not in text  # userid is not stored by default, never as tag
        tag_keys = {row["tagKey"] for row in influx_rows(influxdb_url, database, "SHOW TAG KEYS")}
        assert not tag_keys & {"userid", "user_id", "author_id", "data_userid"}
        uploads = [p for p in points if p["type"] == "storage.file.uploaded"]
        assert sorted(p["bytes"] for p in uploads) == [4096, 4096]

        # MongoDB: one document per message, the user id kept as `userid`, no names
        documents = list(mongo.eventsink.events.find({}))
        assert Counter(d["type"] for d in documents) == EXPECTED_TYPES
        assert {d.get("userid") for d in documents} == {cm.USER}
        for name in cm.NAMES:
            assert name not in repr(documents)
        assert {d["_id"] for d in documents} == {p["id"] for p in points}  # the same ids everywhere

        # Prometheus: each event counted once; the upload and download bytes add up
        for type_, count in EXPECTED_TYPES.items():
            assert f'eventsink_events_total{{source="/clowder",type="{type_}"}} {float(count)}' in scraped
        assert "eventsink_storage_uploaded_bytes_total 8192.0" in scraped
        assert 'eventsink_traffic_downloaded_bytes_total{source="/clowder"} 4096.0' in scraped
    finally:
        requests.post(influxdb_url + "/query", data={"q": f'DROP DATABASE "{database}"'}, timeout=30)
