"""Per-key rate limits, health endpoints and Prometheus metrics."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from emergency_api import ApiSettings, create_app
from emergency_api.keys import create_key
from sink_lib.errors import ConfigurationError

from .helpers import FakeSink, assert_problem

STATUS = {"type": "health.status", "data": {"service": "web", "state": "up"}}


def test_a_key_over_its_rate_limit_gets_429_with_retry_after_and_other_keys_do_not(keys_file: Path) -> None:
    # Given a limit of 3 requests a minute per key
    _, first = create_key(keys_file, "first", ["*"])
    _, second = create_key(keys_file, "second", ["*"])
    sink = FakeSink()
    client = create_app(ApiSettings(keys_file=keys_file, rate_limit="3/minute"), sink=sink).test_client()
    statuses = [client.post("/api/v1/events", json=STATUS, headers={"X-API-Key": first}).status_code
                for _ in range(3)]
    assert statuses == [202, 202, 202]
    # When the key posts once more, on either route
    response = client.post("/api/v1/write", data="cpu v=1", content_type="text/plain",
                           headers={"X-API-Key": first})
    # Then it is refused with a Retry-After within the window, and nothing more is published
    assert_problem(response, 429)
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert len(sink.submitted) == 3
    # And another key is not affected
    assert client.post("/api/v1/events", json=STATUS, headers={"X-API-Key": second}).status_code == 202


def test_requests_without_a_valid_key_are_limited_by_address(keys_file: Path) -> None:
    client = create_app(ApiSettings(keys_file=keys_file, rate_limit="2/minute"), sink=FakeSink()).test_client()
    statuses = [client.post("/api/v1/events", json=STATUS, headers={"X-API-Key": "guess"}).status_code
                for _ in range(3)]
    assert statuses == [401, 401, 429]


def test_rate_limits_can_be_turned_off(keys_file: Path, any_key: str) -> None:
    settings = ApiSettings(keys_file=keys_file, rate_limit="1/minute", rate_limit_enabled=False)
    client = create_app(settings, sink=FakeSink()).test_client()
    assert {client.post("/api/v1/events", json=STATUS, headers={"X-API-Key": any_key}).status_code
            for _ in range(3)} == {202}


def test_readyz_follows_the_sink(client: FlaskClient, fake_sink: FakeSink) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    fake_sink.is_ready = False
    response = client.get("/readyz")
    assert_problem(response, 503)
    assert client.get("/healthz").status_code == 200


def _sample(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        named = line.startswith(name + "{") or line.startswith(name + " ")
        if named and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_requests_accepted_and_rejected(client: FlaskClient, health_key: str) -> None:
    before = client.get("/metrics").get_data(as_text=True)
    client.post("/api/v1/events", json=[STATUS, STATUS], headers={"X-API-Key": health_key})
    client.post("/api/v1/events", json=STATUS)
    after = client.get("/metrics").get_data(as_text=True)

    def delta(name: str, **labels: str) -> float:
        return _sample(after, name, **labels) - _sample(before, name, **labels)

    assert delta("eventsink_api_events_accepted_total", endpoint="events") == 2
    assert delta("eventsink_api_requests_rejected_total", reason="unauthorized") == 1
    assert delta("eventsink_api_requests_total", route="/api/v1/events", status="202") == 1
    assert delta("eventsink_api_request_duration_seconds_count", route="/api/v1/events") == 2
    assert "eventsink_api_events_spooled_total" in after


def test_a_bad_rate_limit_storage_is_a_startup_error_naming_the_variable(keys_file: Path) -> None:
    settings = ApiSettings(keys_file=keys_file, rate_limit_storage_uri="nosuch://host")
    with pytest.raises(ConfigurationError, match="EVENTSINK_API_RATE_LIMIT_STORAGE_URI"):
        create_app(settings, sink=FakeSink())


def test_limits_can_be_shared_through_redis(keys_file: Path) -> None:
    # Given two app processes' worth of limiters sharing one Redis (scripts/services.sh installs and starts it)
    from tests.support import not_here, port_open

    try:
        import redis  # noqa: F401
    except ImportError:
        not_here("the redis client (eventsink[api-redis]) is not installed")
    if not port_open("127.0.0.1", 6379):
        not_here("no Redis server on localhost:6379 (scripts/services.sh starts one)")
    _, key = create_key(keys_file, f"shared{uuid.uuid4().hex[:6]}", ["*"])
    settings = ApiSettings(keys_file=keys_file, rate_limit="3/minute",
                           rate_limit_storage_uri="redis://127.0.0.1:6379")
    first = create_app(settings, sink=FakeSink()).test_client()
    second = create_app(settings, sink=FakeSink()).test_client()
    statuses = [client.post("/api/v1/events", json=STATUS, headers={"X-API-Key": key}).status_code
                for client in (first, second, first, second)]
    # Then the limit counts across both
    assert statuses == [202, 202, 202, 429]


def test_metrics_labels_come_from_fixed_sets_whatever_the_client_sends(client: FlaskClient) -> None:
    # Given requests with invented methods on known and unknown routes (no key needed for /metrics)
    for i in range(30):
        client.open("/metrics", method=f"X{i}EVIL")
        client.open(f"/no/such/route/{i}", method=f"PROBE{i}")
    text = client.get("/metrics").get_data(as_text=True)
    # Then no label value a client chose appears: methods and routes are collapsed into fixed values
    assert "EVIL" not in text and "PROBE" not in text and "/no/such/route" not in text
    methods = {line.split('method="', 1)[1].split('"', 1)[0]
               for line in text.splitlines() if line.startswith("eventsink_api_requests_total{")}
    assert methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}
    # (a method a route does not take is answered 405 without matching a rule: "unmatched")
    assert _sample(text, "eventsink_api_requests_total", route="unmatched", method="other", status="405") >= 30
    assert _sample(text, "eventsink_api_requests_total", route="unmatched", method="other", status="404") >= 30
