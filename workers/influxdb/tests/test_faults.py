"""Faults, end to end: ``eventsink worker run influxdb`` between the real RabbitMQ and InfluxDB.

InfluxDB stopped during a stream, the worker killed with SIGKILL mid-stream, and an event InfluxDB
refuses: nothing lost, nothing duplicated, only the refused event dead-lettered (with its reason).
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pika
import psutil
import pytest
import requests

from sink_lib.event import build_envelope, encode
from sink_lib.settings import SinkSettings
from sink_lib.topology import dead_queue_name, declare
from tests.support import drain_queue, not_here, queue_depth, wait_for
from workers.runtime.deadletter import REASON_HEADER

from .conftest import Influx

pytestmark = [pytest.mark.rabbitmq, pytest.mark.influxdb, pytest.mark.slow]
INFLUXD = ["influxd", "-config", "/etc/influxdb/influxdb.conf"]


START = datetime.now(UTC)


def envelope(i: int, value: Any = None) -> dict[str, Any]:
    """Event ``i`` of a series; event times 1 ms apart, so that no two can share a point by chance."""
    data = {"service": "api", "active": i, "requests": i * 2, "window_s": 1.0}
    if value is not None:
        data = {"service": "api", "value": value}
    return build_envelope("health.connections" if value is None else "custom.gauge", data,
                          source="/tests/faults", time=START + timedelta(milliseconds=next(_SEQUENCE)))


_SEQUENCE = itertools.count()


class Publisher:
    """Publishes envelopes to the test's exchange with publisher confirms (pika, as an app would)."""

    def __init__(self, settings: SinkSettings, *, confirm: bool = True) -> None:
        declare(settings, ["influxdb"])
        self.exchange = settings.exchange
        self.connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
        self.channel = self.connection.channel()
        if confirm:
            self.channel.confirm_delivery()

    def publish(self, env: dict[str, Any]) -> None:
        props = pika.BasicProperties(content_type="application/cloudevents+json", delivery_mode=2,
                                     message_id=env["id"], type=env["type"])
        self.channel.basic_publish(self.exchange, "", encode(env, 1 << 20), props)

    def close(self) -> None:
        self.connection.close()


