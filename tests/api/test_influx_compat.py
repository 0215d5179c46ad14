"""InfluxDB-compatible endpoints: the requests InfluxDB clients send, answered as InfluxDB answers them."""

from __future__ import annotations

import base64
import gzip

from flask.testing import FlaskClient

from .helpers import FakeSink

LINES = "cpu,host=a usage=0.5 1700000000000000000\nmem used=3i 1700000000000000000\n"


def test_v1_write_with_the_key_as_p_parameter(client: FlaskClient, fake_sink: FakeSink, health_key: str) -> None:
    # When a 1.x client writes with u/p query parameters, as the influxdb Python client and Telegraf can
    response = client.post(f"/write?db=telegraf&rp=autogen&precision=ns&u=any&p={health_key}", data=LINES)
    # Then InfluxDB's answer: 204 and its version header; each line is a metric event
    assert response.status_code == 204 and response.data == b""
    assert response.headers["X-Influxdb-Version"]
    assert [e["type"] for e in fake_sink.envelopes] == ["metric.cpu", "metric.mem"]
    assert fake_sink.envelopes[0]["data"]["tags"] == {"host": "a"}


def test_v1_write_with_basic_auth_or_token(client: FlaskClient, fake_sink: FakeSink, health_key: str) -> None:
    basic = base64.b64encode(f"telegraf:{health_key}".encode()).decode()
    assert client.post("/write?db=x", data=LINES, headers={"Authorization": f"Basic {basic}"}).status_code == 204
    assert client.post("/write?db=x", data=LINES, headers={"Authorization": f"Token {health_key}"}).status_code == 204
    assert len(fake_sink.submitted) == 4


def test_v2_write_with_token_and_precision(client: FlaskClient, fake_sink: FakeSink, health_key: str) -> None:
    response = client.post("/api/v2/write?org=o&bucket=b&precision=s", data="cpu v=1 1700000000",
                           headers={"Authorization": f"Token {health_key}"})
    assert response.status_code == 204
    assert fake_sink.envelopes[0]["data"]["timestamp_ns"] == 1700000000 * 10**9


def test_errors_have_the_shape_each_client_parses(client: FlaskClient, fake_sink: FakeSink, health_key: str) -> None:
    # 1.x: {"error": ...}; 2.x: {"code": ..., "message": ...}
    denied = client.post("/write?db=x&p=wrong", data=LINES)
    assert denied.status_code == 401 and denied.get_json() == {"error": "authorization failed"}
    denied2 = client.post("/api/v2/write?org=o&bucket=b", data=LINES, headers={"Authorization": "Token wrong"})
    assert denied2.status_code == 401 and denied2.get_json()["code"] == "unauthorized"
    no_db = client.post(f"/write?p={health_key}", data=LINES)
    assert no_db.status_code == 400 and no_db.get_json() == {"error": "database is required"}
    no_bucket = client.post("/api/v2/write?org=o", data=LINES, headers={"Authorization": f"Token {health_key}"})
    assert no_bucket.status_code == 400 and no_bucket.get_json()["code"] == "invalid"
    assert fake_sink.submitted == []


def test_partial_write_publishes_good_lines_and_names_bad_ones(
    client: FlaskClient, fake_sink: FakeSink, health_key: str
) -> None:
    body = "cpu v=1\ncpu v=²i\nmem v=2\n"
    v1 = client.post(f"/write?db=x&p={health_key}", data=body)
    assert v1.status_code == 400
    assert v1.get_json()["error"].startswith("partial write: unable to parse 'cpu v=²i'")
    assert "dropped=1" in v1.get_json()["error"] and v1.headers["X-Influxdb-Error"]
    v2 = client.post("/api/v2/write?org=o&bucket=b", data=body, headers={"Authorization": f"Token {health_key}"})
    assert v2.status_code == 400 and v2.get_json()["code"] == "invalid" and "line 2" in v2.get_json()["message"]
    assert [e["data"]["measurement"] for e in fake_sink.envelopes] == ["cpu", "mem", "cpu", "mem"]


def test_out_of_scope_is_403_and_nothing_is_published(client: FlaskClient, fake_sink: FakeSink, any_key: str,
                                                      keys_file) -> None:
    from emergency_api.keys import create_key

    cpu_only = create_key(keys_file, "cpu", ["metric.cpu"])[1]
    response = client.post(f"/write?db=x&p={cpu_only}", data="cpu v=1\nmem v=1\n")
    assert response.status_code == 403 and "metric.mem" in response.get_json()["error"]
    assert fake_sink.submitted == []


def test_gzip_bodies_are_accepted(client: FlaskClient, fake_sink: FakeSink, health_key: str) -> None:
    response = client.post("/api/v2/write?org=o&bucket=b", data=gzip.compress(LINES.encode()),
                           headers={"Authorization": f"Token {health_key}", "Content-Encoding": "gzip"})
    assert response.status_code == 204 and len(fake_sink.submitted) == 2


def test_ping_and_health_answer_as_influxdb(client: FlaskClient, fake_sink: FakeSink) -> None:
    ping = client.get("/ping")
    assert ping.status_code == 204 and ping.headers["X-Influxdb-Version"].startswith("1.")
    assert client.head("/ping").status_code == 204
    assert client.get("/ping?verbose=true").get_json()["version"]
    health = client.get("/health")
    assert health.status_code == 200 and health.get_json()["status"] == "pass"
    fake_sink.is_ready = False
    assert client.get("/health").get_json()["status"] == "fail"


def test_rate_limit_counts_each_write_once_and_answers_as_influxdb(keys_file, health_key: str) -> None:
    from emergency_api import ApiSettings, create_app

    client = create_app(ApiSettings(keys_file=keys_file, rate_limit="2/minute"), sink=FakeSink()).test_client()
    assert client.post(f"/write?db=x&p={health_key}", data="cpu v=1").status_code == 204
    assert client.post(f"/write?db=x&p={health_key}", data="cpu v=1").status_code == 204
    limited = client.post(f"/write?db=x&p={health_key}", data="cpu v=1")
    assert limited.status_code == 429 and "error" in limited.get_json() and int(limited.headers["Retry-After"]) >= 1


def test_create_database_is_answered_as_done_and_other_queries_refused(
    client: FlaskClient, fake_sink: FakeSink, health_key: str
) -> None:
    # Telegraf's influxdb output sends this at start unless skip_database_creation = true
    created = client.post(f"/query?p={health_key}", data={"q": 'CREATE DATABASE "telegraf"'})
    assert created.status_code == 200 and created.get_json() == {"results": [{"statement_id": 0}]}
    refused = client.post(f"/query?p={health_key}", data={"q": "SELECT * FROM cpu"})
    assert refused.status_code == 400 and "writes only" in refused.get_json()["error"]
    assert client.post("/query", data={"q": "CREATE DATABASE x"}).status_code == 401


def test_a_bad_line_with_control_characters_is_named_without_breaking_the_answer(
    client: FlaskClient, fake_sink: FakeSink, health_key: str
) -> None:
    # found by schemathesis: a carriage return inside a line once made the error header a 500
    response = client.post(f"/write?db=x&p={health_key}", data=b"bad\rline\x13\n")
    assert response.status_code == 400 and "unable to parse" in response.get_json()["error"]
    assert "\r" not in response.headers["X-Influxdb-Error"]
