"""The API and a worker on a 3-node cluster: a node loss is invisible to clients and to InfluxDB."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from emergency_api import ApiSettings, create_app
from emergency_api.keys import create_key
from sink_lib import EventSink, SinkSettings
from sink_lib.topology import declare
from tests.support import wait_for
from workers.influxdb import InfluxDBSettings, InfluxDBWorker
from workers.influxdb.tests.conftest import Influx
from workers.runtime.consumer import QueueConsumer
from workers.runtime.metrics import WorkerMetrics

from .conftest import Cluster, node_of

# node starts and stops take tens of seconds each on a busy machine
pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow, pytest.mark.timeout(1200)]

PING = {"target": "cluster", "rtt_avg_ms": 1.0, "loss_pct": 0.0, "ok": True}


def cluster_settings(cluster: Cluster, exchange: str, tmp_path: Path) -> SinkSettings:
    return SinkSettings(amqp_url=cluster.urls, exchange=exchange, spool_dir=tmp_path / "spool",
                        reconnect_min_s=0.1, reconnect_max_s=1.0, heartbeat_s=5)


def test_the_api_keeps_answering_202_through_a_node_loss(cluster: Cluster, cluster_exchange: str,
                                                         tmp_path: Path) -> None:
    settings = cluster_settings(cluster, cluster_exchange, tmp_path)
    declare(settings, ["w"])
    keys = tmp_path / "keys.json"
    key = create_key(keys, "monitor", ["health.*"])[1]
    sink = EventSink(settings)
    api = ApiSettings(keys_file=keys, rate_limit_enabled=False)  # the load here is ours, not an abuse
    client = create_app(api, sink=sink).test_client()
    answers: list[int] = []

    def post() -> None:
        answers.append(client.post("/api/v1/events", json={"type": "health.ping", "data": PING},
                                   headers={"X-API-Key": key}).status_code)

    wait_for(lambda: post() or sink.stats()["node"], 60, what="API publishing")
    node = node_of(sink.stats()["node"])
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            post()

    poster = threading.Thread(target=load, daemon=True)
    poster.start()
    try:
        started = time.monotonic()
        cluster.node_stop(node)
        wait_for(lambda: (n := sink.stats()["node"]) is not None and node_of(n) != node, 120,
                 what="API moved to another node")
        moved_s = time.monotonic() - started
        count = len(answers)
        wait_for(lambda: len(answers) > count + 100, 60, what="requests after the failover")
    finally:
        stop.set()
        poster.join(30)
    assert sink.flush(60)
    sink.close(10)
    assert set(answers) == {202}, f"answers other than 202: {sorted(set(answers))}"
    stats = sink.stats()
    print(f"\nAPI: {len(answers)} requests, all 202; its sink left node {node} within {moved_s:.2f}s of the "
          f"stop command, {stats['spooled']} events spooled")


@pytest.mark.influxdb
def test_worker_node_stops_mid_drain_and_influxdb_holds_every_event_once(
        cluster: Cluster, cluster_exchange: str, tmp_path: Path, influxdb_url: str,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="workers.runtime")
    settings = cluster_settings(cluster, cluster_exchange, tmp_path)
    declare(settings, ["influxdb"])
    influx = Influx(influxdb_url, cluster_exchange)
    sink = EventSink(settings)
    # one series per event (region is a tag): points of one series in the same microsecond may collide,
    # and a collision would look like a lost event here
    ids = [sink.enqueue("health.ping", PING, region=f"r{i}").id for i in range(3000)]
    assert sink.flush(120)
    plugin = InfluxDBWorker(InfluxDBSettings(url=influxdb_url, database=cluster_exchange, batch_size=50,
                                             batch_timeout_s=0.2))
    stop = threading.Event()
    worker = QueueConsumer(plugin, settings, metrics=WorkerMetrics("influxdb", CollectorRegistry()), stop_event=stop)
    runner = threading.Thread(target=worker.run, daemon=True)
    runner.start()
    try:
        wait_for(lambda: worker.node, 60, what="worker connected")
        node = node_of(worker.node)
        wait_for(lambda: influx.count("health") >= 200, 60, interval=0.02, what="drain under way")
        # more events while the node goes, so the worker has work left on the new node whatever its speed
        more = threading.Thread(target=lambda: ids.extend(
            sink.enqueue("health.ping", PING, region=f"more{i}").id for i in range(2000)), daemon=True)
        more.start()
        started = time.monotonic()
        cluster.node_stop(node)
        wait_for(lambda: worker.node is not None and node_of(worker.node) != node, 120,
                 what="worker resumed on another node")
        resumed_s = time.monotonic() - started
        more.join(60)
        assert sink.flush(120)
        wait_for(lambda: influx.count("health") >= len(ids), 180, interval=0.5, what="every event written")
    finally:
        stop.set()
        runner.join(60)
        sink.close(10)
    try:
        points = [row["id"] for row in influx.query("SELECT id FROM health")]
    finally:
        influx.drop()
    assert len(points) == len(set(points)) == len(ids)
    assert set(points) == set(ids)
    moved = [r.getMessage() for r in caplog.records if "moved from RabbitMQ node" in r.getMessage()]
    assert moved and f"127.0.0.1:{5680 + node} to" in moved[0]
    print(f"\n{moved[0]}; consuming elsewhere within {resumed_s:.2f}s of the stop command")
