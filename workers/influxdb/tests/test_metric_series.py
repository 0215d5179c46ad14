"""``metric.*`` events become exactly the series the agent would have written to InfluxDB directly.

The agent here is the official ``influxdb-client`` (its ``Point`` writes the line); the same line goes
once straight to the real InfluxDB and once through the parser, an event's JSON ``data`` and the
worker, into another database; both databases must then hold the same series, types and times.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sink_lib.event import Event, build_envelope
from sink_lib.lineprotocol import LineProtocolError, Point, parse_line
from workers.errors import RejectEvents
from workers.influxdb import InfluxDBSettings, InfluxDBWorker

from .conftest import Influx

pytestmark = pytest.mark.influxdb
influxdb_client = pytest.importorskip("influxdb_client")


def metric_event(line: str) -> Event:
    """The event the API publishes for ``line``, after a trip through JSON like on the broker."""
    point = parse_line(line)
    data = json.loads(json.dumps(point.to_data()))
    return Event.parse(build_envelope("metric.any", data, source="/api/test/write"))


def write_direct(influx: Influx, line: str) -> requests.Response:
    return requests.post(influx.url + "/write", params={"db": influx.database}, data=line.encode(), timeout=10)


def snapshot(influx: Influx) -> dict[str, Any]:
    """Everything a dashboard sees: rows (with time), field types and tag keys of every measurement."""
    return {
        "rows": sorted(map(repr, influx.query("SELECT * FROM /.*/"))),
        "fields": sorted(map(repr, influx.query("SHOW FIELD KEYS"))),
        "tags": sorted(map(repr, influx.query("SHOW TAG KEYS"))),
    }


class Pair:
    """Two fresh databases: one the agent writes to directly, one the worker writes to."""

    def __init__(self, url: str) -> None:
        self.direct = Influx(url, f"test_direct_{uuid.uuid4().hex[:10]}")
        self.ours = Influx(url, f"test_ours_{uuid.uuid4().hex[:10]}")
        requests.post(url + "/query", data={"q": f'CREATE DATABASE "{self.direct.database}"'}, timeout=30)
        self.worker = InfluxDBWorker(InfluxDBSettings(url=url, database=self.ours.database))
        self.worker.open()

    def close(self) -> None:
        self.worker.close()
        self.direct.drop()
        self.ours.drop()


@pytest.fixture
def pair(influxdb_url: str) -> Iterator[Pair]:
    databases = Pair(influxdb_url)
    yield databases
    databases.close()


def test_telegraf_like_lines_land_as_the_same_series(pair: Pair) -> None:
    # Given lines as Telegraf writes them: several measurements, escaped names, every type InfluxDB 1.6 has
    lines = [
        "cpu,cpu=cpu-total,host=web\\ 1 usage_idle=97.5,usage_user=1,n_cpus=4i 1700000000123456789",
        'disk\\,io,path=C:\\dir\\,x,mode=rw ok=true,msg="said \\"hi\\" \\\\o/",free=1.5e9 1700000000000000001',
        "net\\ if,if=eth0 bytes_recv=18446744073709i 1700000000000000002",
    ]
    # When each is written directly, and through event + worker
    for line in lines:
        assert write_direct(pair.direct, line).status_code == 204
    pair.worker.write([metric_event(line) for line in lines])
    # Then both databases hold the same series
    assert snapshot(pair.ours) == snapshot(pair.direct)
    assert {r["name"] for r in pair.ours.query("SHOW MEASUREMENTS")} == {"cpu", "disk,io", "net if"}


def test_a_line_without_timestamp_gets_the_event_time(pair: Pair) -> None:
    event = metric_event("mem used=1i")
    pair.worker.write([event])
    [row] = pair.ours.query("SELECT * FROM mem")
    assert row["time"] == int(event.time.timestamp() * 1_000_000) * 1000 and row["used"] == 1


def test_unsigned_fields_are_written_as_unsigned(pair: Pair) -> None:
    # InfluxDB 1.x supports them only when built with them; this server's answer decides
    supported = write_direct(pair.direct, "u v=1u 1").status_code == 204
    event = metric_event("u v=1u 1")
    if supported:
        pair.worker.write([event])
        assert snapshot(pair.ours) == snapshot(pair.direct)
    else:
        # the event is dead-lettered with InfluxDB's reason, as the agent's own write would fail
        with pytest.raises(RejectEvents) as refused:
            pair.worker.write([event])
        assert "invalid number" in refused.value.reasons[event.id]


_text = st.text(st.characters(codec="utf-8", exclude_characters="\n\r\x00"), min_size=1, max_size=6).filter(
    lambda s: s != "time" and not s.endswith("\\") and s.strip() == s)
_value = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-(2**63), 2**63 - 1),
                   st.booleans(), st.text(st.characters(codec="utf-8", exclude_characters="\n\r\x00"), max_size=8))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_text.filter(lambda s: not s.startswith("#")), st.dictionaries(_text, _text, max_size=3),
       st.dictionaries(_text, _value, min_size=1, max_size=4), st.integers(0, 2**62))
def test_any_point_an_official_client_writes_lands_the_same(
    influxdb_url: str, measurement: str, tags: dict[str, str], fields: dict[str, Any], ts: int
) -> None:
    point = influxdb_client.Point(measurement)
    for key, value in tags.items():
        point.tag(key, value)
    for key, value in fields.items():
        point.field(key, value)
    line = point.time(ts, influxdb_client.WritePrecision.NS).to_line_protocol()
    pair = Pair(influxdb_url)
    try:
        direct = write_direct(pair.direct, line)
        try:
            event = metric_event(line)
        except LineProtocolError:
            assert direct.status_code == 400, f"InfluxDB took {line!r}, the parser did not"
            return
        assert direct.status_code == 204, f"the parser took {line!r}, InfluxDB said {direct.text}"
        pair.worker.write([event])
        assert snapshot(pair.ours) == snapshot(pair.direct)
        assert Point.from_data(event.data) == parse_line(line)
    finally:
        pair.close()
