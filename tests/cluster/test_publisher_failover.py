"""Publishers on a 3-node cluster: a node loss costs no event; a lost majority spools, then replays."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest

from sink_lib import EventSink, SinkSettings
from sink_lib.topology import declare, queue_arguments
from tests.support import wait_for

from .conftest import Cluster, drain_ids, node_of, queue_depth

# node starts and stops take tens of seconds each on a busy machine
pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow, pytest.mark.timeout(1200)]


def cluster_settings(cluster: Cluster, exchange: str, tmp_path: Path) -> SinkSettings:
    return SinkSettings(amqp_url=cluster.urls, exchange=exchange, spool_dir=tmp_path / "spool",
                        reconnect_min_s=0.1, reconnect_max_s=1.0, heartbeat_s=5)


def test_the_worker_queue_is_quorum_with_three_replicas(cluster: Cluster, cluster_exchange: str,
                                                         tmp_path: Path) -> None:
    settings = cluster_settings(cluster, cluster_exchange, tmp_path)
    assert queue_arguments(settings, "w")["x-quorum-initial-group-size"] == 3
    declare(settings, ["w"])
    out = cluster.run("status")
    assert "es1@localhost" in out and "es2@localhost" in out and "es3@localhost" in out
    import subprocess

    members = subprocess.run(
        ["rabbitmq-queues", "-n", "es1@localhost", "quorum_status", f"{cluster_exchange}.w"],
        capture_output=True, text=True, timeout=60,
    )
    if members.returncode == 0:  # the CLI may lack the cookie when not run as the rabbitmq user
        assert all(f"es{n}@localhost" in members.stdout for n in (1, 2, 3))


def test_publisher_node_stops_mid_stream_and_no_event_is_lost(cluster: Cluster, cluster_exchange: str,
                                                             tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="sink_lib.publisher")
    settings = cluster_settings(cluster, cluster_exchange, tmp_path)
    declare(settings, ["w"])
    sink = EventSink(settings)
    emitted: list[str] = []
    stop = threading.Event()

    def produce() -> None:
        i = 0
        while not stop.is_set():
            emitted.append(sink.enqueue("test.cluster", {"i": i}).id)
            i += 1
            if i % 10 == 0:
                time.sleep(0.01)  # a steady stream (under 1000/s), not one burst to read back

    emitted.append(sink.enqueue("test.cluster", {"i": -1}).id)  # the publisher starts with the first event
    wait_for(lambda: sink.stats()["node"], 60, what="publisher connected")
    first = node_of(sink.stats()["node"])
    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    try:
        wait_for(lambda: sink.stats()["confirmed"] >= 500, 60, what="stream under way")
        stopped_at = time.monotonic()
        cluster.node_stop(first)
        moved = wait_for(lambda: (n := sink.stats()["node"]) is not None and node_of(n) != first and n,
                         120, what="publisher moved to another node")
        failover_s = time.monotonic() - stopped_at
        before = sink.stats()["confirmed"]
        wait_for(lambda: sink.stats()["confirmed"] > before + 200, 60, what="publishing on the new node")
    finally:
        stop.set()
        producer.join(30)
    assert sink.flush(120), "not every event was confirmed or spooled"
    stats = sink.stats()
    sink.close(30)
    # every event emitted is in the quorum queue (at least once: a failover may republish some)
    wait_for(lambda: queue_depth(cluster, f"{cluster_exchange}.w") >= len(emitted), 60, what="queue filled")
    in_queue = drain_ids(cluster, f"{cluster_exchange}.w")
    assert set(in_queue) == set(emitted)
    assert stats["dropped"] == 0 and stats["failed"] == 0
    # the log says where the publisher went (and how long it took, the figure the README quotes)
    [moved_log] = [r.getMessage() for r in caplog.records if "publisher moved from" in r.getMessage()]
    assert f"RabbitMQ node 127.0.0.1:{5680 + first} to {moved}" in moved_log
    print(f"\nfailover: {moved_log}; node stopped -> publishing elsewhere within {failover_s:.2f}s of the stop "
          f"command; {len(emitted)} events, {stats['spooled']} spooled, {len(in_queue) - len(set(in_queue))} "
          f"duplicates")


def test_minority_left_spools_and_replays_once_a_majority_is_back(cluster: Cluster, cluster_exchange: str,
                                                                 tmp_path: Path) -> None:
    settings = cluster_settings(cluster, cluster_exchange, tmp_path)
    declare(settings, ["w"])
    sink = EventSink(settings)
    warmup = sink.enqueue("test.cluster", {"i": -1}).id  # the publisher starts with the first event
    wait_for(lambda: sink.stats()["node"], 60, what="publisher connected")
    survivor = node_of(sink.stats()["node"])
    others = [n for n in (1, 2, 3) if n != survivor]
    for node in others:
        cluster.node_stop(node)
    # pause_minority: the last node pauses itself and refuses clients, so the publisher spools
    wait_for(lambda: not cluster.up(survivor), 120, what="the minority node pausing")
    ids = [sink.enqueue("test.cluster", {"i": i}).id for i in range(300)]
    assert sink.flush(60)
    wait_for(lambda: sink.stats()["spool_pending"] == len(ids), 60, what="events spooled")
    assert sink.stats()["spooled"] == len(ids)
    cluster.node_start(others[-1])  # two of three: a majority again
    wait_for(lambda: sink.stats()["spool_pending"] == 0, 180, what="spool replayed")
    stats = sink.stats()
    sink.close(30)
    assert stats["replayed"] == len(ids)
    wait_for(lambda: queue_depth(cluster, f"{cluster_exchange}.w") >= len(ids) + 1, 60, what="queue filled")
    assert set(drain_ids(cluster, f"{cluster_exchange}.w")) == {warmup, *ids}
