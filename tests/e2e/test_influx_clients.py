"""Official InfluxDB clients write through the API (gunicorn, real RabbitMQ, the influxdb worker as a
process) and the series land in the real InfluxDB exactly as when the same client writes to InfluxDB
directly: same measurements, tags, fields, field types and timestamps."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from sink_lib import SinkSettings
from sink_lib.topology import declare
from tests.support import wait_for

from .test_end_to_end import _get, free_port

pytestmark = [pytest.mark.rabbitmq, pytest.mark.influxdb, pytest.mark.slow]
influxdb_client = pytest.importorskip("influxdb_client")
influxdb_v1 = pytest.importorskip("influxdb")


def query(url: str, db: str, q: str) -> list[dict[str, Any]]:
    rows = []
    for result in requests.get(url + "/query", params={"db": db, "q": q, "epoch": "ns"}, timeout=10).json()["results"]:
        for series in result.get("series", []):
            rows += [{"_m": series["name"], **dict(zip(series["columns"], v, strict=True))} for v in series["values"]]
    return rows


def snapshot(url: str, db: str) -> dict[str, list[str]]:
    """What a dashboard sees: every row with its time, the field types and the tag keys."""
    return {q: sorted(map(repr, query(url, db, q))) for q in ("SELECT * FROM /.*/", "SHOW FIELD KEYS", "SHOW TAG KEYS")}


@pytest.fixture
def stack(sink_settings: SinkSettings, influxdb_url: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The API and the influxdb worker as processes; a database for the worker and one written directly."""
    exchange = sink_settings.exchange
    declare(sink_settings, ["influxdb"])
    port = free_port()
    ours, direct = f"test_ours_{uuid.uuid4().hex[:8]}", f"test_direct_{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "EVENTSINK_EXCHANGE": exchange, "EVENTSINK_AMQP_URL": sink_settings.amqp_url,
           "EVENTSINK_SPOOL_DIR": str(tmp_path / "spool"), "EVENTSINK_API_KEYS_FILE": str(tmp_path / "keys.json"),
           "EVENTSINK_INFLUXDB_URL": influxdb_url, "EVENTSINK_INFLUXDB_DATABASE": ours,
           "EVENTSINK_INFLUXDB_BATCH_TIMEOUT_S": "0.2", "EVENTSINK_API_WORKERS": "1"}
    cli = [sys.executable, "-m", "sink_lib.cli"]
    key = subprocess.run([*cli, "keys", "create", "--name", "telegraf", "--scope", "metric.*"], env=env,
                         capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    requests.post(influxdb_url + "/query", data={"q": f'CREATE DATABASE "{direct}"'}, timeout=10)
    procs = [subprocess.Popen([*cli, "api", "--bind", f"127.0.0.1:{port}"], env=env),
             subprocess.Popen([*cli, "worker", "run", "influxdb"], env=env)]
    api = f"http://127.0.0.1:{port}"
    wait_for(lambda: _get(api + "/healthz"), timeout=30, what="the API")
    try:
        yield {"api": api, "key": key, "influx": influxdb_url, "ours": ours, "direct": direct}
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(30)
        for db in (ours, direct):
            requests.post(influxdb_url + "/query", data={"q": f'DROP DATABASE "{db}"'}, timeout=10)


def points() -> list[Any]:
    """Points as an agent builds them: escaped names, every type InfluxDB 1.6 stores, ns timestamps."""
    p = influxdb_client.Point
    ns = influxdb_client.WritePrecision.NS
    return [
        p("cpu").tag("host", "web 1").tag("cpu", "cpu-total").field("usage_idle", 97.5).field("usage_user", 1.0)
        .field("n_cpus", 4).time(1700000000123456789, ns),
        p("disk,io").tag("path", "C:\\data,x").field("ok", True).field("msg", 'said "hi" \\o/').field("free", 1.5e9)
        .time(1700000000000000001, ns),
        p("net if").tag("if", "eth0").field("bytes_recv", 18446744073709).time(1700000000000000002, ns),
    ]


def wait_same(stack: dict[str, Any]) -> None:
    expected = snapshot(stack["influx"], stack["direct"])
    assert expected["SELECT * FROM /.*/"], "the direct write stored nothing"
    wait_for(lambda: snapshot(stack["influx"], stack["ours"]) == expected, timeout=60,
             what="the same series through the API as written directly")


def test_influxdb_client_v2_sync_write(stack: dict[str, Any]) -> None:
    from influxdb_client.client.write_api import SYNCHRONOUS

    # Given the official v2 client pointed at the API with an EventSink key as its token
    with influxdb_client.InfluxDBClient(url=stack["api"], token=stack["key"], org="any") as client:
        client.write_api(write_options=SYNCHRONOUS).write(bucket="telegraf", record=points())
    # and the same points, as that client writes them, sent to InfluxDB directly (1.6 has no /api/v2/write)
    lines = "\n".join(point.to_line_protocol() for point in points())
    assert requests.post(stack["influx"] + "/write", params={"db": stack["direct"]}, data=lines.encode(),
                         timeout=10).status_code == 204
    # Then the worker's database holds exactly the series InfluxDB got directly
    wait_same(stack)


def test_influxdb_client_v2_batching_write_with_gzip(stack: dict[str, Any]) -> None:
    from influxdb_client.client.write_api import WriteOptions

    records = [f"load,host=h{i % 3} v={i}i {1700000000000000000 + i}" for i in range(500)]
    options = WriteOptions(batch_size=100, flush_interval=200)
    client = influxdb_client.InfluxDBClient(url=stack["api"], token=stack["key"], org="any", enable_gzip=True)
    with client, client.write_api(write_options=options) as write_api:
        write_api.write(bucket="telegraf", record=records)
    requests.post(stack["influx"] + "/write", params={"db": stack["direct"]}, data="\n".join(records), timeout=10)
    wait_same(stack)


def test_influxdb_python_client_1x(stack: dict[str, Any]) -> None:
    # Given the 1.x client with the key as password, writing dict points with second precision
    api = urlsplit(stack["api"])
    body = [{"measurement": "temperature", "tags": {"room": "lab 2"}, "time": 1700000000,
             "fields": {"celsius": 21.5, "count": 3, "label": "ok", "on": True}}]
    ours = influxdb_v1.InfluxDBClient(api.hostname, api.port, "telegraf", stack["key"], "telegraf")
    assert ours.write_points(body, time_precision="s")
    assert ours.ping()  # the version header of /ping
    influx = urlsplit(stack["influx"])
    influxdb_v1.InfluxDBClient(influx.hostname, influx.port, database=stack["direct"]).write_points(
        body, time_precision="s")
    wait_same(stack)


def test_bad_credentials_and_bodies_get_influxdb_answers(stack: dict[str, Any]) -> None:
    wrong = influxdb_v1.InfluxDBClient(urlsplit(stack["api"]).hostname, urlsplit(stack["api"]).port, "u", "wrong", "db")
    with pytest.raises(influxdb_v1.exceptions.InfluxDBClientError) as refused:
        wrong.write_points([{"measurement": "m", "fields": {"v": 1}}])
    assert refused.value.code == 401
    # a chunked body past the limit (4 MiB by default) is 413 under gunicorn, and nothing is published
    chunks = (b"toolarge v=1\n" * 8192 for _ in range(50))
    response = requests.post(stack["api"] + "/write?db=x", data=chunks, timeout=60,
                             headers={"Authorization": f"Token {stack['key']}"})
    assert response.status_code == 413 and "error" in response.json()
    big = gzip.compress(b"toolarge v=1\n" * 400_000)
    response = requests.post(stack["api"] + "/api/v2/write?org=o&bucket=b", data=big, timeout=60,
                             headers={"Authorization": f"Token {stack['key']}", "Content-Encoding": "gzip"})
    assert response.status_code == 413 and response.json()["code"] == "request too large"
    # a small write after them is the only thing that lands
    assert requests.post(stack["api"] + "/write?db=x", data="fits v=1 1", timeout=10,
                         headers={"Authorization": f"Token {stack['key']}"}).status_code == 204
    wait_for(lambda: query(stack["influx"], stack["ours"], "SHOW MEASUREMENTS") != [], timeout=60, what="fits")
    assert [r["name"] for r in query(stack["influx"], stack["ours"], "SHOW MEASUREMENTS")] == ["fits"]


def readme_snippets() -> list[str]:
    """The Python blocks of the README's "Telegraf and InfluxDB clients" section."""
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = text.split("## Telegraf and InfluxDB clients", 1)[1].split("\n## ", 1)[0]
    return [block.split("```", 1)[0] for block in section.split("```python\n")[1:]]


def test_the_readme_snippets_work(stack: dict[str, Any]) -> None:
    # Given the README's client snippets, pointed at this API with this key
    snippets = readme_snippets()
    assert len(snippets) == 2
    api = urlsplit(stack["api"])
    code = "\n".join(snippets)
    code = code.replace('"http://localhost:8000", "es_..."', f'"{stack["api"]}", "{stack["key"]}"')
    code = code.replace('"localhost", 8000', f'"{api.hostname}", {api.port}')
    # When they run
    exec(compile(code, "README.md", "exec"), {})
    # Then their points land in the worker's database under their own measurements, tags and types
    wait_for(lambda: len(query(stack["influx"], stack["ours"], "SHOW MEASUREMENTS")) == 2, timeout=60,
             what="the README's points")
    rows = query(stack["influx"], stack["ours"], "SHOW FIELD KEYS")
    fields = {(r["_m"], r["fieldKey"]): r["fieldType"] for r in rows}
    assert fields == {("cpu", "usage_idle"): "float", ("cpu", "procs"): "integer",
                      ("temperature", "celsius"): "float", ("temperature", "on"): "boolean"}
    [cpu] = query(stack["influx"], stack["ours"], "SELECT * FROM cpu")
    assert cpu["host"] == "web 1"
