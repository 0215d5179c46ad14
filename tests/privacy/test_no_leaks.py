"""No raw value of a protected field reaches Amplitude or GA4: every byte the local endpoints receive
(request line, headers, query, body) is searched for each raw value, in plain, JSON-escaped and
URL-encoded forms."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from sink_lib.event import Event, build_envelope
from tests.privacy.recorder import Check, RecordingServer, Respond, serving
from workers.amplitude import AmplitudeSettings, AmplitudeWorker
from workers.amplitude.tests.conftest import Script as AmplitudeScript
from workers.amplitude.tests.conftest import check_amplitude
from workers.google_analytics import GoogleAnalyticsSettings, GoogleAnalyticsWorker
from workers.google_analytics.tests.conftest import Script as GA4Script
from workers.google_analytics.tests.conftest import check_ga4
from workers.plugin import WorkerPlugin

RAW_USERID = "alice.liddell@example.org"
PROTECTED = {
    "email": "leak-email-1@example.org",
    "userEmail": "leak-email-2@example.org",
    "contact": {"E_mail": "leak-email-3@example.org", "ipAddress": "203.0.113.77"},
    "ip": "203.0.113.7",
    "client_ip": "198.51.100.23",
    "ip_address": "192.0.2.44",
    "x_forwarded_for": "192.0.2.45",
    "name": "Alice Liddell",
    "last_name": "Liddellsurname",
    "username": "aliceinleakland",
    "filename": "Alice_Liddell_CV.pdf",
    "viewers": [{"email": "leak-list@example.org", "display_name": "Dinah Cat"}],
}
VISIBLE = {"resource_type": "file", "resource_id": "res-visible-42"}


def raw_values(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from raw_values(item)
    elif isinstance(value, list):
        for item in value:
            yield from raw_values(item)
    else:
        yield str(value)


def forms(value: str) -> set[bytes]:
    """How a value could appear on the wire."""
    texts = {value, value.lower(), json.dumps(value)[1:-1], quote(value, safe=""), quote_plus(value)}
    return {t.encode() for t in texts}


def leaks(server: RecordingServer, values: list[str]) -> list[str]:
    wire = server.raw_bytes()
    return [v for v in values if any(form in wire for form in forms(v))]


def sensitive_event() -> Event:
    data = {**VISIBLE, **PROTECTED, "client_id": None}
    data.pop("client_id")
    return Event.parse(build_envelope("activity.resource.viewed", data, source="/t", userid=RAW_USERID))


Factory = Callable[[RecordingServer, dict[str, Any]], WorkerPlugin]


def amplitude(server: RecordingServer, overrides: dict[str, Any]) -> WorkerPlugin:
    return AmplitudeWorker(AmplitudeSettings(**{"api_key": "k", "server_url": f"{server.url}/2/httpapi",
                                                "privacy_secret": "s3cret", **overrides}))


def google_analytics(server: RecordingServer, overrides: dict[str, Any]) -> WorkerPlugin:
    return GoogleAnalyticsWorker(GoogleAnalyticsSettings(**{
        "measurement_id": "G-PRIV", "api_secret": "s", "endpoint": server.url, "privacy_secret": "s3cret",
        **overrides}))


DESTINATIONS: dict[str, tuple[Factory, Check, Callable[[], Respond]]] = {
    "amplitude": (amplitude, check_amplitude, AmplitudeScript),
    "google_analytics": (google_analytics, check_ga4, GA4Script),
}


@pytest.fixture(params=sorted(DESTINATIONS))
def destination(request: pytest.FixtureRequest) -> Iterator[tuple[Factory, RecordingServer]]:
    factory, check, script = DESTINATIONS[request.param]
    with serving(check, script()) as server:
        yield factory, server
    assert server.violations == []


def test_default_rules_send_no_email_ip_name_or_raw_user_id(destination: tuple[Factory, RecordingServer]) -> None:
    # Given a worker with its default privacy rules, and an event full of personal data
    factory, server = destination
    plugin = factory(server, {})
    # When the event is delivered
    plugin.deliver([sensitive_event()])
    # Then it was sent (its ordinary fields arrived) ...
    assert server.requests and b"res-visible-42" in server.raw_bytes()
    # ... and no protected value, nor the raw user id or its unkeyed hash, is anywhere on the wire
    unkeyed = hashlib.sha256(RAW_USERID.encode()).hexdigest()
    assert leaks(server, [*raw_values(PROTECTED), RAW_USERID, unkeyed]) == []


def test_the_search_sees_a_field_the_operator_chose_to_keep(destination: tuple[Factory, RecordingServer]) -> None:
    # Given the operator keeps file names and sends user ids as they are (a positive control of the search)
    factory, server = destination
    plugin = factory(server, {"privacy_keep": ["data.filename"], "privacy_hash": []})
    plugin.deliver([sensitive_event()])
    found = leaks(server, [*raw_values(PROTECTED), RAW_USERID])
    assert sorted(found) == sorted(["Alice_Liddell_CV.pdf", RAW_USERID])
