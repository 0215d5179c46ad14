"""The validate command: GA4's validation messages per event, exit status 1 when any."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from sink_lib.event import build_envelope
from tests.privacy.recorder import RecordingServer, Reply
from workers.google_analytics.validate import main

from .conftest import Script


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, ga4: RecordingServer) -> None:
    monkeypatch.setenv("EVENTSINK_GOOGLE_ANALYTICS_MEASUREMENT_ID", "G-VALIDATE")
    monkeypatch.setenv("EVENTSINK_GOOGLE_ANALYTICS_API_SECRET", "s")
    monkeypatch.setenv("EVENTSINK_GOOGLE_ANALYTICS_ENDPOINT", ga4.url)
    monkeypatch.setenv("EVENTSINK_GOOGLE_ANALYTICS_PRIVACY_SECRET", "k")


def lines(*envelopes: dict[str, object]) -> str:
    return "\n".join(json.dumps(e) for e in envelopes)


def test_reports_each_events_verdict(env: None, ga4: RecordingServer, script: Script) -> None:
    # Given the validation server flags the first event of each request
    script.respond = lambda request: Reply(200, {"validationMessages": [
        {"fieldPath": "events[0].params.page_location", "description": "bad url", "validationCode": "VALUE_INVALID"}]})
    flagged = build_envelope("traffic.page.viewed", {"url": "x"}, source="/t", userid="user-1")
    other = build_envelope("traffic.page.viewed", {"url": "y"}, source="/t", userid="user-2")
    health = build_envelope("health.ping", {"target": "t"}, source="/t")
    # When the command validates them
    result = CliRunner().invoke(main, ["validate", "-"], input=lines(flagged, health))
    # Then it prints GA's message for the flagged one, fails, and sent only to the debug endpoint
    assert result.exit_code == 1, result.output
    assert f"{flagged['id']}\ttraffic.page.viewed\tGA4 validation: bad url" in result.output
    assert f"{health['id']}\thealth.ping\tnot taken (type)" in result.output
    assert {r.path for r in ga4.requests} == {"/debug/mp/collect"}
    script.respond = Script.default
    ok = CliRunner().invoke(main, ["validate", "-"], input=lines(other))
    assert ok.exit_code == 0 and ok.output.endswith("\tok\n")


def test_local_limit_failures_are_reported_without_asking_ga(env: None, ga4: RecordingServer) -> None:
    bad = build_envelope("traffic.page.viewed", {"url": "x", "ga_secret": "1"}, source="/t", userid="user-1")
    result = CliRunner().invoke(main, ["validate", "-"], input=json.dumps([bad]))
    assert result.exit_code == 1
    assert "reserved" in result.output
    assert ga4.requests == []

