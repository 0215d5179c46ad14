"""The amplitude worker under the real runtime and RabbitMQ, against the local fake Amplitude."""

from __future__ import annotations

import threading

import pytest

from sink_lib.event import build_envelope
from sink_lib.settings import SinkSettings
from sink_lib.topology import dead_queue_name, queue_name
from tests.privacy.recorder import Recorded, RecordingServer, Reply
from tests.support import drain_queue, queue_depth, wait_for
from tests.workers.helpers import publish
from workers.amplitude import AmplitudeSettings, AmplitudeWorker
from workers.runtime import QueueConsumer, WorkerMetrics

from .conftest import Script, ingested

pytestmark = pytest.mark.rabbitmq


def test_stream_is_sent_refused_event_dead_lettered_and_unusable_ones_acked(
        sink_settings: SinkSettings, amplitude: RecordingServer, script: Script) -> None:
    # Given page views of known users, one Amplitude refuses, one without any id, and a health event
    def refuse_flagged(request: Recorded) -> Reply:
        events = request.json()["events"]
        bad = [i for i, e in enumerate(events) if e.get("event_properties", {}).get("flag")]
        if bad:
            return Reply(400, {"code": 400, "error": "Invalid field values on some events",
                               "events_with_invalid_fields": {"event_properties.flag": bad}})
        return ingested(request)
    script.respond = refuse_flagged
    good = [build_envelope("traffic.page.viewed", {"url": f"/p{i}"}, source="/app", userid=f"user-{i:04d}")
            for i in range(25)]
    refused = build_envelope("traffic.page.viewed", {"url": "/x", "flag": True}, source="/app", userid="user-bad")
    anonymous = build_envelope("traffic.page.viewed", {"url": "/anon"}, source="/app")
    health = build_envelope("health.status", {"service": "web", "state": "up"}, source="/monitor")
    publish(sink_settings, "amplitude", [*good[:10], refused, anonymous, health, *good[10:]])

    # When the amplitude worker drains the queue
    settings = AmplitudeSettings(api_key="k", server_url=f"{amplitude.url}/2/httpapi", privacy_secret="s",
                                 batch_size=10, batch_timeout_s=0.1)
    plugin = AmplitudeWorker(settings)
    metrics = WorkerMetrics("amplitude")
    stop = threading.Event()
    worker = QueueConsumer(plugin, sink_settings, metrics=metrics, stop_event=stop)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        dead = dead_queue_name(sink_settings.exchange, "amplitude")
        wait_for(lambda: queue_depth(dead) == 1, 60, 0.1, what="the refused event to be dead-lettered")
        wait_for(lambda: len(set(script.accepted)) >= len(good), 60, 0.1, what="every good event accepted")
        wait_for(lambda: queue_depth(queue_name(sink_settings.exchange, "amplitude")) == 0, 30, 0.1,
                 what="the queue to be empty")
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()

    # Then Amplitude holds every good event once, the unusable ones were acked, the refused one says why
    assert sorted(set(script.accepted)) == sorted(e["id"] for e in good)
    assert plugin.skipped == 1
    ((_, props, _),) = drain_queue(dead, expect=1)
    assert props.message_id == refused["id"]
    assert "event_properties.flag" in str(props.headers.get("x-eventsink-reason"))
