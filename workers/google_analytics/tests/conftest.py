"""A local stand-in for the GA4 Measurement Protocol that checks every request against the documented
format and limits (independently of the worker's own checks), and answers what each test scripts."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sink_lib.event import Event, build_envelope
from tests.privacy.recorder import Recorded, RecordingServer, Reply, serving

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,39}$")
RESERVED_EVENTS = {"session_start", "first_visit", "first_open", "user_engagement", "error", "app_remove"}
BODY_KEYS = {"client_id", "user_id", "timestamp_micros", "user_properties", "consent", "non_personalized_ads",
             "user_location", "device", "user_data", "events", "validation_behavior", "ip_override"}
LONG_VALUES = {"page_location": 1000, "page_referrer": 420, "page_title": 300}


def _reserved(name: str) -> bool:
    return name.lower().startswith(("google_", "ga_", "firebase_"))


def check_ga4(request: Recorded) -> list[str]:
    """Every way ``request`` breaks the Measurement Protocol's documented format and limits."""
    problems = []
    if request.path not in ("/mp/collect", "/debug/mp/collect"):
        problems.append(f"path {request.path}")
    for param in ("measurement_id", "api_secret"):
        if len(request.query.get(param, [])) != 1 or not request.query[param][0]:
            problems.append(f"query parameter {param} missing")
    if not request.headers.get("content-type", "").startswith("application/json"):
        problems.append("content-type is not application/json")
    if len(request.body) >= 130_000:
        problems.append(f"body of {len(request.body)} bytes")
    try:
        body = request.json()
    except ValueError:
        return [*problems, "body is not JSON"]
    if not isinstance(body, dict) or set(body) - BODY_KEYS:
        return [*problems, f"unknown body keys {sorted(set(body) - BODY_KEYS)}"]
    if not isinstance(body.get("client_id"), str) or not body["client_id"]:
        problems.append("client_id missing")
    if "user_id" in body and (not isinstance(body["user_id"], str) or len(body["user_id"]) > 256):
        problems.append("bad user_id")
    now_us = time.time() * 1e6
    stamps = [body.get("timestamp_micros")] + [e.get("timestamp_micros") for e in body.get("events") or []]
    for stamp in stamps:
        if stamp is not None and (not isinstance(stamp, int) or not now_us - 72 * 3600e6 <= stamp <= now_us + 60e6):
            problems.append(f"timestamp_micros {stamp} outside the last 72 h")
    props = body.get("user_properties") or {}
    if len(props) > 25:
        problems.append("more than 25 user properties")
    for name, prop in props.items():
        value = prop.get("value") if isinstance(prop, dict) else None
        if len(name) > 24 or not NAME.match(name) or _reserved(name):
            problems.append(f"user property name {name!r}")
        if isinstance(value, str) and len(value) > 36:
            problems.append(f"user property {name!r} value too long")
    events = body.get("events")
    if not isinstance(events, list) or not 1 <= len(events) <= 25:
        return [*problems, "events must be a list of 1-25 events"]
    for index, event in enumerate(events):
        where = f"events[{index}]"
        name = event.get("name", "")
        if not NAME.match(name) or name in RESERVED_EVENTS or _reserved(name):
            problems.append(f"{where}.name {name!r}")
        params = event.get("params") or {}
        if len(params) > 25:
            problems.append(f"{where} has {len(params)} params")
        for key, value in params.items():
            if not NAME.match(key) or _reserved(key):
                problems.append(f"{where}.params name {key!r}")
            if isinstance(value, str) and len(value) > LONG_VALUES.get(key, 100):
                problems.append(f"{where}.params.{key} value too long")
            if not isinstance(value, str | int | float) or isinstance(value, bool):
                problems.append(f"{where}.params.{key} is not a string or number")
    return problems


class Script:
    """Replies of the fake GA4 (default: 204 like /mp/collect, or no messages on /debug/mp/collect).

    ``accepted`` lists the events of every request answered 2xx, each with its request's client_id/user_id.
    """

    def __init__(self) -> None:
        self.respond: Callable[[Recorded], Reply] = self.default
        self.accepted: list[dict[str, Any]] = []

    @staticmethod
    def default(request: Recorded) -> Reply:
        if request.path.startswith("/debug"):
            return Reply(200, {"validationMessages": []})
        return Reply(204, b"")

    def __call__(self, request: Recorded) -> Reply:
        reply = self.respond(request)
        if 200 <= reply.status < 300 and not reply.delay_s and not request.path.startswith("/debug"):
            body = request.json()
            self.accepted.extend({"client_id": body["client_id"], "user_id": body.get("user_id"), **event}
                                 for event in body["events"])
        return reply


@pytest.fixture
def script() -> Script:
    """What the fake GA4 answers."""
    return Script()


@pytest.fixture
def ga4(script: Script) -> Iterator[RecordingServer]:
    """The fake GA4; after the test, asserts that every request was well-formed."""
    with serving(check_ga4, script) as server:
        yield server
    assert server.violations == []


def event(type_: str = "traffic.page.viewed", data: dict[str, Any] | None = None, *,
          userid: str | None = "user-00001", id: str | None = None, time: Any = None) -> Event:
    """A parsed event as the runtime hands it to a plugin."""
    payload = {"url": "https://clowder.example/files/f1"} if data is None else data
    return Event.parse(build_envelope(type_, payload, source="/test", id=id, userid=userid, time=time))
