"""The google_analytics worker against a local fake of the GA4 Measurement Protocol."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from sink_lib.errors import ConfigurationError
from sink_lib.settings import build_settings
from tests.privacy.recorder import Recorded, RecordingServer, Reply
from workers.errors import RejectEvents, RetryLater
from workers.google_analytics import GoogleAnalyticsSettings, GoogleAnalyticsWorker
from workers.runtime import WorkerMetrics

from .conftest import Script, event

SECRET = "test-secret"


def settings(server: RecordingServer | None = None, **overrides: Any) -> GoogleAnalyticsSettings:
    values: dict[str, Any] = {
        "measurement_id": "G-TEST123",
        "api_secret": SecretStr("mp-secret"),
        "endpoint": server.url if server else "https://www.google-analytics.com",
        "privacy_secret": SecretStr(SECRET),
        "timeout_s": 0.5,
    }
    values.update(overrides)
    return GoogleAnalyticsSettings(**values)


@pytest.fixture
def worker(ga4: RecordingServer) -> Iterator[GoogleAnalyticsWorker]:
    plugin = GoogleAnalyticsWorker(settings(ga4))
    plugin.open()
    yield plugin
    plugin.close()


def pseudonym(value: str) -> str:
    return hmac.new(SECRET.encode(), value.encode(), hashlib.sha256).hexdigest()


def derived_client_id(key: str, userid: str) -> str:
    """The README's derivation: HMAC-SHA256(key, userid), bytes 0-3 and 4-7 big-endian mod 10^10."""
    digest = hmac.new(key.encode(), userid.encode(), hashlib.sha256).digest()
    high, low = (int.from_bytes(digest[i:i + 4], "big") % 10**10 for i in (0, 4))
    return f"{high:010d}.{low:010d}"


def test_maps_a_page_view(worker: GoogleAnalyticsWorker, ga4: RecordingServer) -> None:
    # Given a page view of a known user
    moment = datetime.now(UTC) - timedelta(minutes=5)
    ev = event("traffic.page.viewed", {"url": "https://clowder.example/f/1", "resource_id": "f1"}, time=moment)
    # When it is delivered
    worker.deliver([ev])
    # Then GA4 gets a page_view under a client id derived from the pseudonymised user id
    (request,) = ga4.requests
    assert request.path == "/mp/collect"
    assert request.query == {"measurement_id": ["G-TEST123"], "api_secret": ["mp-secret"]}
    body = request.json()
    assert body["user_id"] == pseudonym("user-00001")
    assert body["client_id"] == derived_client_id(SECRET, pseudonym("user-00001"))
    assert re.fullmatch(r"\d{10}\.\d{10}", body["client_id"])
    assert body["events"] == [{
        "name": "page_view",
        "params": {"page_location": "https://clowder.example/f/1", "content_id": "f1", "event_id": ev.id},
        "timestamp_micros": int(moment.timestamp() * 1_000_000),
    }]


def test_client_id_from_data_wins_and_names_default_from_the_type(worker: GoogleAnalyticsWorker,
                                                                  ga4: RecordingServer) -> None:
    ev = event("storage.file.uploaded", {"file_id": "f9", "bytes": 12, "client_id": "123.456",
                                         "meta": {"kind": "csv", "tags": ["a", "b"]}, "public": True})
    worker.write([ev])
    body = ga4.requests[0].json()
    assert body["client_id"] == "123.456"
    assert body["events"][0]["name"] == "storage_file_uploaded"
    assert body["events"][0]["params"] == {"file_id": "f9", "bytes": 12, "meta_kind": "csv",
                                           "meta_tags": '["a","b"]', "public": "true", "event_id": ev.id}


def test_a_ga_cookie_value_becomes_its_client_id(worker: GoogleAnalyticsWorker, ga4: RecordingServer) -> None:
    worker.write([event(data={"url": "https://x/", "client_id": "GA1.1.1234567890.1700000000"})])
    assert ga4.requests[0].json()["client_id"] == "1234567890.1700000000"


def test_the_same_user_always_gets_the_same_client_id(ga4: RecordingServer) -> None:
    # Given two workers (a restart) with the same secret, and one without a secret
    first, second = GoogleAnalyticsWorker(settings(ga4)), GoogleAnalyticsWorker(settings(ga4))
    keyless = GoogleAnalyticsWorker(settings(ga4, privacy_secret=None, privacy_hash=[]))
    # Then a user id always maps to the README's derivation, keyed by the secret or else the measurement id
    assert first.mapper.client_id_for("u-1") == second.mapper.client_id_for("u-1") == derived_client_id(SECRET, "u-1")
    assert first.mapper.client_id_for("u-2") == derived_client_id(SECRET, "u-2") != derived_client_id(SECRET, "u-1")
    assert keyless.mapper.client_id_for("u-1") == derived_client_id("G-TEST123", "u-1")


