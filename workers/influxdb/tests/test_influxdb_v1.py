"""The 1.x path against the real InfluxDB: points land queryable, idempotently, conflicts rejected alone."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from workers.errors import RejectEvents, RetryLater
from workers.influxdb import InfluxDBSettings, InfluxDBWorker
from workers.influxdb.mapping import point_time_ns

from .conftest import Influx, make_event

pytestmark = pytest.mark.influxdb


@pytest.fixture
def worker(influx: Influx) -> Iterator[InfluxDBWorker]:
    plugin = InfluxDBWorker(InfluxDBSettings(url=influx.url, database=influx.database))
    plugin.open()
    yield plugin
    plugin.close()


def test_open_creates_the_database_and_points_are_queryable_with_tags_fields_and_time(
    worker: InfluxDBWorker, influx: Influx
) -> None:
    # Given a storage event and a health check
    upload = make_event("storage.file.uploaded", {"file_id": "f1", "dataset_id": "d1", "bytes": 2048},
                        source="/clowder/web", region="eu", userid="u-7")
    check = make_event(data={"target": "db1", "rtt_avg_ms": 1.5, "loss_pct": 0.0, "ok": True})
    # When they are written
    worker.write([upload, check])
    # Then InfluxQL finds them with the documented tags, fields and the event time
    [row] = influx.query("SELECT * FROM storage")
    assert row["type"] == "storage.file.uploaded" and row["source"] == "/clowder/web" and row["region"] == "eu"
    assert row["bytes"] == 2048 and row["file_id"] == "f1" and row["id"] == upload.id
    assert "u-7" not in row.values()
    event_ns = int(upload.time.timestamp() * 1e6) * 1000
    assert abs(row["time"] - event_ns) < 1_000_000
    [ping] = influx.query("SELECT * FROM health WHERE target = 'db1'")
    assert ping["ok"] is True and ping["rtt_avg_ms"] == 1.5
    tag_keys = {r["tagKey"] for r in influx.query("SHOW TAG KEYS FROM storage")}
    assert tag_keys == {"type", "source", "region"}


def test_writing_the_same_batch_twice_yields_one_point_per_event(worker: InfluxDBWorker, influx: Influx) -> None:
    # Given 200 events of one series sharing their timestamp to the microsecond (ids fixed, so that
    # the test is deterministic: random ids of one series and millisecond may collide, see the README)
    first = make_event(data={"target": "same", "loss_pct": 0.0, "ok": True}, id="event-0")
    batch = [first] + [
        make_event(data={"target": "same", "loss_pct": float(i), "ok": True}, time=first.time, id=f"event-{i}")
        for i in range(1, 200)
    ]
    assert len({point_time_ns(e.time, e.id, 6) for e in batch}) == 200
    # When the batch is written twice (a redelivery)
    worker.write(batch)
    worker.write(batch)
    # Then each event is one point
    assert influx.count("health") == 200
    ids = {r["id"] for r in influx.query("SELECT id FROM health")}
    assert ids == {e.id for e in batch}


def test_a_field_type_conflict_rejects_exactly_the_bad_event_and_writes_the_others(
    worker: InfluxDBWorker, influx: Influx
) -> None:
    # Given a measurement whose field `amount` is a float
    worker.write([make_event("billing.paid", {"amount": 1.5})])
    # When a batch carries one event where it is a string
    batch = [make_event("billing.paid", {"amount": float(i)}) for i in range(10)]
    bad = make_event("billing.paid", {"amount": "ten"})
    batch.insert(4, bad)
    with pytest.raises(RejectEvents) as caught:
        worker.write(batch)
    # Then that event alone is rejected, with InfluxDB's reason, and the rest is stored
    assert list(caught.value.reasons) == [bad.id]
    assert "field type conflict" in caught.value.reasons[bad.id]
    assert influx.count("billing") == 11


def test_conflicts_within_one_batch_are_found_by_bisecting(worker: InfluxDBWorker, influx: Influx) -> None:
    # Given a new field whose first values in the batch disagree (InfluxDB refuses the whole batch)
    batch = [make_event("survey.answer", {"score": float(i)}) for i in range(20)]
    bad = [make_event("survey.answer", {"score": "high"}), make_event("survey.answer", {"score": True})]
    batch[3:3] = bad[:1]
    batch.append(bad[1])
    with pytest.raises(RejectEvents) as caught:
        worker.write(batch)
    assert set(caught.value.reasons) == {e.id for e in bad}
    assert influx.count("survey") == 20


def test_a_server_that_is_down_means_retry_later(influx: Influx) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    # at start (creating the database)
    starting = InfluxDBWorker(InfluxDBSettings(url=url, database=influx.database, timeout_s=2))
    with pytest.raises(RetryLater):
        starting.open()
    starting.close()
    # and when writing
    running = InfluxDBWorker(InfluxDBSettings(url=url, database=influx.database, create_database=False))
    running.open()
    with pytest.raises(RetryLater, match="unreachable"):
        running.write([make_event()])
    running.close()


def test_a_database_dropped_while_running_is_created_again(worker: InfluxDBWorker, influx: Influx) -> None:
    influx.drop()
    worker.write([make_event()])
    assert influx.count("health") == 1