@contextmanager
def worker_process(settings: SinkSettings, influx: Influx, **env: str) -> Iterator[subprocess.Popen[bytes]]:
    """``eventsink worker run influxdb`` as a subprocess writing to the test database; stopped after."""
    environ = {
        **os.environ,
        "EVENTSINK_AMQP_URL": settings.amqp_url,
        "EVENTSINK_EXCHANGE": settings.exchange,
        "EVENTSINK_INFLUXDB_URL": influx.url,
        "EVENTSINK_INFLUXDB_DATABASE": influx.database,
        "EVENTSINK_INFLUXDB_BATCH_TIMEOUT_S": "0.2",
        "EVENTSINK_INFLUXDB_BACKOFF_MIN_S": "0.2",
        "EVENTSINK_INFLUXDB_BACKOFF_MAX_S": "1.0",
        "EVENTSINK_INFLUXDB_TIMEOUT_S": "3",
        **env,
    }
    cli = [sys.executable, "-c", "from sink_lib.cli import main; main()", "worker", "run", "influxdb"]
    proc = subprocess.Popen(cli, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def ids_in(influx: Influx, measurement: str) -> list[str]:
    try:
        return [row["id"] for row in influx.query(f'SELECT "id" FROM "{measurement}"')]
    except (requests.RequestException, AssertionError):
        return []


def influxd_pids() -> list[int]:
    """Process ids of the local influxd (none when InfluxDB runs elsewhere)."""
    return [p.pid for p in psutil.process_iter(["name"]) if p.info["name"] == "influxd"]


def influx_up(url: str) -> bool:
    try:
        return requests.get(url + "/ping", timeout=1).status_code == 204
    except requests.RequestException:
        return False


@pytest.mark.disruptive
def test_influxdb_down_during_a_stream_loses_nothing_and_dead_letters_nothing(
    sink_settings: SinkSettings, influx: Influx
) -> None:
    if not influxd_pids():
        not_here("InfluxDB does not run as a local influxd process that this test could stop")
    # Given a worker draining a steady stream of events into InfluxDB
    publisher = Publisher(sink_settings)
    sent: list[str] = []
    done = threading.Event()

    def stream() -> None:
        for i in range(300):
            env = envelope(i)
            publisher.publish(env)
            sent.append(env["id"])
            time.sleep(0.04)
        done.set()

    with worker_process(sink_settings, influx):
        feeder = threading.Thread(target=stream, daemon=True)
        feeder.start()
        wait_for(lambda: len(ids_in(influx, "health")) >= 20, 30, what="the first events in InfluxDB")
        # When InfluxDB stops for a few seconds mid-stream
        pid = influxd_pids()[0]
        os.kill(pid, signal.SIGTERM)
        try:
            wait_for(lambda: not influx_up(influx.url), 20, what="InfluxDB to stop")
            time.sleep(5)  # the outage itself
        finally:
            # started as scripts/services.sh starts it, detached so that it outlives the test run
            env = {**os.environ, "INFLUXDB_REPORTING_DISABLED": "true", "INFLUXDB_HTTP_LOG_ENABLED": "false"}
            with open("/tmp/influxd.log", "ab") as log:
                subprocess.Popen(INFLUXD, stdout=log, stderr=log, env=env, start_new_session=True)
            wait_for(lambda: influx_up(influx.url), 60, what="InfluxDB to come back")
        feeder.join(60)
        publisher.close()
        assert done.is_set()
        # Then the worker catches up: every event is there exactly once, nothing dead-lettered
        wait_for(lambda: len(ids_in(influx, "health")) == 300, 60, what="all 300 events in InfluxDB")
    assert sorted(ids_in(influx, "health")) == sorted(sent)
    assert queue_depth(dead_queue_name(sink_settings.exchange, "influxdb")) == 0


def test_a_worker_killed_mid_stream_leaves_every_event_stored_once(
    sink_settings: SinkSettings, influx: Influx
) -> None:
    # Given 10,000 events queued
    total = 10_000
    publisher = Publisher(sink_settings, confirm=False)
    sent = []
    for i in range(total):
        env = envelope(i)
        publisher.publish(env)
        sent.append(env["id"])
    publisher.close()
    queue = f"{sink_settings.exchange}.influxdb"
    wait_for(lambda: queue_depth(queue) == total, 60, what="every event queued")
    # When the worker is killed with SIGKILL after writing some of them (batches unacked in flight)
    with worker_process(sink_settings, influx, EVENTSINK_INFLUXDB_BATCH_SIZE="250") as proc:
        wait_for(lambda: len(ids_in(influx, "health")) >= 250, 60, interval=0.01, what="a first batch written")
        proc.kill()
        proc.wait()
    written_before = len(ids_in(influx, "health"))
    # and started again
    with worker_process(sink_settings, influx, EVENTSINK_INFLUXDB_BATCH_SIZE="250"):
        wait_for(lambda: len(ids_in(influx, "health")) >= total, 90, what="every event in InfluxDB")
        wait_for(lambda: queue_depth(queue) == 0, 30, what="the queue drained")
    # Then every event is stored exactly once (redelivered ones overwrite their own point)
    stored = ids_in(influx, "health")
    assert written_before < total
    assert len(stored) == total and set(stored) == set(sent)


def test_an_event_influxdb_refuses_is_dead_lettered_with_the_reason_and_the_stream_flows(
    sink_settings: SinkSettings, influx: Influx
) -> None:
    # Given a stream where one event's field type conflicts with the others'
    publisher = Publisher(sink_settings)
    good = [envelope(0, value=float(i)) for i in range(100)]
    bad = envelope(0, value="not a number")
    with worker_process(sink_settings, influx):
        for env in good[:50]:
            publisher.publish(env)
        wait_for(lambda: len(ids_in(influx, "custom")) == 50, 30, what="the first 50 events")
        publisher.publish(bad)
        for env in good[50:]:
            publisher.publish(env)
        publisher.close()
        # Then the other events keep flowing
        wait_for(lambda: len(ids_in(influx, "custom")) == 100, 30, what="all good events")
        dead_queue = dead_queue_name(sink_settings.exchange, "influxdb")
        wait_for(lambda: queue_depth(dead_queue) == 1, 30, what="one dead letter")
    # and the refused one is dead-lettered with InfluxDB's reason
    [(_, props, body)] = drain_queue(dead_queue, expect=1)
    assert props.message_id == bad["id"] and bad["id"].encode() in body
    assert "field type conflict" in props.headers[REASON_HEADER]
    assert set(ids_in(influx, "custom")) == {e["id"] for e in good}
