"""POST /api/v1/write: line protocol in, one metric.<measurement> event per line out."""

from __future__ import annotations

from flask.testing import FlaskClient

from emergency_api import ApiSettings

from .helpers import FakeSink, assert_problem


def write(client: FlaskClient, key: str, body: str, query: str = "", content_type: str = "text/plain; charset=utf-8"):
    return client.post("/api/v1/write" + query, data=body.encode(), content_type=content_type,
                       headers={"Authorization": f"Bearer {key}"})


def test_each_line_becomes_an_event(client: FlaskClient, fake_sink: FakeSink, health_key: str) -> None:
    # When Telegraf pushes two lines
    response = write(client, health_key, "cpu,host=a usage=0.5,n=3i 1700000000123456789\nDisk.IO ops=2i\n")
    # Then both are published and the answer is InfluxDB's 204
    assert response.status_code == 204 and response.data == b""
    first, second = fake_sink.envelopes
    assert first["type"] == "metric.cpu"
    assert first["data"] == {"measurement": "cpu", "tags": {"host": "a"}, "fields": {"usage": 0.5, "n": 3},
                             "field_types": {"usage": "float", "n": "integer"},
                             "timestamp_ns": 1700000000123456789}
    assert first["time"] == "2023-11-14T22:13:20.123456Z"
    assert first["source"] == "/api/monitor/write"
    assert second["type"] == "metric.disk_io"
    assert second["data"]["measurement"] == "Disk.IO" and "timestamp_ns" not in second["data"]


def test_precision_is_honoured(client: FlaskClient, fake_sink: FakeSink, health_key: str) -> None:
    assert write(client, health_key, "cpu v=1 1700000000", "?precision=s").status_code == 204
    assert fake_sink.envelopes[0]["time"] == "2023-11-14T22:13:20.000000Z"
    assert_problem(write(client, health_key, "cpu v=1 1", "?precision=fortnight"), 400)


def test_a_resent_line_keeps_its_id(client: FlaskClient, fake_sink: FakeSink, health_key: str) -> None:
    body = "cpu v=1 1700000000000000000\nmem v=1"
    write(client, health_key, body)
    write(client, health_key, body)
    ids = [p.id for p in fake_sink.submitted]
    assert ids[0] == ids[2]  # timestamped: deduplicated downstream
    assert ids[1] != ids[3]  # no timestamp: each write is a new point


def test_bad_lines_are_named_and_good_lines_still_published(
    client: FlaskClient, fake_sink: FakeSink, health_key: str
) -> None:
    # Given a body where lines 2 and 4 are garbage
    body = "cpu v=1\ncpu v=\nmem used=3i\n\x00\x01 garbage"
    response = write(client, health_key, body)
    # Then the answer is 400 naming those lines, and the good ones were published (partial write)
    problem = assert_problem(response, 400)
    assert [e["line"] for e in problem["errors"]] == [2, 4]
    assert problem["accepted"] == 2
    assert [e["data"]["measurement"] for e in fake_sink.envelopes] == ["cpu", "mem"]


def test_only_garbage_publishes_nothing(client: FlaskClient, fake_sink: FakeSink, health_key: str) -> None:
    problem = assert_problem(write(client, health_key, "{\"json\": true}\n<html>"), 400)
    assert problem["accepted"] == 0 and len(problem["errors"]) == 2
    assert_problem(write(client, health_key, "\n\n# only a comment\n"), 400)
    assert_problem(write(client, health_key, ""), 400)
    assert fake_sink.submitted == []


def test_non_utf8_and_wrong_content_type(client: FlaskClient, fake_sink: FakeSink, health_key: str) -> None:
    response = client.post("/api/v1/write", data=b"cpu v=1\xff", content_type="text/plain",
                           headers={"X-API-Key": health_key})
    assert_problem(response, 400)
    assert_problem(write(client, health_key, "cpu v=1", content_type="application/json"), 415)
    assert fake_sink.submitted == []


def test_too_many_lines_is_413(client: FlaskClient, fake_sink: FakeSink, health_key: str,
                               api_settings: ApiSettings) -> None:
    body = "\n".join(f"cpu v={i}" for i in range(api_settings.max_lines + 1))
    assert_problem(write(client, health_key, body), 413)
    assert fake_sink.submitted == []


def test_invalid_lines_in_strict_mode_are_named(api_settings: ApiSettings, health_key: str) -> None:
    from emergency_api import create_app

    client = create_app(api_settings, sink=FakeSink(strict=True)).test_client()
    problem = assert_problem(write(client, health_key, "cpu v=1"), 400)
    assert problem["errors"] == [{"line": 1, "message": "type: unknown event type 'metric.cpu'"}]
