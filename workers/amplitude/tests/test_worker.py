"""The amplitude worker against a local fake of Amplitude's HTTP V2 API."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr

from sink_lib.errors import ConfigurationError
from sink_lib.settings import build_settings
from tests.privacy.recorder import Recorded, RecordingServer, Reply
from workers.amplitude import AmplitudeSettings, AmplitudeWorker
from workers.errors import RejectEvents, RetryLater
from workers.runtime import WorkerMetrics

from .conftest import Script, event, ingested

SECRET = "test-secret"


def settings(server: RecordingServer | None = None, **overrides: Any) -> AmplitudeSettings:
    values: dict[str, Any] = {
        "api_key": SecretStr("test-api-key"),
        "server_url": f"{server.url}/2/httpapi" if server else None,
        "privacy_secret": SecretStr(SECRET),
        "timeout_s": 0.5,
    }
    values.update(overrides)
    return AmplitudeSettings(**values)


@pytest.fixture
def worker(amplitude: RecordingServer) -> Iterator[AmplitudeWorker]:
    plugin = AmplitudeWorker(settings(amplitude))
    plugin.open()
    yield plugin
    plugin.close()


def test_maps_an_event_to_an_amplitude_event(amplitude: RecordingServer) -> None:
    # Given a mapping for the page-view type
    plugin = AmplitudeWorker(settings(amplitude, event_types={"traffic.page.viewed": "Page Viewed"}))
    ev = event("traffic.page.viewed", {"url": "https://x/p", "device_id": "device-123", "n": 3},
               time=datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=UTC))
    # When it is delivered
    plugin.deliver([ev])
    # Then Amplitude gets the mapped event, the user id pseudonymised with the secret
    (request,) = amplitude.requests
    body = request.json()
    assert body["api_key"] == "test-api-key"
    assert body["events"] == [{
        "event_type": "Page Viewed",
        "user_id": hmac.new(SECRET.encode(), b"user-00001", hashlib.sha256).hexdigest(),
        "device_id": "device-123",
        "time": 1714564800250,
        "insert_id": ev.id,
        "event_properties": {"url": "https://x/p", "n": 3},
    }]


def test_events_without_a_usable_id_are_skipped_and_counted(worker: AmplitudeWorker,
                                                             amplitude: RecordingServer,
                                                             script: Script) -> None:
    # Given one event with a user, one with a too-short device id only, one with no id at all
    good = event()
    short = event(data={"device_id": "abc"}, userid=None)
    none = event(userid=None)
    # When they are written
    worker.write([good, short, none])
    # Then only the good one is sent, and the others are acked (no exception) and counted
    assert script.accepted == [good.id]
    assert worker.skipped == 2


def test_skipped_and_throttled_counts_are_on_the_worker_metrics(amplitude: RecordingServer, script: Script) -> None:
    # Given the worker's metrics with the plugin's own counters included
    plugin = AmplitudeWorker(settings(amplitude, privacy_hash=[]))
    metrics = WorkerMetrics(plugin.name)
    metrics.include(plugin)
    # When one event without a usable id is skipped and Amplitude throttles the user of another
    script.respond = throttle_user("hot-user")
    with pytest.raises(RetryLater):
        plugin.write([event(userid=None), event(userid="hot-user"), event(userid="calm-user")])
    # Then /metrics counts both, and the calm user's event went in
    assert metrics.value("eventsink_amplitude_events_skipped_total") == 1
    assert metrics.value("eventsink_amplitude_events_throttled_total") == 1
    assert len(script.accepted) == 1


def test_unmapped_types_keep_their_name_and_batches_respect_the_event_limit(
        amplitude: RecordingServer, script: Script) -> None:
    plugin = AmplitudeWorker(settings(amplitude, max_events_per_request=3))
    batch = [event("storage.file.uploaded", {"file_id": f"f{i}", "bytes": i}) for i in range(7)]
    plugin.write(batch)
    assert [len(r.json()["events"]) for r in amplitude.requests] == [3, 3, 1]
    assert {e["event_type"] for r in amplitude.requests for e in r.json()["events"]} == {"storage.file.uploaded"}
    assert sorted(script.accepted) == sorted(e.id for e in batch)


def test_requests_respect_the_byte_limit_and_oversize_events_are_refused(amplitude: RecordingServer,
                                                                          script: Script) -> None:
    plugin = AmplitudeWorker(settings(amplitude, max_request_bytes=2_000))
    batch = [event(data={"note": "n" * 300, "i": i}) for i in range(12)]
    huge = event(data={"note": "n" * 1000, "more": "m" * 1000})
    with pytest.raises(RejectEvents) as caught:
        plugin.write([*batch, huge])
    assert set(caught.value.reasons) == {huge.id}
    assert all(len(r.body) <= 2_000 for r in amplitude.requests) and len(amplitude.requests) > 1
    assert sorted(script.accepted) == sorted(e.id for e in batch)


def test_413_splits_the_request_until_it_fits(worker: AmplitudeWorker, amplitude: RecordingServer,
                                              script: Script) -> None:
    # Given an Amplitude that takes at most 3 events per request
    def small(request: Recorded) -> Reply:
        if len(request.json()["events"]) > 3:
            return Reply(413, {"code": 413, "error": "Payload too large"})
        return ingested(request)
    script.respond = small
    batch = [event(data={"resource_type": "file", "resource_id": f"f{i}"}) for i in range(10)]
    # When a batch of 10 is written
    worker.write(batch)
    # Then every event got through exactly once, in halves
    assert sorted(script.accepted) == sorted(e.id for e in batch)
    assert [len(r.json()["events"]) for r in amplitude.requests][:3] == [10, 5, 2]


def test_413_for_a_single_event_dead_letters_it(worker: AmplitudeWorker, script: Script) -> None:
    script.respond = lambda request: Reply(413, {"code": 413, "error": "Payload too large"})
    ev = event()
    with pytest.raises(RejectEvents) as caught:
        worker.write([ev])
    assert set(caught.value.reasons) == {ev.id}
    assert "413" in caught.value.reasons[ev.id]


def test_400_dead_letters_only_the_named_events_and_resends_the_rest(worker: AmplitudeWorker,
                                                                      amplitude: RecordingServer,
                                                                      script: Script) -> None:
    # Given an Amplitude that refuses events whose properties say bad=1, as its 400 documents
    def refuse_bad(request: Recorded) -> Reply:
        events = request.json()["events"]
        bad = [i for i, e in enumerate(events) if e.get("event_properties", {}).get("bad")]
        if not bad:
            return ingested(request)
        return Reply(400, {"code": 400, "error": "Invalid field values on some events",
                           "events_with_invalid_fields": {"event_properties": bad[:1]},
                           "events_with_missing_fields": {"time": bad[1:]}})
    script.respond = refuse_bad
    batch = [event(data={"bad": i in (1, 3), "i": i}) for i in range(5)]
    # When the batch is written
    with pytest.raises(RejectEvents) as caught:
        worker.write(batch)
    # Then the two bad ones are dead-lettered with Amplitude's reason, the other three were accepted
    reasons = caught.value.reasons
    assert set(reasons) == {batch[1].id, batch[3].id}
    assert "event_properties" in reasons[batch[1].id] and "time" in reasons[batch[3].id]
    assert caught.value.retry_ids == frozenset()
    assert sorted(script.accepted) == sorted(batch[i].id for i in (0, 2, 4))


def test_400_for_an_invalid_api_key_retries_everything(worker: AmplitudeWorker, script: Script) -> None:
    script.respond = lambda request: Reply(400, {"code": 400, "error": "Invalid API key: test-api-key"})
    batch = [event(), event()]
    with pytest.raises(RetryLater) as caught:
        worker.write(batch)
    assert caught.value.event_ids == {e.id for e in batch}


def throttle_user(user_id: str) -> Any:
    def respond(request: Recorded) -> Reply:
        events = request.json()["events"]
        hot = [i for i, e in enumerate(events) if e.get("user_id") == user_id]
        if not hot:
            return ingested(request)
        return Reply(429, {"code": 429, "error": "Too many requests for some devices and users",
                           "eps_threshold": 30, "throttled_users": {user_id: 31}, "throttled_events": hot})
    return respond


def test_429_backs_off_the_throttled_user_and_resends_the_others(amplitude: RecordingServer,
                                                                  script: Script) -> None:
    # Given Amplitude throttles one user (privacy hashing off, so the ids are plain)
    plugin = AmplitudeWorker(settings(amplitude, privacy_hash=[]))
    script.respond = throttle_user("hot-user")
    hot = [event(userid="hot-user") for _ in range(2)]
    calm = [event(userid="calm-user") for _ in range(3)]
    # When a mixed batch is written
    with pytest.raises(RetryLater) as caught:
        plugin.write([hot[0], calm[0], hot[1], calm[1], calm[2]])
    # Then only the throttled user's events are retried, after Amplitude's 30 s pause; the others went in
    assert caught.value.event_ids == {e.id for e in hot}
    assert caught.value.delay_s == pytest.approx(30.0)
    assert sorted(script.accepted) == sorted(e.id for e in calm)
    # And while the pause lasts, that user's new events are held back without being sent
    script.respond = ingested
    requests_before = len(amplitude.requests)
    later_hot, later_calm = event(userid="hot-user"), event(userid="calm-user")
    with pytest.raises(RetryLater) as again:
        plugin.write([later_hot, later_calm])
    assert again.value.event_ids == {later_hot.id}
    assert [e["insert_id"] for r in amplitude.requests[requests_before:] for e in r.json()["events"]] == [
        later_calm.id]


def test_429_over_the_daily_quota_dead_letters(amplitude: RecordingServer, script: Script) -> None:
    plugin = AmplitudeWorker(settings(amplitude, privacy_hash=[]))
    script.respond = lambda request: Reply(429, {
        "code": 429, "error": "Too many requests", "throttled_events": [0],
        "exceeded_daily_quota_users": {"busy-user": 500001}})
    ev = event(userid="busy-user")
    with pytest.raises(RejectEvents) as caught:
        plugin.write([ev])
    assert "daily quota" in caught.value.reasons[ev.id]


@pytest.mark.parametrize("reply", [
    Reply(500, {"code": 500, "error": "Internal error"}),
    Reply(503, b"<html>unavailable</html>"),
    Reply(429, {"code": 429, "error": "Too many requests"}, headers={"Retry-After": "7"}),
    Reply(200, {}, delay_s=2.0),
], ids=["500", "503-html", "429-retry-after", "timeout"])
def test_transient_failures_retry_the_whole_batch(worker: AmplitudeWorker, script: Script, reply: Reply) -> None:
    script.respond = lambda request: reply
    batch = [event(), event()]
    with pytest.raises(RetryLater) as caught:
        worker.write(batch)
    assert caught.value.event_ids == {e.id for e in batch}
    if "Retry-After" in reply.headers:
        assert caught.value.delay_s == 7.0


def test_a_failure_after_accepted_requests_retries_only_the_unsent_events(amplitude: RecordingServer,
                                                                          script: Script) -> None:
    plugin = AmplitudeWorker(settings(amplitude, max_events_per_request=2))
    answers = iter([ingested, lambda r: Reply(502, {"code": 502})])
    script.respond = lambda request: next(answers, ingested)(request)
    batch = [event() for _ in range(4)]
    with pytest.raises(RetryLater) as caught:
        plugin.write(batch)
    assert script.accepted == [batch[0].id, batch[1].id]
    assert caught.value.event_ids == {batch[2].id, batch[3].id}


def test_unreachable_amplitude_retries() -> None:
    plugin = AmplitudeWorker(settings(server_url="http://127.0.0.1:9/2/httpapi"))
    ev = event()
    with pytest.raises(RetryLater) as caught:
        plugin.write([ev])
    assert caught.value.event_ids == {ev.id}


def test_events_amplitude_cannot_represent_are_dead_lettered_before_sending(worker: AmplitudeWorker,
                                                                             amplitude: RecordingServer) -> None:
    bad = event(data={"matrix": [[1, 2], [3, 4]]})
    good = event()
    with pytest.raises(RejectEvents) as caught:
        worker.write([bad, good])
    assert set(caught.value.reasons) == {bad.id}
    assert [e["insert_id"] for r in amplitude.requests for e in r.json()["events"]] == [good.id]


def test_missing_api_key_is_a_startup_error_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVENTSINK_AMPLITUDE_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="EVENTSINK_AMPLITUDE_API_KEY"):
        build_settings(AmplitudeSettings)
    with pytest.raises(ConfigurationError, match="EVENTSINK_AMPLITUDE_API_KEY"):
        AmplitudeWorker(settings(api_key=SecretStr("")))


def test_hashing_without_a_secret_is_a_startup_error_naming_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="EVENTSINK_AMPLITUDE_PRIVACY_SECRET"):
        AmplitudeWorker(settings(privacy_secret=None))
    # unless hashing is switched off explicitly
    AmplitudeWorker(settings(privacy_secret=None, privacy_hash=[]))


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTSINK_AMPLITUDE_API_KEY", "from-env")
    monkeypatch.setenv("EVENTSINK_AMPLITUDE_ZONE", "EU")
    monkeypatch.setenv("EVENTSINK_AMPLITUDE_EVENT_TYPES", '{"storage.file.uploaded": "Upload"}')
    loaded = AmplitudeSettings()
    assert loaded.api_key is not None and loaded.api_key.get_secret_value() == "from-env"
    assert loaded.url == "https://api.eu.amplitude.com/2/httpapi"
    assert loaded.event_types == {"storage.file.uploaded": "Upload"}
    assert AmplitudeSettings(use_batch=True).url == "https://api.eu.amplitude.com/batch"
    monkeypatch.setenv("EVENTSINK_AMPLITUDE_SERVER_URL", "http://proxy.local/2/httpapi")
    assert AmplitudeSettings().url == "http://proxy.local/2/httpapi"


def test_takes_user_activity_types_only() -> None:
    plugin = AmplitudeWorker(settings())
    assert plugin.takes(event("traffic.page.viewed", {"url": "u"}))
    assert plugin.takes(event("storage.file.uploaded", {"file_id": "f", "bytes": 1}))
    assert not plugin.takes(event("health.ping", {"target": "t"}))
    assert not plugin.takes(event("traffic.api.called", {"method": "GET"}))
