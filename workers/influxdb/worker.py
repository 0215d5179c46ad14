"""The influxdb worker plugin: events -> points -> one line protocol write per batch.

Outcomes of a failed write::

    no answer, timeout, 5xx, 429        RetryLater (Retry-After as the delay)
    401 / 403                           RetryLater, logged as an error: credentials must be fixed,
                                        and dead-lettering every event would not help
    404 database not found (1.x)        CREATE DATABASE and write again once, else RetryLater
    400 / 413 / 422 (bad points)        find exactly which points the server refuses (from the
                                        "partial write" message when it names them all, else by
                                        bisecting the batch) and RejectEvents those; the rest is written
    any other status                    RetryLater, logged as an error

Re-sending points is harmless: the mapping gives every event the same measurement, tags and
timestamp each time, so InfluxDB overwrites instead of duplicating.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import ClassVar

from sink_lib.event import Event
from sink_lib.lineprotocol import Encoder
from sink_lib.topology import redact_url
from workers.errors import RejectEvents, RetryLater
from workers.plugin import WorkerPlugin

from .mapping import Mapper, Point
from .settings import InfluxDBSettings
from .transport import V1Transport, V2Transport, WriteFailed

log = logging.getLogger(__name__)

_CONFLICT = re.compile(
    r'field type conflict: input field "(?P<field>(?:[^"\\]|\\.)*)" on measurement "(?P<m>(?:[^"\\]|\\.)*)"'
    r" is type (?P<type>\w+), already exists as type \w+ dropped=(?P<dropped>\d+)"
)
_KINDS = {bool: "boolean", int: "integer", float: "float", str: "string"}
_POINT_ERRORS = frozenset({400, 413, 422})


class InfluxDBWorker(WorkerPlugin):
    """Writes events to InfluxDB 1.x (``/write``) or 2.x (``/api/v2/write``) as points.

    Subclasses can override :meth:`make_mapper` (or the returned mapper's ``point``) to change how
    events map to points.
    """

    name: ClassVar[str] = "influxdb"
    settings_model = InfluxDBSettings
    settings: InfluxDBSettings

    def __init__(self, settings: InfluxDBSettings) -> None:
        super().__init__(settings)
        self.mapper = self.make_mapper(settings)
        self.encoder = Encoder()
        self.transport: V1Transport | V2Transport | None = None

    def make_mapper(self, settings: InfluxDBSettings) -> Mapper:
        """The event -> point mapper; override to map differently."""
        return Mapper(
            settings.rules(),
            id_digits=settings.id_digits,
            id_shards=settings.id_shards,
            store_userid=settings.store_userid,
            max_string_length=settings.max_string_length,
        )

    def open(self) -> None:
        """Connect; on 1.x create the database when permitted (a clear log line when not)."""
        self.close()  # the runtime calls open() again after a RetryLater from it
        s = self.settings
        if s.api_version == 2:
            log.info("writing to InfluxDB 2.x at %s: org %r, bucket %r", redact_url(s.url), s.org, s.bucket)
            self.transport = V2Transport(s)
            return
        log.info("writing to InfluxDB 1.x at %s: database %r, retention policy %r", redact_url(s.url),
                 s.database, s.retention_policy or "default")
        self.transport = V1Transport(s)
        if self.settings.create_database:
            self._create_database()

    def _create_database(self) -> bool:
        assert isinstance(self.transport, V1Transport)
        try:
            self.transport.create_database()
        except WriteFailed as exc:
            if exc.status is None or exc.status >= 500:
                raise RetryLater(exc.message) from exc
            log.error(
                "cannot create InfluxDB database %r (%s); create it, grant the user the right, or set "
                "EVENTSINK_INFLUXDB_CREATE_DATABASE=false", self.settings.database, exc,
            )
            return False
        return True

    def close(self) -> None:
        """Close the HTTP connections."""
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    def write(self, batch: Sequence[Event]) -> None:
        """Write the batch's points; RejectEvents for the points InfluxDB refuses for good."""
        points: list[tuple[Point, str]] = []
        reasons: dict[str, str] = {}
        mapper, line = self.mapper, self.encoder.line
        for event in batch:
            try:
                point = mapper.point(event)
                text = None if point is None else (
                    point.line or line(point.measurement, point.tags, point.fields, point.time_ns))
            except Exception as exc:  # a mapping bug must not stall the queue: dead-letter the event
                log.exception("cannot map event %s of type %s", event.id, event.type)
                reasons[event.id] = f"cannot map to a point: {exc!r}"
                continue
            if text is not None:
                assert point is not None
                points.append((point, text))
        if points:
            reasons.update(self._write(points))
        if reasons:
            raise RejectEvents(reasons)

    def _write(self, points: list[tuple[Point, str]]) -> dict[str, str]:
        """Send ``points``; return the ids the server refused, with its reasons."""
        try:
            self._send(points)
            return {}
        except WriteFailed as exc:
            if exc.status not in _POINT_ERRORS:
                raise self._transient(exc) from exc
            if len(points) == 1:
                return {points[0][0].event_id: f"InfluxDB refused the point: {exc.message}"}
            named = _named_conflicts(points, exc.message)
            if named is not None:
                return named
            mid = len(points) // 2
            return self._write(points[:mid]) | self._write(points[mid:])

    def _send(self, points: list[tuple[Point, str]]) -> None:
        if self.transport is None:
            raise RetryLater("the influxdb worker is not open")
        body = "\n".join(text for _, text in points).encode("utf-8")
        try:
            self.transport.write(body)
        except WriteFailed as exc:
            missing_db = exc.status == 404 and "database not found" in exc.message
            if not (missing_db and self.settings.create_database and isinstance(self.transport, V1Transport)):
                raise
            if not self._create_database():
                raise
            self.transport.write(body)

    def _transient(self, exc: WriteFailed) -> RetryLater:
        if exc.status in (401, 403):
            log.error("InfluxDB refuses the credentials (%s): fix EVENTSINK_INFLUXDB_USERNAME/_PASSWORD or "
                      "_TOKEN; events stay queued until then", exc)
        elif "retention policy not found" in exc.message:
            log.error("InfluxDB has no such retention policy (%s): fix EVENTSINK_INFLUXDB_RETENTION_POLICY; "
                      "events stay queued until then", exc)
        elif exc.status is not None and exc.status != 429 and exc.status < 500:
            log.error("unexpected answer from InfluxDB (%s); events stay queued", exc)
        return RetryLater(str(exc), delay_s=exc.retry_after)


def _named_conflicts(points: list[tuple[Point, str]], message: str) -> dict[str, str] | None:
    """The refused points when a "partial write" names one field type conflict accounting for all drops.

    InfluxDB wrote every other point in that case. None when the message does not say that much
    (then the caller bisects).
    """
    if "partial write" not in message:
        return None
    match = _CONFLICT.search(message)
    if match is None or len(_CONFLICT.findall(message)) != 1:
        return None
    field = match["field"].replace('\\"', '"')
    measurement = match["m"].replace('\\"', '"')
    kind, dropped = match["type"], int(match["dropped"])
    culprits = [
        p.event_id
        for p, _ in points
        if p.measurement == measurement and field in p.fields and _kind(p.fields[field]) == kind
    ]
    if len(culprits) != dropped:
        return None
    reason = f"InfluxDB refused the point: {message}"
    return dict.fromkeys(culprits, reason)


def _kind(value: object) -> str:
    return _KINDS.get(type(value), "")
