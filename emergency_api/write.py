"""``POST /api/v1/write``: InfluxDB line protocol, so Telegraf and InfluxDB clients can push metrics.

Each line becomes one event::

    type    metric.<measurement>   lowercased; characters other than a-z 0-9 _ - become "_"
    time    the line's timestamp (``?precision=ns|us|ms|s``, default ns), else the time of arrival
    data    {"measurement": "...", "tags": {...}, "fields": {...}, "timestamp_ns": 1700000000000000000}
    id      derived from the key and the line when the line has a timestamp, so a resent line
            carries the same id and is deduplicated downstream; random otherwise

Partial writes, as InfluxDB does them: valid lines are published even when other lines are bad; the
answer is then 400 naming each bad line, with ``accepted`` counting the published ones. A body of
only valid lines gets 204. Every line's type must be in the key's scopes, else 403 and nothing is
published.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, Response, request

from sink_lib.errors import EventValidationError
from sink_lib.lineprotocol import PRECISIONS, Point, parse

from .auth import require_key, require_scope
from .events import source_of
from .ingest import api_settings, publish, sink
from .problems import Problem

bp = Blueprint("write", __name__)

TEXT_TYPES = frozenset({"text/plain", "application/octet-stream"})
LINE_ID_NAMESPACE = uuid.UUID("6f9b3c1e-7f0e-4c55-9d43-2f4f0c6d8a11")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UNSAFE = re.compile(r"[^a-z0-9_-]+")


def metric_type(measurement: str) -> str:
    """The event type of a measurement: ``metric.`` plus its sanitised name."""
    name = _UNSAFE.sub("_", measurement.lower()).strip("_") or "unnamed"
    return "metric." + name[:100]


def _time(point: Point) -> datetime | None:
    if point.timestamp_ns is None:
        return None
    try:
        return _EPOCH + timedelta(microseconds=point.timestamp_ns // 1000)
    except OverflowError:
        return None


@bp.post("/api/v1/write")
def write() -> Response:
    """Turn each line into an event; 204 when all are published, 400 naming bad lines otherwise."""
    key = require_key()
    settings = api_settings()
    if request.mimetype not in TEXT_TYPES:
        raise Problem(415, "send line protocol as Content-Type: text/plain")
    precision_name = request.args.get("precision", "ns")
    if precision_name not in PRECISIONS:
        raise Problem(400, f"precision must be one of {', '.join(PRECISIONS)}")
    try:
        text = request.get_data(cache=False).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Problem(400, f"the body is not UTF-8: {exc}") from None
    points, errors = parse(text, PRECISIONS[precision_name])
    if len(points) + len(errors) > settings.max_lines:
        raise Problem(413, f"{len(points) + len(errors)} lines in one request; the limit is {settings.max_lines}",
                      slug="too-many-events")
    if not points and not errors:
        raise Problem(400, "the body holds no lines")
    require_scope(key, ((number, metric_type(p.measurement)) for number, _, p in points), what="line")
    out = sink()
    prepared = []
    for number, raw, point in points:
        moment = _time(point)
        if point.timestamp_ns is not None and moment is None:
            errors.append({"line": number, "message": "timestamp out of range"})
            continue
        data: dict[str, Any] = {"measurement": point.measurement, "tags": point.tags, "fields": point.fields}
        if point.timestamp_ns is not None:
            data["timestamp_ns"] = point.timestamp_ns
        event_id = (str(uuid.uuid5(LINE_ID_NAMESPACE, f"{key.id}\n{raw}\n{precision_name}"))
                    if point.timestamp_ns is not None else None)
        try:
            prepared.append(out.prepare(metric_type(point.measurement), data, source=source_of(key, "write"),
                                        id=event_id, time=moment))
        except EventValidationError as exc:
            errors.extend({"line": number, "message": f"{e['field']}: {e['message']}"} for e in exc.errors)
    if prepared:
        publish(prepared, "write")
    if errors:
        errors.sort(key=lambda e: e["line"])
        raise Problem(
            400,
            f"partial write: {len(prepared)} line(s) accepted, {len(errors)} rejected",
            errors=errors,
            slug="partial-write",
            accepted=len(prepared),
        )
    return Response(status=204)
