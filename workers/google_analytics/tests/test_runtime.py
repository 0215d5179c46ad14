"""The google_analytics worker under the real runtime and RabbitMQ, against the local fake GA4."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from sink_lib.event import build_envelope
from sink_lib.settings import SinkSettings
from sink_lib.topology import dead_queue_name, queue_name
from tests.privacy.recorder import RecordingServer
from tests.support import drain_queue, queue_depth, wait_for
from tests.workers.helpers import publish
from workers.google_analytics import GoogleAnalyticsSettings, GoogleAnalyticsWorker
from workers.runtime import QueueConsumer, WorkerMetrics

from .conftest import Script

pytestmark = pytest.mark.rabbitmq


def test_valid_events_are_sent_and_those_over_the_limits_dead_lettered(
        sink_settings: SinkSettings, ga4: RecordingServer, script: Script) -> None:
    # Given downloads of a few users, one event too old for GA4 and one with a reserved parameter
    good = [build_envelope("traffic.resource.downloaded", {"resource_id": f"f{i}"}, source="/app",
                           userid=f"user-{i % 3}") for i in range(30)]
    old = build_envelope("traffic.resource.downloaded", {"resource_id": "old"}, source="/app", userid="user-0",
                         time=datetime.now(UTC) - timedelta(hours=80))
    reserved = build_envelope("traffic.resource.downloaded", {"resource_id": "r", "google_x": 1}, source="/app",
                              userid="user-1")
    publish(sink_settings, "google_analytics", [*good[:15], old, reserved, *good[15:]])

    # When the google_analytics worker drains the queue
    settings = GoogleAnalyticsSettings(measurement_id="G-RT", api_secret="s", endpoint=ga4.url,
                                       privacy_secret="k", batch_size=10, batch_timeout_s=0.1)
    worker = QueueConsumer(GoogleAnalyticsWorker(settings), sink_settings, metrics=WorkerMetrics("google_analytics"),
                    stop_event=(stop := threading.Event()))
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        dead = dead_queue_name(sink_settings.exchange, "google_analytics")
        wait_for(lambda: queue_depth(dead) == 2, 60, 0.1, what="both refused events dead-lettered")
        wait_for(lambda: len(script.accepted) >= len(good), 60, 0.1, what="every good event sent")
        wait_for(lambda: queue_depth(queue_name(sink_settings.exchange, "google_analytics")) == 0, 30, 0.1,
                 what="the queue to be empty")
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()

    # Then GA4 got every good event once, as file_download, and each dead letter says why
    assert sorted(e["params"]["event_id"] for e in script.accepted) == sorted(e["id"] for e in good)
    assert {e["name"] for e in script.accepted} == {"file_download"}
    reasons = {props.message_id: str(props.headers.get("x-eventsink-reason"))
               for _, props, _ in drain_queue(dead, expect=2)}
    assert "72 h" in reasons[old["id"]]
    assert "reserved" in reasons[reserved["id"]]