def test_requests_hold_one_client_and_at_most_25_events(worker: GoogleAnalyticsWorker, ga4: RecordingServer,
                                                        script: Script) -> None:
    batch = [event(userid="user-aaaaa") for _ in range(60)] + [event(userid="user-bbbbb") for _ in range(3)]
    worker.write(batch)
    sizes = sorted(len(r.json()["events"]) for r in ga4.requests)
    assert sizes == [3, 10, 25, 25]
    assert sorted(e["params"]["event_id"] for e in script.accepted) == sorted(e.id for e in batch)


@pytest.mark.parametrize(("make", "why"), [
    (lambda: event(data={"x" * 41: 1}), "longer than 40"),
    (lambda: event(data={"ga_campaign": "c"}), "reserved"),
    (lambda: event(data={"2fast": "c"}), "starting with a letter"),
    (lambda: event(data={"note": "n" * 101}), "at most 100"),
    (lambda: event(data={"url": "https://x/" + "p" * 1001}), "at most 1000"),
    (lambda: event(data={f"p{i}": i for i in range(25)}), "at most 25"),
    (lambda: event(time=datetime.now(UTC) - timedelta(hours=73)), "backdated"),
    (lambda: event("activity.session-start.x" + "y" * 30, {"k": 1}), "longer than 40"),
], ids=["param-name-length", "reserved-param", "param-name-chars", "value-length", "page-location-length",
        "param-count", "too-old", "event-name-length"])
def test_events_over_the_limits_are_dead_lettered_and_the_rest_sent(worker: GoogleAnalyticsWorker,
                                                                     script: Script, make: Any, why: str) -> None:
    bad, good = make(), event()
    with pytest.raises(RejectEvents) as caught:
        worker.write([bad, good])
    assert set(caught.value.reasons) == {bad.id}
    assert why in caught.value.reasons[bad.id]
    assert [e["params"]["event_id"] for e in script.accepted] == [good.id]


def test_reserved_event_names_are_refused(ga4: RecordingServer, script: Script) -> None:
    plugin = GoogleAnalyticsWorker(settings(ga4, event_names={"activity.session.started": "session_start"}))
    bad = event("activity.session.started", {"k": 1})
    with pytest.raises(RejectEvents) as caught:
        plugin.write([bad])
    assert "reserved" in caught.value.reasons[bad.id]
    assert ga4.requests == []


def test_a_long_page_location_within_its_own_limit_is_sent(worker: GoogleAnalyticsWorker, script: Script) -> None:
    ev = event(data={"url": "https://x/" + "p" * 900})
    worker.write([ev])
    assert len(script.accepted[0]["params"]["page_location"]) == 910


def test_events_without_client_or_user_id_are_skipped_and_counted(worker: GoogleAnalyticsWorker,
                                                                   ga4: RecordingServer) -> None:
    worker.write([event(userid=None)])
    assert ga4.requests == []
    assert worker.skipped == 1


def test_skipped_and_invalid_counts_are_on_the_worker_metrics(worker: GoogleAnalyticsWorker,
                                                              script: Script) -> None:
    # Given the worker's metrics with the plugin's own counters included
    metrics = WorkerMetrics(worker.name)
    metrics.include(worker)
    # When a batch holds an event without any id, one over GA4's limits and a good one
    with pytest.raises(RejectEvents):
        worker.write([event(userid=None), event(data={"x" * 41: 1}), event()])
    # Then /metrics counts the skipped and the invalid one, and the good one was sent
    assert metrics.value("eventsink_google_analytics_events_skipped_total") == 1
    assert metrics.value("eventsink_google_analytics_events_invalid_total") == 1
    assert len(script.accepted) == 1


def test_user_properties_go_in_the_request_within_their_limits(ga4: RecordingServer, script: Script) -> None:
    plugin = GoogleAnalyticsWorker(settings(ga4, user_property_fields=["plan", "tier_description"]))
    ok = event(data={"url": "https://x/", "plan": "pro"})
    too_long = event(data={"url": "https://x/", "tier_description": "d" * 37})
    with pytest.raises(RejectEvents) as caught:
        plugin.write([ok, too_long])
    assert set(caught.value.reasons) == {too_long.id}
    body = ga4.requests[0].json()
    assert body["user_properties"] == {"plan": {"value": "pro"}}
    assert "plan" not in body["events"][0]["params"]


