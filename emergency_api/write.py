"""Line protocol in, one ``metric.<measurement>`` event per line out: ``POST /api/v1/write`` and the
core the InfluxDB-compatible endpoints (:mod:`emergency_api.influx`) share.

Each line becomes one event::

    type    metric.<measurement>   lowercased; characters other than a-z 0-9 _ - become "_"
    time    the line's timestamp (``?precision=ns|us|ms|s|m|h``, default ns), else the time of arrival
    data    {"measurement": "...", "tags": {...}, "fields": {...}, "field_types": {...},
             "timestamp_ns": 1700000000000000000}    (see sink_lib.lineprotocol.Point)
    id      derived from the key and the line when the line has a timestamp, so a resent line
            carries the same id and is deduplicated downstream; random otherwise

Cheap checks come before parsing: the body size (413, also chunked or gzip), the number of lines
(413 past ``max_lines``, counted before splitting), then every line's measurement against the key's
scopes (403, nothing published). Lines longer than ``max_line_length`` are refused unparsed.

Partial writes, as InfluxDB does them: valid lines are published even when other lines are bad; the
answer is then 400 naming each bad line (the list capped, with how many more), with ``accepted``
counting the published ones. A body of only valid lines gets 204.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, Response, request

from sink_lib.errors import EventValidationError
from sink_lib.lineprotocol import PRECISIONS, Point, lines, measurement_of, parse_lines

from .auth import require_key, require_scope
from .body import read_body
from .events import source_of
from .ingest import api_settings, publish, sink
from .keys import ApiKey
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


@dataclass
class Written:
    """What a write did: events published, and one error per refused line (with its text)."""

    accepted: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)


def _time(point: Point) -> datetime | None:
    if point.timestamp_ns is None:
        return None
    try:
        return _EPOCH + timedelta(microseconds=point.timestamp_ns // 1000)
    except OverflowError:
        return None


def _check_scopes(key: ApiKey, numbered: list[tuple[int, str]]) -> None:
    """403 naming each line whose measurement's type is outside the key's scopes (before parsing)."""
    allowed: dict[str, bool] = {}
    refused: list[tuple[int, str]] = []
    for number, line in numbered:
        measurement = measurement_of(line)
        if measurement is None:
            continue  # the parser names the problem
        event_type = metric_type(measurement)
        ok = allowed.get(event_type)
        if ok is None:
            ok = allowed[event_type] = key.allows(event_type)
        if not ok:
            refused.append((number, event_type))
    if refused:
        require_scope(key, refused, what="line")


def write_lines(key: ApiKey, body: bytes, precision_name: str, endpoint: str) -> Written:
    """Check, parse and publish a body of line protocol; Problem for what refuses the whole request."""
    settings = api_settings()
    precision = PRECISIONS.get(precision_name)
    if precision is None:
        raise Problem(400, f"precision must be one of {', '.join(PRECISIONS)}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Problem(400, f"the body is not UTF-8: {exc}") from None
    if text.count("\n") > settings.max_lines:
        raise Problem(413, f"more than {settings.max_lines} lines in one request", slug="too-many-events")
    numbered = lines(text)
    if len(numbered) > settings.max_lines:
        raise Problem(413, f"{len(numbered)} lines in one request; the limit is {settings.max_lines}",
                      slug="too-many-events")
    if not numbered:
        raise Problem(400, "the body holds no lines")
    _check_scopes(key, numbered)
    points, errors = parse_lines(numbered, precision, max_line_length=settings.max_line_length)
    texts = dict(numbered)
    for error in errors:
        error["text"] = texts[error["line"]][:200]
    out = sink()
    source = source_of(key, endpoint)
    prepared = []
    for number, raw, point in points:
        moment = _time(point)
        if point.timestamp_ns is not None and moment is None:
            errors.append({"line": number, "message": "timestamp out of range", "text": raw[:200]})
            continue
        event_id = (str(uuid.uuid5(LINE_ID_NAMESPACE, f"{key.id}\n{raw}\n{precision_name}"))
                    if point.timestamp_ns is not None else None)
        try:
            prepared.append(out.prepare(metric_type(point.measurement), point.to_data(), source=source,
                                        id=event_id, time=moment))
        except EventValidationError as exc:
            errors.extend({"line": number, "message": f"{e['field']}: {e['message']}", "text": raw[:200]}
                          for e in exc.errors)
    if prepared:
        publish(prepared, endpoint)
    errors.sort(key=lambda e: e["line"])
    return Written(len(prepared), errors)


@bp.post("/api/v1/write")
def write() -> Response:
    """Turn each line into an event; 204 when all are published, 400 naming bad lines otherwise."""
    key = require_key()
    settings = api_settings()
    if request.mimetype not in TEXT_TYPES:
        raise Problem(415, "send line protocol as Content-Type: text/plain")
    written = write_lines(key, read_body(settings.max_body_bytes), request.args.get("precision", "ns"), "write")
    if written.errors:
        raise Problem(
            400,
            f"partial write: {written.accepted} line(s) accepted, {len(written.errors)} rejected",
            errors=[{k: v for k, v in e.items() if k != "text"} for e in written.errors],
            slug="partial-write",
            accepted=written.accepted,
        )
    return Response(status=204)
