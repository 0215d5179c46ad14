"""A local stand-in for Amplitude's HTTP V2 API that checks every request against the documented
format and limits, and answers what each test scripts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sink_lib.event import Event, build_envelope
from tests.privacy.recorder import Recorded, RecordingServer, Reply, serving

MAX_EVENTS = 2000
MAX_BYTES = 1_000_000
EVENT_KEYS = {
    "user_id", "device_id", "event_type", "time", "event_properties", "user_properties", "groups",
    "insert_id", "app_version", "platform", "os_name", "country", "region", "city", "language",
    "ip", "session_id", "event_id", "library",
}


def check_amplitude(request: Recorded) -> list[str]:
    """Every way ``request`` breaks the HTTP V2 API's documented format and limits."""
    problems = []
    if request.path != "/2/httpapi":
        problems.append(f"path {request.path}")
    if not request.headers.get("content-type", "").startswith("application/json"):
        problems.append(f"content-type {request.headers.get('content-type')}")
    if len(request.body) > MAX_BYTES:
        problems.append(f"body of {len(request.body)} bytes")
    try:
        body = request.json()
    except ValueError:
        return [*problems, "body is not JSON"]
    if not isinstance(body, dict) or set(body) - {"api_key", "events", "options"}:
        return [*problems, f"body keys {sorted(body) if isinstance(body, dict) else body!r}"]
    if not isinstance(body.get("api_key"), str) or not body["api_key"]:
        problems.append("api_key missing")
    events = body.get("events")
    if not isinstance(events, list) or not 0 < len(events) <= MAX_EVENTS:
        return [*problems, "events must be a list of 1-2000 events"]
    min_length = (body.get("options") or {}).get("min_id_length", 5)
    for index, event in enumerate(events):
        where = f"events[{index}]"
        if not isinstance(event, dict) or set(event) - EVENT_KEYS:
            problems.append(f"{where} has unknown keys")
            continue
        if not isinstance(event.get("event_type"), str) or not event["event_type"]:
            problems.append(f"{where}.event_type missing")
        ids = [event.get("user_id"), event.get("device_id")]
        if not any(ids):
            problems.append(f"{where} has neither user_id nor device_id")
        for value in ids:
            if value is not None and (not isinstance(value, str) or len(value) < min_length):
                problems.append(f"{where} id {value!r} shorter than {min_length}")
        if not isinstance(event.get("time"), int):
            problems.append(f"{where}.time is not integer milliseconds")
        if not isinstance(event.get("insert_id"), str):
            problems.append(f"{where}.insert_id missing")
        if "event_properties" in event and not isinstance(event["event_properties"], dict):
            problems.append(f"{where}.event_properties is not an object")
    return problems


def ingested(request: Recorded) -> Reply:
    """Amplitude's 200 answer."""
    count = len(request.json()["events"])
    return Reply(200, {"code": 200, "events_ingested": count, "payload_size_bytes": len(request.body),
                       "server_upload_time": 1396381378123})


class Script:
    """The replies of the fake Amplitude; tests set ``respond`` (default: 200 for everything).

    ``accepted`` lists the insert_ids of the events of every request answered 200. ``stored`` holds
    the events Amplitude would keep: it ignores an event whose insert_id it already has (for 7 days),
    and keeps every copy of an event without one.
    """

    def __init__(self) -> None:
        self.respond: Callable[[Recorded], Reply] = ingested
        self.accepted: list[str] = []
        self.stored: list[dict[str, Any]] = []

    def __call__(self, request: Recorded) -> Reply:
        reply = self.respond(request)
        if reply.status == 200 and not reply.delay_s:  # a delayed reply stands for a timeout
            events = request.json()["events"]
            self.accepted.extend(e.get("insert_id") for e in events)
            known = {e.get("insert_id") for e in self.stored} - {None}
            for sent in events:
                if sent.get("insert_id") is None or sent["insert_id"] not in known:
                    self.stored.append(sent)
                    known.add(sent.get("insert_id"))
        return reply


@pytest.fixture
def script() -> Script:
    """What the fake Amplitude answers."""
    return Script()


@pytest.fixture
def amplitude(script: Script) -> Iterator[RecordingServer]:
    """The fake Amplitude; after the test, asserts that every request was well-formed."""
    with serving(check_amplitude, script) as server:
        yield server
    assert server.violations == []


def event(type_: str = "activity.resource.viewed", data: dict[str, Any] | None = None, *,
          userid: str | None = "user-00001", id: str | None = None, time: Any = None) -> Event:
    """A parsed event as the runtime hands it to a plugin."""
    payload = {"resource_type": "file", "resource_id": "f-1"} if data is None else data
    return Event.parse(build_envelope(type_, payload, source="/test", id=id, userid=userid, time=time))
