"""POST /api/v1/events: validation, batches, limits and the 202 promise."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from emergency_api import ApiSettings, create_app
from sink_lib.errors import PublishTimeout, QueueFullError, SpoolFullError

from .helpers import FakeSink, assert_problem

STATUS = {"type": "health.status", "data": {"service": "web", "state": "up"}}


def post(client: FlaskClient, key: str, body: object, **kwargs: object):
    return client.post("/api/v1/events", json=body, headers={"X-API-Key": key}, **kwargs)


def test_one_event_is_published_with_server_filled_attributes(
    client: FlaskClient, fake_sink: FakeSink, health_key: str
) -> None:
    # When a monitor posts one event with just type and data
    response = post(client, health_key, STATUS)
    # Then it is answered 202 with the id it was published under
    assert response.status_code == 202
    assert response.get_json()["accepted"] == 1
    [envelope] = fake_sink.envelopes
    assert response.get_json()["ids"] == [envelope["id"]]
    # And the server filled id, time, specversion and source (from the key's name)
    assert uuid.UUID(envelope["id"])
    assert envelope["specversion"] == "1.0" and envelope["time"].endswith("Z")
    assert envelope["source"] == "/api/monitor"
    assert envelope["data"] == STATUS["data"]


def test_client_attributes_are_kept_and_source_is_appended(
    client: FlaskClient, fake_sink: FakeSink, health_key: str
) -> None:
    day = (datetime.now(UTC) - timedelta(days=1)).date()
    event = {**STATUS, "id": "retry-safe-1", "time": f"{day}T10:00:00+02:00", "subject": "svc/web",
             "userid": "u1", "region": "us-east", "source": "/monitor/us-east", "specversion": "1.0",
             "datacontenttype": "application/json"}
    assert post(client, health_key, event).status_code == 202
    [envelope] = fake_sink.envelopes
    # a client's id is published scoped to its key, as the README gives the formula
    assert envelope["id"] == scoped_id(health_key, "retry-safe-1")
    assert envelope["time"] == f"{day}T08:00:00.000000Z"
    assert envelope["source"] == "/api/monitor/monitor/us-east"
    assert (envelope["subject"], envelope["userid"], envelope["region"]) == ("svc/web", "u1", "us-east")


CLIENT_ID_NAMESPACE = uuid.UUID("df507a6c-4351-5be6-97af-6387206e605a")


def scoped_id(key: str, client_id: str) -> str:
    """The published id of ``client_id`` sent with ``key`` (README: uuid5 of "<key id>/<client id>")."""
    key_id = key.split("_")[1]
    return str(uuid.uuid5(CLIENT_ID_NAMESPACE, f"{key_id}/{client_id}"))


def test_the_same_client_id_from_two_keys_becomes_two_published_ids(
    client: FlaskClient, fake_sink: FakeSink, health_key: str, any_key: str
) -> None:
    # Given a key that posts an event with its own id
    first = post(client, health_key, {**STATUS, "id": "shared-1"})
    # When another key posts the same id (to have the first dropped downstream as a duplicate)
    second = post(client, any_key, {**STATUS, "id": "shared-1"})
    # Then both are published under different ids, each told to its client
    assert first.status_code == second.status_code == 202
    published = [e["id"] for e in fake_sink.envelopes]
    assert published[0] != published[1]
    assert first.get_json()["ids"] == [published[0]] and second.get_json()["ids"] == [published[1]]
    assert "shared-1" not in published


def test_a_retry_with_the_same_key_and_id_publishes_the_same_id(
    client: FlaskClient, fake_sink: FakeSink, health_key: str
) -> None:
    # When a client retries a batch with the ids it chose
    batch = [{**STATUS, "id": "r-1"}, {**STATUS, "id": "r-2"}, STATUS]
    first = post(client, health_key, batch).get_json()["ids"]
    second = post(client, health_key, batch).get_json()["ids"]
    # Then its own ids map to the same published ids (destinations deduplicate the retry)
    assert first[:2] == second[:2] and first[0] != first[1]
    # And events without an id get a fresh random uuid4 each time
    assert first[2] != second[2] and uuid.UUID(first[2]).version == 4
    assert [e["id"] for e in fake_sink.envelopes] == first + second


def test_a_batch_is_published_in_order(client: FlaskClient, fake_sink: FakeSink, health_key: str) -> None:
    batch = [{**STATUS, "data": {"service": f"s{i}", "state": "up"}} for i in range(20)]
    response = post(client, health_key, batch)
    assert response.status_code == 202
    assert response.get_json()["ids"] == [p.id for p in fake_sink.submitted]
    assert [e["data"]["service"] for e in fake_sink.envelopes] == [f"s{i}" for i in range(20)]


def test_invalid_events_are_422_naming_index_and_field_and_the_batch_is_refused(
    client: FlaskClient, fake_sink: FakeSink, any_key: str
) -> None:
    # Given a batch with one good event, one with bad data and one with an unknown top-level field
    batch = [
        STATUS,
        {"type": "storage.file.uploaded", "data": {"file_id": "f1", "bytes": "ten"}},
        {**STATUS, "colour": "red"},
    ]
    response = post(client, any_key, batch)
    # Then the whole batch is refused, each problem named
    problem = assert_problem(response, 422)
    fields = {(e["index"], e["field"]) for e in problem["errors"]}
    assert (2, "colour") in fields
    assert fake_sink.submitted == []
    # And once the envelope is right, the data problem is named by its path
    problem = assert_problem(post(client, any_key, batch[:2]), 422)
    assert [(e["index"], e["field"]) for e in problem["errors"]] == [(1, "data.bytes")]
    assert fake_sink.submitted == []


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"data": {}}, "type"),
        ({"type": "health.status"}, "data"),
        ({"type": "Not A Type", "data": {}}, "type"),
        ({"type": "x.y", "data": [1, 2]}, "data"),
        ({"type": "x.y", "data": {}, "time": "yesterday"}, "time"),
        ({"type": "x.y", "data": {}, "id": 42}, "id"),
        ({"type": "x.y", "data": {}, "id": ""}, "id"),
        ({"type": "x.y", "data": {}, "specversion": "0.3"}, "specversion"),
        ({"type": "x.y", "data": {}, "source": "has spaces"}, "source"),
        ({"type": "x.y", "data": {}, "traceparent": "00-abc"}, "traceparent"),
    ],
)
def test_each_invalid_field_is_named(client: FlaskClient, any_key: str, event: dict, field: str) -> None:
    problem = assert_problem(post(client, any_key, event), 422)
    assert field in [e["field"] for e in problem["errors"]]
    assert all(e["index"] == 0 for e in problem["errors"])


def test_non_object_items_are_422(client: FlaskClient, any_key: str) -> None:
    problem = assert_problem(post(client, any_key, [STATUS, "nope"]), 422)
    assert problem["errors"][0]["index"] == 1
    assert_problem(post(client, any_key, []), 422)


def test_unknown_types_pass_unless_strict(keys_file, api_settings: ApiSettings, any_key: str) -> None:
    event = {"type": "billing.invoice.paid", "data": {"amount": 3}}
    lenient = create_app(api_settings, sink=FakeSink()).test_client()
    assert post(lenient, any_key, event).status_code == 202
    strict = create_app(api_settings, sink=FakeSink(strict=True)).test_client()
    problem = assert_problem(post(strict, any_key, event), 422)
    assert problem["errors"] == [{"index": 0, "field": "type", "message": "unknown event type 'billing.invoice.paid'"}]


def test_malformed_json_is_400(client: FlaskClient, health_key: str) -> None:
    response = client.post("/api/v1/events", data=b'{"type": "health.status", "data": {',
                           content_type="application/json", headers={"X-API-Key": health_key})
    assert "not valid JSON" in assert_problem(response, 400)["detail"]
    response = client.post("/api/v1/events", data=b"\xff\xfe", content_type="application/json",
                           headers={"X-API-Key": health_key})
    assert_problem(response, 400)


@pytest.mark.parametrize("depth", [300, 5000])
def test_deeply_nested_json_is_refused_not_a_crash(client: FlaskClient, fake_sink: FakeSink, any_key: str,
                                                   depth: int) -> None:
    body = '{"type": "x.y", "data": ' + '{"a": ' * depth + "1" + "}" * depth + "}"
    response = client.post("/api/v1/events", data=body, content_type="application/json",
                           headers={"X-API-Key": any_key})
    assert response.status_code in (400, 422)
    assert_problem(response, response.status_code)
    assert_problem(client.post("/api/v1/events", data="[" * depth + "]" * depth, content_type="application/json",
                               headers={"X-API-Key": any_key}), 400 if depth > 1000 else 422)
    assert fake_sink.submitted == []


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_a_wrong_content_type_is_415(client: FlaskClient, fake_sink: FakeSink, health_key: str,
                                     content_type: str | None) -> None:
    kwargs = {"content_type": content_type} if content_type else {}
    response = client.post("/api/v1/events", data=json.dumps(STATUS), headers={"X-API-Key": health_key}, **kwargs)
    assert_problem(response, 415)
    assert fake_sink.submitted == []


def test_cloudevents_content_types_are_accepted(client: FlaskClient, health_key: str) -> None:
    for content_type in ("application/cloudevents+json", "application/cloudevents-batch+json"):
        response = client.post("/api/v1/events", data=json.dumps(STATUS), content_type=content_type,
                               headers={"X-API-Key": health_key})
        assert response.status_code == 202


def test_a_body_over_the_limit_is_413(client: FlaskClient, fake_sink: FakeSink, health_key: str,
                                      api_settings: ApiSettings) -> None:
    big = {**STATUS, "data": {"service": "x" * api_settings.max_body_bytes, "state": "up"}}
    assert_problem(post(client, health_key, big), 413)
    assert fake_sink.submitted == []


def test_too_many_events_is_413(client: FlaskClient, fake_sink: FakeSink, health_key: str,
                                api_settings: ApiSettings) -> None:
    assert post(client, health_key, [STATUS] * api_settings.max_batch).status_code == 202
    problem = assert_problem(post(client, health_key, [STATUS] * (api_settings.max_batch + 1)), 413)
    assert problem["type"].endswith("/too-many-events")
    assert len(fake_sink.submitted) == api_settings.max_batch


@pytest.mark.parametrize("error", [PublishTimeout("slow"), SpoolFullError("full"), QueueFullError("full")])
def test_events_that_cannot_be_confirmed_or_spooled_get_503_with_retry_after(
    client: FlaskClient, fake_sink: FakeSink, health_key: str, error: Exception
) -> None:
    fake_sink.fail_with = error
    response = post(client, health_key, STATUS)
    assert_problem(response, 503)
    assert int(response.headers["Retry-After"]) >= 1


def test_unknown_routes_and_methods_are_problems(client: FlaskClient) -> None:
    assert_problem(client.get("/nothing/here"), 404)
    response = client.get("/api/v1/events")
    assert_problem(response, 405)
    assert "POST" in response.headers["Allow"]


def test_an_unexpected_error_is_a_bare_500(client: FlaskClient, fake_sink: FakeSink, health_key: str) -> None:
    fake_sink.fail_with = RuntimeError("secret internals /etc/passwd")
    response = post(client, health_key, STATUS)
    problem = assert_problem(response, 500)
    assert "secret" not in response.get_data(as_text=True)
    assert problem["detail"] == "The server could not handle the request."


@pytest.mark.parametrize(("field", "value"), [
    ("type", "health.status\n"),
    ("source", "/monitor/us-east\n"),
    ("source", "/monitor/../../other-key"),
    ("source", "/monitor/%2e%2e/other-key"),
    ("source", ".."),
    ("source", "/monitor/./x"),
])
def test_types_and_sources_must_match_in_full(
    client: FlaskClient, fake_sink: FakeSink, health_key: str, field: str, value: str
) -> None:
    # When a client sends a type or source that only a prefix of the pattern accepts, or a dot segment
    response = post(client, health_key, {**STATUS, field: value})
    # Then it is refused naming the field, and nothing is published
    body = assert_problem(response, 422)
    assert [e["field"] for e in body["errors"]] == [field]
    assert fake_sink.submitted == []


def test_dots_inside_a_source_segment_are_fine(client: FlaskClient, fake_sink: FakeSink, health_key: str) -> None:
    assert post(client, health_key, {**STATUS, "source": "/host/web.1..2/v1.0"}).status_code == 202
    assert fake_sink.envelopes[0]["source"] == "/api/monitor/host/web.1..2/v1.0"


@pytest.mark.parametrize("stamp", ["0999-12-31T23:59:59Z", "2000-01-01T00:00:00Z", "9999-12-31T23:59:59Z"])
def test_times_far_from_now_are_refused_naming_time(
    client: FlaskClient, fake_sink: FakeSink, health_key: str, stamp: str
) -> None:
    body = assert_problem(post(client, health_key, {**STATUS, "time": stamp}), 422)
    [error] = body["errors"]
    assert error["field"] == "time" and "EVENTSINK_API_MAX_TIME_" in error["message"]
    assert fake_sink.submitted == []


def test_times_within_the_configured_skew_are_accepted(keys_file: Path, health_key: str) -> None:
    # Given an API that takes events up to 400 days old and 2 hours ahead
    sink = FakeSink()
    settings = ApiSettings(keys_file=keys_file, max_time_past_s=400 * 86400, max_time_future_s=7200)
    client = create_app(settings, sink=sink).test_client()
    now = datetime.now(UTC)
    ok = [now - timedelta(days=399), now + timedelta(hours=1)]
    refused = [now - timedelta(days=401), now + timedelta(hours=3)]
    for moment in ok:
        assert post(client, health_key, {**STATUS, "time": moment.isoformat()}).status_code == 202
    for moment in refused:
        assert_problem(post(client, health_key, {**STATUS, "time": moment.isoformat()}), 422)
    assert len(sink.submitted) == 2
