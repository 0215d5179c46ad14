"""Which metric samples an event changes: the mapping from events to Prometheus series.

Every event adds 1 to ``eventsink_events_total{type,source}``. Storage events move byte counters and
the files/bytes stored gauges; health events set gauges to their latest value. Labels stay of low
cardinality: never user ids, file ids or free text.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sink_lib.event import Event

Kind = Literal["counter", "gauge"]
Mode = Literal["add", "set"]


@dataclass(frozen=True)
class MetricSpec:
    """A metric family: ``add`` series accumulate; ``set`` series keep the value of the newest event."""

    name: str
    kind: Kind
    mode: Mode
    help: str


METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec("eventsink_events", "counter", "add", "Events processed, by type and source."),
        MetricSpec("eventsink_storage_uploaded_bytes", "counter", "add", "Bytes of uploaded files."),
        MetricSpec("eventsink_storage_deleted_bytes", "counter", "add", "Bytes of deleted files."),
        MetricSpec("eventsink_files_stored", "gauge", "add", "Files uploaded minus files deleted."),
        MetricSpec("eventsink_bytes_stored", "gauge", "add", "Bytes uploaded minus bytes deleted."),
        MetricSpec("eventsink_traffic_downloaded_bytes", "counter", "add", "Bytes of downloaded resources."),
        MetricSpec("eventsink_service_up", "gauge", "set", "1 when the last health.status of a service was up."),
        MetricSpec("eventsink_service_state", "gauge", "set", "1 for the state a service was last reported in."),
        MetricSpec("eventsink_service_connections_active", "gauge", "set", "Active connections last reported."),
        MetricSpec("eventsink_target_up", "gauge", "set", "1 when the last http or ping check of a target was ok."),
        MetricSpec("eventsink_http_phase_seconds", "gauge", "set", "Duration of each phase of the last HTTP check."),
        MetricSpec("eventsink_http_cert_expiry_days", "gauge", "set", "Days until the TLS certificate expires."),
        MetricSpec("eventsink_ping_rtt_seconds", "gauge", "set", "Round-trip times of the last ping check."),
        MetricSpec("eventsink_ping_loss_ratio", "gauge", "set", "Packet loss of the last ping check (0-1)."),
    )
}

SERVICE_STATES = ("up", "down", "degraded", "maintenance")
HTTP_PHASES = ("dns", "connect", "tls", "ttfb", "total")
PING_STATS = ("min", "avg", "max")


@dataclass(frozen=True)
class Update:
    """One change to one series: add ``value`` to it, or set it to ``value`` (per its metric's mode)."""

    metric: str
    labels: tuple[tuple[str, str], ...]
    value: float


def updates(event: Event, storage_labels: Sequence[str] = ()) -> list[Update]:
    """The changes ``event`` makes; data fields that are missing or not numbers are skipped."""
    out = [Update("eventsink_events", (("source", event.source), ("type", event.type)), 1.0)]
    data = event.data
    region = event.region or ""
    if event.type in ("storage.file.uploaded", "storage.file.deleted"):
        labels = _storage_labels(event, storage_labels)
        size = _number(data, "bytes")
        sign = 1.0 if event.type == "storage.file.uploaded" else -1.0
        out.append(Update("eventsink_files_stored", labels, sign))
        if size is not None:
            counter = "eventsink_storage_uploaded_bytes" if sign > 0 else "eventsink_storage_deleted_bytes"
            out += [Update(counter, labels, size), Update("eventsink_bytes_stored", labels, sign * size)]
    elif event.type == "traffic.resource.downloaded":
        size = _number(data, "bytes")
        if size is not None:
            out.append(Update("eventsink_traffic_downloaded_bytes", (("source", event.source),), size))
    elif event.type == "health.status" and isinstance(data.get("service"), str):
        service = (("region", region), ("service", data["service"]))
        state = data.get("state")
        out.append(Update("eventsink_service_up", service, 1.0 if state == "up" else 0.0))
        for name in SERVICE_STATES:
            out.append(Update("eventsink_service_state", (*service, ("state", name)), float(name == state)))
    elif event.type == "health.connections" and isinstance(data.get("service"), str):
        active = _number(data, "active")
        if active is not None:
            labels = (("region", region), ("service", data["service"]))
            out.append(Update("eventsink_service_connections_active", labels, active))
    elif event.type == "health.http" and isinstance(data.get("url"), str):
        target = (("region", region), ("target", data["url"]))
        out.append(Update("eventsink_target_up", (("check", "http"), *target), float(data.get("ok") is True)))
        for phase in HTTP_PHASES:
            ms = _number(data, f"{phase}_ms")
            if ms is not None:
                out.append(Update("eventsink_http_phase_seconds", (("phase", phase), *target), ms / 1000))
        days = _number(data, "cert_expires_in_days")
        if days is not None:
            out.append(Update("eventsink_http_cert_expiry_days", target, days))
    elif event.type == "health.ping" and isinstance(data.get("target"), str):
        target = (("region", region), ("target", data["target"]))
        out.append(Update("eventsink_target_up", (("check", "ping"), *target), float(data.get("ok") is True)))
        for stat in PING_STATS:
            ms = _number(data, f"rtt_{stat}_ms")
            if ms is not None:
                out.append(Update("eventsink_ping_rtt_seconds", (*target, ("stat", stat)), ms / 1000))
        loss = _number(data, "loss_pct")
        if loss is not None:
            out.append(Update("eventsink_ping_loss_ratio", target, loss / 100))
    return out


def _storage_labels(event: Event, names: Sequence[str]) -> tuple[tuple[str, str], ...]:
    values = {"source": event.source, "region": event.region or "", "space_id": event.data.get("space_id")}
    return tuple((name, str(values[name] or "")) for name in sorted(names))


def _number(data: dict[str, Any], key: str) -> float | None:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None
