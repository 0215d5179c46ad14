"""End to end: an app emits through sink_lib, a monitor posts through the API, and the influxdb,
mongodb and prometheus workers each receive every event exactly once.

InfluxDB, RabbitMQ, gunicorn and the worker processes are real. MongoDB is reached over the wire:
the server EVENTSINK_TEST_MONGODB_URL names, or else a private nx-27017 (a MongoDB wire-protocol
stand-in backed by SQLite, from the dev extra; no MongoDB server can run here).
"""

from __future__ import annotations

import collections
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pymongo
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from sink_lib import EventSink, SinkSettings
from sink_lib.topology import declare
from tests.support import wait_for

pytestmark = [pytest.mark.rabbitmq, pytest.mark.influxdb, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def stack(sink_settings: SinkSettings, influxdb_url: str, mongodb_url: str, tmp_path: Path) -> Iterator[dict]:
    """API, influxdb, mongodb and prometheus workers as processes."""
    exchange = sink_settings.exchange
    declare(sink_settings, ["influxdb", "mongodb", "prometheus"])
    api_port, prom_port = free_port(), free_port()
    env = {**os.environ, "EVENTSINK_EXCHANGE": exchange, "EVENTSINK_AMQP_URL": sink_settings.amqp_url,
           "EVENTSINK_SPOOL_DIR": str(tmp_path / "api-spool"), "EVENTSINK_API_KEYS_FILE": str(tmp_path / "keys.json"),
           "EVENTSINK_INFLUXDB_URL": influxdb_url, "EVENTSINK_INFLUXDB_DATABASE": exchange,
           "EVENTSINK_INFLUXDB_BATCH_TIMEOUT_S": "0.2", "EVENTSINK_PROMETHEUS_BATCH_TIMEOUT_S": "0.2",
           "EVENTSINK_PROMETHEUS_PORT": str(prom_port), "EVENTSINK_PROMETHEUS_STATE_DIR": str(tmp_path / "prom"),
           "EVENTSINK_MONGODB_URL": mongodb_url, "EVENTSINK_MONGODB_DATABASE": exchange,
           "EVENTSINK_MONGODB_BATCH_TIMEOUT_S": "0.2"}
    key = subprocess.run([sys.executable, "-m", "sink_lib.cli", "keys", "create", "--name", "monitor-e2e",
                          "--scope", "health.*"], env=env, capture_output=True, text=True, check=True
                         ).stdout.strip().splitlines()[-1]
    cli = [sys.executable, "-m", "sink_lib.cli"]
    procs = [subprocess.Popen([*cli, "api", "--bind", f"127.0.0.1:{api_port}"], env=env),
             subprocess.Popen([*cli, "worker", "run", "influxdb"], env=env),
             subprocess.Popen([*cli, "worker", "run", "prometheus"], env=env),
             subprocess.Popen([*cli, "worker", "run", "mongodb"], env=env)]
    wait_for(lambda: _get(f"http://127.0.0.1:{api_port}/healthz"), timeout=30, what="the API")
    try:
        yield {"api": f"http://127.0.0.1:{api_port}", "key": key, "env": env, "influx": influxdb_url,
               "db": exchange, "prom": f"http://127.0.0.1:{prom_port}/metrics", "tmp": tmp_path,
               "mongodb": mongodb_url}
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(30)
        requests.post(f"{influxdb_url}/query", params={"q": f'DROP DATABASE "{exchange}"'}, timeout=10)
        with pymongo.MongoClient(mongodb_url) as client:
            client.drop_database(exchange)


def _get(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).ok
    except requests.RequestException:
        return False


def influx_ids(stack: dict) -> collections.Counter[str]:
    out: collections.Counter[str] = collections.Counter()
    r = requests.get(f"{stack['influx']}/query", params={"db": stack["db"], "q": 'SELECT "id" FROM /.*/'}, timeout=10)
    for result in r.json().get("results", []):
        for series in result.get("series", []):
            out.update(row[1] for row in series["values"])
    return out


def mongo_ids(stack: dict) -> collections.Counter[str]:
    with pymongo.MongoClient(stack["mongodb"], serverSelectionTimeoutMS=5000) as client:
        db = client[stack["db"]]
        return collections.Counter(
            doc["_id"] for name in db.list_collection_names() for doc in db[name].find({}, {"_id": 1}))


def prometheus_counts(stack: dict) -> dict[tuple[str, str], float]:
    try:
        text = requests.get(stack["prom"], timeout=5).text
    except requests.RequestException:
        return {}
    out = {}
    for family in text_string_to_metric_families(text):
        if family.name == "eventsink_events":
            for sample in family.samples:
                if sample.name == "eventsink_events_total":
                    out[(sample.labels["type"], sample.labels["source"])] = sample.value
    return out


def test_every_event_reaches_every_destination_exactly_once(stack: dict, sink_settings: SinkSettings):
    # Given an application emitting through sink_lib
    app_ids: list[str] = []
    app_types: collections.Counter[str] = collections.Counter()
    with EventSink(settings=sink_settings.model_copy(update={"source": "/clowder/e2e"})) as sink:
        for i in range(60):
            kind = i % 4
            if kind == 0:
                ev = sink.enqueue("storage.file.uploaded", {"file_id": f"f{i}", "bytes": 1000 + i}, userid="u1")
            elif kind == 1:
                ev = sink.enqueue("traffic.page.viewed", {"url": f"/datasets/{i}"}, userid="u2")
            elif kind == 2:
                ev = sink.enqueue("extraction.finished", {"extractor": "ncsa.image", "duration_s": 1.5})
            else:
                ev = sink.enqueue("storage.file.deleted", {"file_id": f"f{i - 3}", "bytes": 1000 + i - 3})
            app_ids.append(ev.id)
            app_types[ev.type] += 1
        assert sink.flush(30)
    # And a monitor probing the API and posting its results through the API
    config = stack["tmp"] / "monitor.toml"
    config.write_text(f'region = "eu-west"\napi_url = "{stack["api"]}"\napi_key = "{stack["key"]}"\n'
                      f'spool_dir = "{stack["tmp"] / "monitor-spool"}"\n'
                      f'[[targets]]\nname = "api"\nkind = "http"\nurl = "{stack["api"]}/healthz"\n'
                      f'[[targets]]\nname = "broker"\nkind = "tcp"\nhost = "127.0.0.1"\nport = 5672\n')
    monitor = subprocess.run([sys.executable, "-m", "sink_lib.cli", "monitor", "--config", str(config), "--once",
                              "--format", "json"], env=stack["env"], capture_output=True, text=True, timeout=120)
    assert monitor.returncode == 0, monitor.stdout + monitor.stderr

    # Then InfluxDB, MongoDB and the prometheus worker each hold every app event exactly once
    expected_monitor_events = 2  # at least one health.http and one health.tcp result

    def complete() -> bool:
        got, mongo = influx_ids(stack), mongo_ids(stack)
        return (all(got[i] for i in app_ids) and len(set(got) - set(app_ids)) >= expected_monitor_events
                and len(set(mongo) - set(app_ids)) >= expected_monitor_events)

    wait_for(complete, timeout=60, interval=0.5, what="app and monitor events in InfluxDB and MongoDB")
    influx, mongo = influx_ids(stack), mongo_ids(stack)
    for counter in (influx, mongo):
        assert all(counter[i] == 1 for i in app_ids)
        assert max(counter.values()) == 1  # nothing anywhere twice
    # monitor events (ids assigned by the API) are the same set in both, once each
    monitor_influx = set(influx) - set(app_ids)
    monitor_mongo = set(mongo) - set(app_ids)
    assert len(monitor_influx) >= expected_monitor_events and monitor_influx == monitor_mongo

    def prom_done() -> bool:
        counts = prometheus_counts(stack)
        app = {t: counts.get((t, "/clowder/e2e"), 0) for t in app_types}
        mon = sum(v for (t, s), v in counts.items() if s.startswith("/api/monitor-e2e"))
        return app == dict(app_types) and mon == len(monitor_influx)

    try:
        wait_for(prom_done, timeout=60, interval=0.5, what="prometheus counters to match the events sent")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {prometheus_counts(stack)} vs {dict(app_types)} "
                             f"and {len(monitor_influx)} monitor events") from None
    text = requests.get(stack["prom"], timeout=5).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    files = [s.value for s in families["eventsink_files_stored"].samples]
    assert files == [app_types["storage.file.uploaded"] - app_types["storage.file.deleted"]]
    monitor_lines = json.loads(monitor.stdout)
    assert monitor_lines  # the monitor reported what it probed
