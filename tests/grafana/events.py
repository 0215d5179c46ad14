"""A realistic half hour of EventSink traffic, and the producers that send it.

- The application (through sink_lib's EventSink): uploads and deletes, page views, downloads, resource
  views, extractions with every outcome, API calls, connection counts.
- The monitors of three regions (through the emergency API, as ``eventsink monitor`` does): HTTP and
  ping checks and health.status reports of three targets. At the end "web" is down as seen from two
  regions and "search" from one, so only "web" reaches the N=2 regions of the alert rule.
- A broken producer that publishes bodies that are not events (they end up dead-lettered).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pika
import requests

from sink_lib import EventSink, SinkSettings

REGIONS = ("us-east", "eu-west", "ap-south")
STEPS = 10  # reports per region and target, every 3 minutes over the last half hour
SITES = {"web": "https://web.example.org/", "search": "https://search.example.org/"}
PING_HOST = "db.example.org"
#: service -> regions that see it down in the end
DOWN_AT_THE_END = {"web": {"us-east", "eu-west"}, "search": {"ap-south"}}


def _at(step: int) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=3 * (STEPS - step)) + timedelta(milliseconds=step)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def monitor_events(region: str) -> list[dict[str, Any]]:
    """What the monitor of ``region`` posts over the half hour."""
    events: list[dict[str, Any]] = []

    def add(kind: str, step: int, data: dict[str, Any], subject: str) -> None:
        moment = _at(step) + timedelta(microseconds=len(events))  # distinct times, distinct points
        events.append({"id": str(uuid.uuid4()), "type": kind, "time": _iso(moment), "source": f"/monitor/{region}",
                       "subject": subject, "region": region, "data": data})

    for step in range(STEPS):
        last = step == STEPS - 1
        for name, url in SITES.items():
            down = last and region in DOWN_AT_THE_END[name]
            failing = down or step == 3  # one failed check each, a recovered blip
            phases = {"dns_ms": 2.0 + step, "connect_ms": 10.5, "tls_ms": 21.0, "ttfb_ms": 80.0 + step,
                      "total_ms": 120.0 + step}
            http = {"url": url, "ok": not failing, "status": None if failing else 200,
                    "error": "timed out" if failing else None, **phases, "bytes": 0 if failing else 5120,
                    "cert_expires_in_days": None if failing else 40.0 - step}
            add("health.http", step, http, name)
            state = "down" if down else "up"
            add("health.status", step, {"service": name, "state": state, **({"message": "timed out"} if down else {})},
                name)
        add("health.ping", step, {"target": PING_HOST, "rtt_min_ms": 10.0, "rtt_avg_ms": 12.5 + step,
                                  "rtt_max_ms": 20.0 + step, "loss_pct": 10.0 if step == 5 else 0.0, "ok": True},
            "db")
    return events


def app_events() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(type, data, extensions) of what the application emits over the half hour."""
    out: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    for step in range(STEPS):
        at = {"time": _at(step), "userid": f"user{step % 3}"}
        upload = {"file_id": f"f{step}", "dataset_id": "d1", "bytes": 1000 * (step + 1)}
        out.append(("storage.file.uploaded", upload, at))
        if step % 3 == 2:
            out.append(("storage.file.deleted", {"file_id": f"f{step - 1}", "bytes": 1000 * step}, at))
        out.append(("traffic.page.viewed", {"url": f"https://web.example.org/datasets/d{step}",
                                            "resource_type": "dataset", "resource_id": f"d{step}"}, at))
        out.append(("traffic.resource.downloaded", {"resource_id": f"f{step}", "resource_type": "file",
                                                    "bytes": 2048}, at))
        out.append(("activity.resource.viewed", {"resource_type": "file", "resource_id": f"f{step}"}, at))
        extractor = ("ncsa.image.preview", "ncsa.csv")[step % 2]
        out.append(("extraction.queued", {"extractor": extractor, "file_id": f"f{step}"}, at))
        out.append(("extraction.started", {"extractor": extractor, "file_id": f"f{step}"}, at))
        if step % 4 == 3:
            failed = {"extractor": extractor, "file_id": f"f{step}", "message": "bad image"}
            out.append(("extraction.failed", failed, at))
        else:
            out.append(("extraction.finished", {"extractor": extractor, "file_id": f"f{step}",
                                                "duration_s": 1.5 + step}, at))
        for route, status in (("/api/files/<id>", 200), ("/api/datasets", 200), ("/api/files/<id>", 404)):
            out.append(("traffic.api.called", {"method": "GET", "route": route, "status": status,
                                               "duration_ms": 5.0 + step}, at))
        out.append(("health.connections", {"service": "web", "active": 10 + step, "requests": 100, "window_s": 60.0},
                    {**at, "region": "us-east"}))
    return out


def emit_app_events(settings: SinkSettings) -> int:
    """Emit the application's events through sink_lib; returns how many were confirmed."""
    events = app_events()
    with EventSink(settings=settings) as sink:
        for kind, data, extensions in events:
            sink.enqueue(kind, data, source="/clowder/web", **extensions)
        assert sink.flush(timeout=30), sink.stats()
    return len(events)


def post_monitor_events(api_url: str, api_key: str) -> int:
    """Post every region's monitor events to the API (one batch per region); returns how many."""
    total = 0
    for region in REGIONS:
        batch = monitor_events(region)
        response = requests.post(f"{api_url}/api/v1/events", json=batch, headers={"X-API-Key": api_key}, timeout=30)
        assert response.status_code == 202, response.text
        total += len(batch)
    return total


def post_rejected_requests(api_url: str, api_key: str) -> None:
    """Requests the API refuses: a wrong key (401) and an invalid event (422)."""
    event = {"type": "health.status", "data": {"service": "web", "state": "up"}}
    wrong_key = requests.post(f"{api_url}/api/v1/events", json=event, headers={"X-API-Key": "nope"}, timeout=10)
    assert wrong_key.status_code == 401
    invalid = {"type": "health.status", "data": {"service": "web", "state": "sideways"}}
    refused = requests.post(f"{api_url}/api/v1/events", json=invalid, headers={"X-API-Key": api_key}, timeout=10)
    assert refused.status_code == 422


def publish_garbage(amqp_url: str, exchange: str) -> None:
    """One message that is not a CloudEvent, as a broken producer would publish it."""
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = conn.channel()
        channel.confirm_delivery()
        channel.basic_publish(exchange, "", b"{not json", pika.BasicProperties(delivery_mode=2,
                                                                                 message_id=str(uuid.uuid4())))
    finally:
        conn.close()
