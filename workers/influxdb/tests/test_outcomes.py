"""How the worker turns InfluxDB's answers into outcomes (scripted transport, no server)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

import pytest

from workers.errors import RejectEvents, RetryLater
from workers.influxdb import InfluxDBSettings, InfluxDBWorker
from workers.influxdb.transport import V1Transport, WriteFailed

from .conftest import Influx, make_event


class ScriptedInflux:
    """Stands in for the transport: refuses lines that match ``bad`` and answers like InfluxDB 1.x.

    Like the real server, a batch with refused points is written except for those points ("partial
    write"); ``partial=False`` makes it refuse the whole batch instead (as 1.x does for conflicts
    inside one batch).
    """

    def __init__(self, bad: Callable[[str], bool] = lambda line: False, *, partial: bool = True) -> None:
        self.bad, self.partial = bad, partial
        self.written: dict[str, str] = {}
        self.requests = 0
        self.fail_with: WriteFailed | None = None

    def write(self, body: bytes) -> None:
        self.requests += 1
        if self.fail_with is not None:
            raise self.fail_with
        lines = body.decode().split("\n")
        refused = [line for line in lines if self.bad(line)]
        if refused and not self.partial:
            raise WriteFailed(400, "field type conflict")
        for line in lines:
            if line not in refused:
                self.written[re.search(r'id="([^"]+)"', line)[1]] = line  # type: ignore[index]
        if refused:
            raise WriteFailed(400, f"partial write: unable to parse '{refused[0]}': bad dropped={len(refused)}")

    def close(self) -> None:
        pass


def worker_with(transport: object) -> InfluxDBWorker:
    worker = InfluxDBWorker(InfluxDBSettings())
    worker.transport = transport  # type: ignore[assignment]
    return worker


def pings(n: int) -> list:
    return [make_event(data={"target": f"t{i % 3}", "loss_pct": float(i), "ok": True}) for i in range(n)]


@pytest.mark.parametrize("partial", [True, False])
def test_bisecting_rejects_exactly_the_refused_events_and_writes_the_rest(partial: bool) -> None:
    # Given a batch where InfluxDB refuses three points
    batch = pings(100)
    bad_ids = {batch[7].id, batch[8].id, batch[93].id}
    influx = ScriptedInflux(lambda line: any(i in line for i in bad_ids), partial=partial)
    # When the worker writes it
    with pytest.raises(RejectEvents) as caught:
        worker_with(influx).write(batch)
    # Then exactly those are rejected, with the server's reason, and every other event is written
    assert set(caught.value.reasons) == bad_ids
    assert all("InfluxDB refused the point" in r for r in caught.value.reasons.values())
    assert set(influx.written) == {e.id for e in batch} - bad_ids
    assert influx.requests < 40  # bisecting, not one request per event


def test_a_partial_write_naming_every_dropped_point_needs_no_bisecting() -> None:
    batch = [make_event("custom.m", {"x": 1}) for _ in range(50)]
    batch[10] = make_event("custom.m", {"x": "text"})
    message = ('partial write: field type conflict: input field "x" on measurement "custom" is type string, '
               "already exists as type float dropped=1")

    class OneConflict(ScriptedInflux):
        def write(self, body: bytes) -> None:
            self.requests += 1
            raise WriteFailed(400, message)

    influx = OneConflict()
    with pytest.raises(RejectEvents) as caught:
        worker_with(influx).write(batch)
    assert caught.value.reasons == {batch[10].id: "InfluxDB refused the point: " + message}
    assert influx.requests == 1


@pytest.mark.parametrize(
    ("failure", "delay"),
    [
        (WriteFailed(None, "connection refused"), None),
        (WriteFailed(503, "service unavailable"), None),
        (WriteFailed(500, "timeout"), None),
        (WriteFailed(429, "too many requests", retry_after=7.0), 7.0),
    ],
)
def test_outages_and_throttling_mean_retry_later(failure: WriteFailed, delay: float | None) -> None:
    influx = ScriptedInflux()
    influx.fail_with = failure
    with pytest.raises(RetryLater) as caught:
        worker_with(influx).write(pings(3))
    assert caught.value.event_ids is None and caught.value.delay_s == delay


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_retry_later_with_a_loud_log(status: int, caplog: pytest.LogCaptureFixture) -> None:
    influx = ScriptedInflux()
    influx.fail_with = WriteFailed(status, "authorization failed")
    with caplog.at_level(logging.ERROR), pytest.raises(RetryLater):
        worker_with(influx).write(pings(3))
    assert "credentials" in caplog.text and "EVENTSINK_INFLUXDB_" in caplog.text


def test_a_missing_database_is_created_and_the_batch_written(monkeypatch: pytest.MonkeyPatch) -> None:
    transport = V1Transport(InfluxDBSettings())
    answers = [WriteFailed(404, 'database not found: "eventsink"'), None]
    sent: list[bytes] = []

    def write(body: bytes) -> None:
        answer = answers.pop(0)
        if answer is not None:
            raise answer
        sent.append(body)

    created: list[bool] = []
    monkeypatch.setattr(transport, "write", write)
    monkeypatch.setattr(transport, "create_database", lambda: created.append(True))
    worker_with(transport).write(pings(2))
    assert created == [True] and len(sent) == 1 and sent[0].count(b"\n") == 1


def test_writing_before_open_is_retried_later() -> None:
    with pytest.raises(RetryLater):
        InfluxDBWorker(InfluxDBSettings()).write(pings(1))


def test_events_the_mapper_cannot_handle_are_rejected_alone() -> None:
    class Broken(InfluxDBWorker):
        def make_mapper(self, settings):
            mapper = super().make_mapper(settings)
            original = mapper.point

            def point(event):
                if event.data.get("target") == "t1":
                    raise ValueError("no")
                return original(event)

            mapper.point = point  # type: ignore[method-assign]
            return mapper

    influx = ScriptedInflux()
    worker = Broken(InfluxDBSettings())
    worker.transport = influx  # type: ignore[assignment]
    batch = pings(6)
    with pytest.raises(RejectEvents) as caught:
        worker.write(batch)
    assert set(caught.value.reasons) == {batch[1].id, batch[4].id}
    assert set(influx.written) == {e.id for e in batch} - {batch[1].id, batch[4].id}


def test_a_user_who_may_not_create_the_database_can_still_start(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(self: V1Transport) -> None:
        raise WriteFailed(403, "requires admin privilege")

    monkeypatch.setattr(V1Transport, "create_database", refuse)
    worker = InfluxDBWorker(InfluxDBSettings(database="metrics"))
    with caplog.at_level(logging.ERROR):
        worker.open()
    worker.close()
    assert "cannot create InfluxDB database 'metrics'" in caplog.text
    assert "EVENTSINK_INFLUXDB_CREATE_DATABASE" in caplog.text


def test_a_server_error_while_creating_the_database_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(self: V1Transport) -> None:
        raise WriteFailed(503, "starting up")

    monkeypatch.setattr(V1Transport, "create_database", fail)
    worker = InfluxDBWorker(InfluxDBSettings())
    with pytest.raises(RetryLater):
        worker.open()
    worker.close()


@pytest.mark.influxdb
def test_an_unknown_retention_policy_is_retried_with_a_loud_log(
    influx: Influx, caplog: pytest.LogCaptureFixture
) -> None:
    worker = InfluxDBWorker(InfluxDBSettings(url=influx.url, database=influx.database, retention_policy="no_such_rp"))
    worker.open()
    try:
        with caplog.at_level(logging.ERROR), pytest.raises(RetryLater):
            worker.write(pings(1))
    finally:
        worker.close()
    assert "EVENTSINK_INFLUXDB_RETENTION_POLICY" in caplog.text


def test_secrets_never_reach_the_logs(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def unauthorized(*_args: object) -> None:
        raise WriteFailed(401, "authorization failed")

    monkeypatch.setattr(V1Transport, "create_database", unauthorized)
    monkeypatch.setattr(V1Transport, "write", unauthorized)
    settings = InfluxDBSettings(url="http://admin:url-secret@127.0.0.1:8086", username="u", password="pw-secret")
    worker = InfluxDBWorker(settings)
    with caplog.at_level(logging.DEBUG):
        worker.open()
        with pytest.raises(RetryLater):
            worker.write(pings(1))
    worker.close()
    assert "127.0.0.1:8086" in caplog.text
    assert "url-secret" not in caplog.text and "pw-secret" not in caplog.text


@pytest.mark.parametrize("api_version", [1, 2])
def test_an_unreachable_server_is_reported_without_url_credentials(api_version: int) -> None:
    settings = InfluxDBSettings(url="http://admin:url-secret@127.0.0.1:9", api_version=api_version, org="o",
                                bucket="b", token="t", create_database=False, timeout_s=2)
    worker = InfluxDBWorker(settings)
    worker.open()
    try:
        with pytest.raises(RetryLater) as caught:
            worker.write(pings(1))
    finally:
        worker.close()
    assert "unreachable" in caught.value.reason and "url-secret" not in caught.value.reason