def fail_for(client_id: str, reply: Reply) -> Any:
    def respond(request: Recorded) -> Reply:
        return reply if request.json()["client_id"] == client_id else Script.default(request)
    return respond


@pytest.mark.parametrize("reply", [
    Reply(500, b"oops"), Reply(503, b""), Reply(429, b"", headers={"Retry-After": "12"}),
    Reply(204, b"", delay_s=2.0),
], ids=["500", "503", "429", "timeout"])
def test_transient_failures_retry_only_the_requests_that_failed(worker: GoogleAnalyticsWorker, script: Script,
                                                                reply: Reply) -> None:
    # Given GA4 fails the requests of one client only
    script.respond = fail_for("111.111", reply)
    failing = [event(data={"url": "https://x/", "client_id": "111.111"}) for _ in range(2)]
    fine = [event(data={"url": "https://x/", "client_id": "222.222"}) for _ in range(2)]
    # When a batch with both is written
    with pytest.raises(RetryLater) as caught:
        worker.write([failing[0], fine[0], failing[1], fine[1]])
    # Then only the failed request's events are retried; the other client's were taken
    assert caught.value.event_ids == {e.id for e in failing}
    assert sorted(e["params"]["event_id"] for e in script.accepted) == sorted(e.id for e in fine)
    if "Retry-After" in reply.headers:
        assert caught.value.delay_s == 12.0


def test_unreachable_endpoint_retries() -> None:
    plugin = GoogleAnalyticsWorker(settings(endpoint="http://127.0.0.1:9"))
    ev = event()
    with pytest.raises(RetryLater) as caught:
        plugin.write([ev])
    assert caught.value.event_ids == {ev.id}


def test_a_redelivered_event_is_not_sent_twice(worker: GoogleAnalyticsWorker, script: Script) -> None:
    batch = [event(), event()]
    worker.write(batch)
    worker.write(batch)
    assert len(script.accepted) == 2


def test_validate_mode_reports_ga_messages_and_records_nothing(ga4: RecordingServer, script: Script) -> None:
    # Given the validation server objects to the second event of a request
    def validate(request: Recorded) -> Reply:
        return Reply(200, {"validationMessages": [{
            "fieldPath": "events[1].params.content_id", "description": "Value is not valid.",
            "validationCode": "VALUE_INVALID"}]})
    script.respond = validate
    plugin = GoogleAnalyticsWorker(settings(ga4, validate_only=True))
    batch = [event(), event()]
    # When a batch is written in validate mode
    with pytest.raises(RejectEvents) as caught:
        plugin.write(batch)
    # Then only /debug/mp/collect was called and the flagged event carries GA's message
    assert {r.path for r in ga4.requests} == {"/debug/mp/collect"}
    assert set(caught.value.reasons) == {batch[1].id}
    assert "VALUE_INVALID" in caught.value.reasons[batch[1].id]
    assert script.accepted == []


def test_required_settings_and_secret_fail_with_the_variable_named(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("MEASUREMENT_ID", "API_SECRET", "PRIVACY_SECRET"):
        monkeypatch.delenv(f"EVENTSINK_GOOGLE_ANALYTICS_{var}", raising=False)
    with pytest.raises(ConfigurationError) as missing:
        build_settings(GoogleAnalyticsSettings)
    assert "EVENTSINK_GOOGLE_ANALYTICS_MEASUREMENT_ID" in str(missing.value)
    assert "EVENTSINK_GOOGLE_ANALYTICS_API_SECRET" in str(missing.value)
    with pytest.raises(ConfigurationError, match="EVENTSINK_GOOGLE_ANALYTICS_PRIVACY_SECRET"):
        GoogleAnalyticsWorker(settings(privacy_secret=None))


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTSINK_GOOGLE_ANALYTICS_MEASUREMENT_ID", "G-ENV")
    monkeypatch.setenv("EVENTSINK_GOOGLE_ANALYTICS_API_SECRET", "s")
    monkeypatch.setenv("EVENTSINK_GOOGLE_ANALYTICS_ENDPOINT", "https://region1.google-analytics.com/")
    monkeypatch.setenv("EVENTSINK_GOOGLE_ANALYTICS_VALIDATE", "true")
    loaded = GoogleAnalyticsSettings()
    assert loaded.collect_url == "https://region1.google-analytics.com/debug/mp/collect"
    monkeypatch.setenv("EVENTSINK_GOOGLE_ANALYTICS_VALIDATE", "false")
    assert GoogleAnalyticsSettings().collect_url == "https://region1.google-analytics.com/mp/collect"
