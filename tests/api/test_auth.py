"""Every /api/ route needs a valid, unrevoked key whose scopes cover the posted types."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from emergency_api.keys import revoke_key

from .helpers import FakeSink, assert_problem

EVENT = {"type": "health.status", "data": {"service": "web", "state": "up"}}
ROUTES = [
    ("/api/v1/events", {"json": EVENT}),
    ("/api/v1/write", {"data": "cpu usage=1", "content_type": "text/plain"}),
]


@pytest.mark.parametrize(("route", "body"), ROUTES)
def test_no_key_is_401_with_a_challenge(client: FlaskClient, fake_sink: FakeSink, route: str, body: dict) -> None:
    response = client.post(route, **body)
    problem = assert_problem(response, 401)
    assert "X-API-Key" in problem["detail"]
    assert "Bearer" in response.headers["WWW-Authenticate"]
    assert fake_sink.submitted == []


@pytest.mark.parametrize(("route", "body"), ROUTES)
@pytest.mark.parametrize("key", ["wrong", "es_000000000000_" + "x" * 43, ""])
def test_a_wrong_key_is_401(client: FlaskClient, fake_sink: FakeSink, health_key: str, route: str, body: dict,
                            key: str) -> None:
    response = client.post(route, headers={"X-API-Key": key}, **body)
    assert_problem(response, 401)
    assert fake_sink.submitted == []


def test_a_key_is_accepted_in_either_header(client: FlaskClient, health_key: str) -> None:
    assert client.post("/api/v1/events", json=EVENT, headers={"X-API-Key": health_key}).status_code == 202
    assert client.post("/api/v1/events", json=EVENT,
                       headers={"Authorization": f"Bearer {health_key}"}).status_code == 202
    assert_problem(client.post("/api/v1/events", json=EVENT, headers={"Authorization": f"Basic {health_key}"}), 401)


def test_a_revoked_key_is_refused_without_restart(client: FlaskClient, fake_sink: FakeSink, keys_file: Path,
                                                  health_key: str) -> None:
    # Given a key that works
    assert client.post("/api/v1/events", json=EVENT, headers={"X-API-Key": health_key}).status_code == 202
    # When it is revoked in the keys file
    revoke_key(keys_file, "monitor")
    # Then the running app refuses it
    problem = assert_problem(client.post("/api/v1/events", json=EVENT, headers={"X-API-Key": health_key}), 401)
    assert "revoked" in problem["detail"]
    assert len(fake_sink.submitted) == 1


def test_a_type_outside_the_scopes_is_403_and_nothing_is_published(
    client: FlaskClient, fake_sink: FakeSink, health_key: str
) -> None:
    batch = [EVENT, {"type": "storage.file.uploaded", "data": {"file_id": "f", "bytes": 1}}]
    problem = assert_problem(client.post("/api/v1/events", json=batch, headers={"X-API-Key": health_key}), 403)
    assert problem["errors"] == [{"index": 1, "field": "type", "message": problem["errors"][0]["message"]}]
    assert "storage.file.uploaded" in problem["errors"][0]["message"]
    assert fake_sink.submitted == []


def test_a_line_outside_the_scopes_is_403(client: FlaskClient, fake_sink: FakeSink, keys_file: Path) -> None:
    from emergency_api.keys import create_key

    _, key = create_key(keys_file, "cpu-only", ["metric.cpu"])
    response = client.post("/api/v1/write", data="cpu usage=1\nmem used=2i", content_type="text/plain",
                           headers={"X-API-Key": key})
    problem = assert_problem(response, 403)
    assert [e["line"] for e in problem["errors"]] == [2]
    assert fake_sink.submitted == []


def test_health_metrics_and_docs_need_no_key(client: FlaskClient) -> None:
    for route in ("/healthz", "/readyz", "/metrics", "/apispec.json"):
        assert client.get(route).status_code == 200, route


def test_a_corrupted_keys_file_fails_closed_and_recovers(client: FlaskClient, fake_sink: FakeSink,
                                                         keys_file: Path, health_key: str) -> None:
    good = keys_file.read_text()
    # When an operator leaves a broken keys file behind
    keys_file.write_text("{not json")
    # Then no key is accepted (503, not 500), rather than keys that may have been revoked
    response = client.post("/api/v1/events", json=EVENT, headers={"X-API-Key": health_key})
    assert_problem(response, 503)
    assert fake_sink.submitted == []
    # And once it is repaired the key works again
    keys_file.write_text(good)
    assert client.post("/api/v1/events", json=EVENT, headers={"X-API-Key": health_key}).status_code == 202
