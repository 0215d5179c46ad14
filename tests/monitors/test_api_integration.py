"""The monitor against the real emergency API (gunicorn subprocess) with RabbitMQ behind it.

A test queue bound to the test's fanout exchange shows what reached the broker.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pika
import pytest
import requests

from sink_lib.event import parse_time

from ..support import drain_queue, wait_for
from .targets import CLOCK_LEAD_MS, DelayServer, closed_port

pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow]


@dataclass
class Api:
    url: str
    port: int
    key: str
    queue: str
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sink_lib.cli", "api", "--bind", f"127.0.0.1:{self.port}", "--workers", "1"],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for(self.healthy, timeout=30, interval=0.1, what="the emergency API to start")

    def healthy(self) -> bool:
        try:
            return requests.get(self.url + "/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(30)
        self.process = None


@pytest.fixture
def api(exchange: str, rabbitmq_url: str, tmp_path: Path) -> Iterator[Api]:
    env = {**os.environ, "EVENTSINK_API_KEYS_FILE": str(tmp_path / "keys.json"), "EVENTSINK_EXCHANGE": exchange,
           "EVENTSINK_SPOOL_DIR": str(tmp_path / "api-spool"), "EVENTSINK_AMQP_URL": rabbitmq_url}
    created = subprocess.run([sys.executable, "-m", "sink_lib.cli", "keys", "create", "--name", "monitor-test",
                              "--scope", "health.*"], env=env, capture_output=True, text=True, check=True)
    key = created.stdout.strip().splitlines()[-1]
    queue = f"{exchange}.monitor_test"
    conn = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    channel = conn.channel()
    channel.exchange_declare(exchange, exchange_type="fanout", durable=True)
    channel.queue_declare(queue, durable=True)
    channel.queue_bind(queue, exchange)
    conn.close()
    port = closed_port()
    server = Api(f"http://127.0.0.1:{port}", port, key, queue, env)
    server.start()
    yield server
    server.stop()


def write_config(tmp_path: Path, api: Api, target: DelayServer, interval_s: float) -> Path:
    (tmp_path / "key.txt").write_text(api.key + "\n")
    path = tmp_path / "monitor.toml"
    path.write_text(f"""
region = "test-east"
api_url = "{api.url}"
api_key_file = "key.txt"
spool_dir = "spool"
flush_interval_s = 0.1
retry_max_s = 0.5
jitter_s = 0
heartbeat_s = 1
[[targets]]
name = "web"
kind = "http"
url = "{target.base}/?delay_ms=20&size=500"
interval_s = {interval_s}
timeout_s = 2
[[targets]]
name = "closed"
kind = "tcp"
host = "127.0.0.1"
port = {closed_port()}
interval_s = {interval_s}
timeout_s = 1
down_after = 2
""")
    return path


def start_monitor(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "sink_lib.cli", "-v", "monitor", "--config", str(config)],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)


def stop_monitor(process: subprocess.Popen[str]) -> dict[str, int]:
    """SIGTERM the monitor; return the counters it logs when it stops."""
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    found = re.search(r"reporter stopped: (.*)", err)
    assert found, err
    return {k: int(v) for k, v in (pair.split("=") for pair in found.group(1).split()) if v.isdigit()}


def bodies(queue: str, expect: int | None = None) -> list[dict]:
    return [json.loads(body) for _, _, body in drain_queue(queue, expect=expect, timeout=10)]


def test_probe_results_reach_the_broker_with_region_and_probe_times(
    api: Api, http_server: DelayServer, tmp_path: Path
) -> None:
    monitor = start_monitor(write_config(tmp_path, api, http_server, interval_s=0.5))
    started = datetime.now(UTC)
    try:
        wait_for(lambda: _count(api.queue) >= 8, timeout=30, what="events in the test queue")
    finally:
        stats = stop_monitor(monitor)
    events = bodies(api.queue)
    assert len(events) == stats["sent"] == stats["submitted"] and stats["spooled"] == 0
    by_type: dict[str, list[dict]] = {}
    for event in events:
        by_type.setdefault(event["type"], []).append(event)
        assert event["region"] == "test-east"
        assert event["source"] == "/api/monitor-test/monitor/test-east"
        assert parse_time(event["time"]) >= started.replace(microsecond=0)
    http = by_type["health.http"]
    assert all(e["data"]["ok"] and e["data"]["bytes"] == 500 for e in http)
    assert all(e["data"]["ttfb_ms"] >= 20 - CLOCK_LEAD_MS for e in http)
    assert all(not e["data"]["ok"] for e in by_type["health.tcp"])
    states = {(e["data"]["service"], e["data"]["state"]) for e in by_type["health.status"]}
    assert ("web", "up") in states and ("closed", "down") in states


def test_nothing_is_lost_while_the_api_is_stopped_and_restarted(
    api: Api, http_server: DelayServer, tmp_path: Path
) -> None:
    # Given a monitor probing every 0.2 s and reporting to the API
    monitor = start_monitor(write_config(tmp_path, api, http_server, interval_s=0.2))
    try:
        wait_for(lambda: _count(api.queue) >= 5, timeout=30, what="first events")
        # When the API stops while probing goes on, then comes back
        api.stop()
        down_from = datetime.now(UTC)
        time.sleep(3)
        down_until = datetime.now(UTC)
        api.start()
        wait_for(lambda: _count(api.queue) >= 40, timeout=30, what="events after the restart")
    finally:
        stats = stop_monitor(monitor)
    # Then every event the monitor produced arrived exactly once
    events = bodies(api.queue, expect=stats["submitted"])
    ids = [e["id"] for e in events]
    assert len(ids) == len(set(ids)) == stats["submitted"] == stats["sent"]
    assert stats["dropped"] == 0 and stats["spooled"] == 0 and stats["retries"] >= 1
    # and those probed during the outage carry their probe times, with no gap in the schedule
    http_times = sorted(parse_time(e["time"]) for e in events if e["type"] == "health.http")
    assert sum(down_from < t < down_until for t in http_times) >= 10
    # probing went on through the whole outage (not blocked by the reporter): both halves have probes
    middle = down_from + (down_until - down_from) / 2
    assert any(down_from < t < middle for t in http_times) and any(middle < t < down_until for t in http_times)


def _count(queue: str) -> int:
    from ..support import queue_depth

    return queue_depth(queue)
