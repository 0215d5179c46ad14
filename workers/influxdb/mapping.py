"""Event -> InfluxDB point: measurement, tags, fields and an idempotent timestamp.

The built-in types map as the README's table says; any other type gets the generic mapping. An
operator overrides either per type (or per fnmatch pattern of types) with :class:`TypeRule` entries
from ``EVENTSINK_INFLUXDB_MAPPING_FILE`` / ``EVENTSINK_INFLUXDB_MAPPING``; a subclass of the worker
can override :meth:`Mapper.point` or pass its own mapper.

``metric.*`` events (line protocol received by the API) are written back as the original series:
the measurement, tags, fields with their types and the timestamp from ``data`` (see
:class:`sink_lib.lineprotocol.Point`), nothing added; operator rules do not apply to them. Without a
timestamp in the line, the event time is used.

Idempotency: InfluxDB keeps one point per measurement + tag set + timestamp, so writing the same event
twice must produce the same three. The tags and the measurement are a pure function of the event; the
timestamp is the event time with its last ``id_digits`` decimal digits (nanoseconds) replaced by a hash
of the event id. Distinct events of one series within the same 10**id_digits ns collide only when
their hashes agree.
"""

from __future__ import annotations

import fnmatch
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

from sink_lib.event import Event
from sink_lib.lineprotocol import Encoder
from sink_lib.lineprotocol import Point as LinePoint

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
#: Tag and field names the mapping itself writes; data keys with these names get a ``data_`` prefix.
RESERVED = frozenset({"type", "source", "region", "id", "userid", "time", "host", "status_class", "id_shard"})


class TypeRule(BaseModel):
    """An operator's override of how one type (or pattern of types) maps; unset keys keep the default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    measurement: str | None = None
    tags: list[str] | None = None
    integers: list[str] | None = None
    drop: list[str] | None = None
    host_from: str | None = None
    status_class_from: str | None = None


@dataclass(frozen=True)
class TypeMapping:
    """How events of one type become points.

    ``measurement`` None means the type family (``storage`` for ``storage.file.uploaded``); ``tags``
    are the data keys written as tags; numeric keys in ``integers`` are written as integers, every
    other number as a float; keys in ``drop`` are not stored. ``host_from`` names a key holding a URL
    whose host becomes tag ``host``; ``status_class_from`` a key holding an HTTP status whose class
    (``2xx``) becomes tag ``status_class``.
    """

    measurement: str | None = None
    tags: frozenset[str] = frozenset()
    integers: frozenset[str] = frozenset()
    drop: frozenset[str] = frozenset()
    host_from: str | None = None
    status_class_from: str | None = None

    def merged(self, rule: TypeRule) -> TypeMapping:
        """This mapping with the keys ``rule`` sets replaced."""
        changes: dict[str, Any] = {}
        for name in rule.model_fields_set:
            value = getattr(rule, name)
            changes[name] = frozenset(value) if isinstance(value, list) else value
        return TypeMapping(**{**self.__dict__, **changes})


def _m(**kwargs: Any) -> TypeMapping:
    sets = {k: frozenset(v) for k, v in kwargs.items() if isinstance(v, list | set | tuple)}
    return TypeMapping(**{**kwargs, **sets})


GENERIC = _m(
    tags=["target", "service", "state", "extractor", "resource_type", "method", "route"],
    host_from="url",
    status_class_from="status",
)

BUILTIN: dict[str, TypeMapping] = {
    "storage.file.uploaded": _m(integers=["bytes"]),
    "storage.file.deleted": _m(integers=["bytes"]),
    "storage.file.archived": _m(integers=["bytes"]),
    "storage.file.unarchived": _m(integers=["bytes"]),
    **{f"extraction.{s}": _m(tags=["extractor"]) for s in ("queued", "started", "finished", "failed")},
    "traffic.page.viewed": _m(tags=["resource_type"], host_from="url"),
    "traffic.resource.downloaded": _m(tags=["resource_type"], integers=["bytes"]),
    "traffic.api.called": _m(tags=["method", "route"], integers=["status"], status_class_from="status"),
    "activity.resource.viewed": _m(tags=["resource_type"]),
    "activity.extractor.submitted": _m(tags=["extractor", "resource_type"]),
    "activity.user.signed_up": _m(),
    "activity.user.logged_in": _m(),
    "health.ping": _m(tags=["target"]),
    "health.http": _m(tags=["url"], integers=["status", "bytes"], host_from="url", status_class_from="status"),
    "health.status": _m(tags=["service", "state"]),
    "health.connections": _m(tags=["service"], integers=["active", "requests"]),
}


@dataclass(slots=True)
class Point:
    """One InfluxDB point built from one event; ``line`` is its exact text when it came as line protocol."""

    event_id: str
    measurement: str
    tags: dict[str, str]
    fields: dict[str, Any]
    time_ns: int
    line: str | None = None


def point_time_ns(moment: datetime, event_id: str, id_digits: int) -> int:
    """The event time in ns with its last ``id_digits`` digits taken from a hash of the id."""
    ns = ((moment - EPOCH) // _MICROSECOND) * 1000
    if id_digits <= 0:
        return ns
    unit = 10**id_digits
    return ns - ns % unit + zlib.crc32(event_id.encode()) % unit


def status_class(value: Any) -> str | None:
    """``2xx`` for 200..299 and so on; None for anything that is not an HTTP status."""
    if isinstance(value, int | float) and not isinstance(value, bool) and 100 <= value < 600:
        return f"{int(value) // 100}xx"
    return None


class Mapper:
    """Turns events into points according to the built-in mappings and the operator's rules."""

    def __init__(
        self,
        rules: Mapping[str, TypeRule] | None = None,
        *,
        id_digits: int = 6,
        id_shards: int = 0,
        store_userid: bool = False,
        max_string_length: int = 1024,
    ) -> None:
        self.rules = dict(rules or {})
        self.id_digits = id_digits
        self.id_shards = id_shards
        self.store_userid = store_userid
        self.max_string_length = max_string_length
        self._compiled: dict[str, TypeMapping] = {}
        self._hosts: dict[str, str | None] = {}
        self._encoder = Encoder()

    def mapping_for(self, type_name: str) -> TypeMapping:
        """The effective mapping of a type: built-in or generic, then the best matching rule."""
        mapping = self._compiled.get(type_name)
        if mapping is None:
            mapping = BUILTIN.get(type_name, GENERIC)
            rule = self._rule_for(type_name)
            if rule is not None:
                mapping = mapping.merged(rule)
            self._compiled[type_name] = mapping
        return mapping

    def _rule_for(self, type_name: str) -> TypeRule | None:
        if type_name in self.rules:
            return self.rules[type_name]
        matches = [p for p in self.rules if fnmatch.fnmatchcase(type_name, p)]
        return self.rules[max(matches, key=len)] if matches else None

    def measurement(self, event: Event, mapping: TypeMapping) -> str:
        """The measurement of an event: the mapping's, else the type family."""
        return mapping.measurement or event.type.split(".", 1)[0]

    def point(self, event: Event) -> Point | None:
        """The point of ``event``; None to store nothing for it."""
        type_name = event.type
        if type_name.startswith("metric.") and "fields" in event.data:
            return self.metric_point(event)
        m = self._compiled.get(type_name) or self.mapping_for(type_name)
        tags = {"type": type_name, "source": event.source}
        region = event.region
        if region:
            tags["region"] = region
        event_id = event.id
        fields: dict[str, Any] = {"id": event_id}
        if self.store_userid and event.userid:
            fields["userid"] = event.userid
        data = event.data
        tag_keys, integers, drop = m.tags, m.integers, m.drop
        for key, value in data.items():
            if value is None or key in drop or not key:
                continue
            name = "data_" + key if key in RESERVED else key
            kind = type(value)
            if key in tag_keys:
                if kind is str:
                    tags[name] = value
                elif kind is bool:
                    tags[name] = "true" if value else "false"
                elif isinstance(value, int | float):
                    tags[name] = str(value)
            elif kind is float:
                fields[name] = int(value) if key in integers and value.is_integer() else value
            elif kind is str:
                fields[name] = value[: self.max_string_length]
            elif kind is int:
                fields[name] = value if key in integers else float(value)
            elif kind is bool:
                fields[name] = value
        if m.host_from is not None:
            url = data.get(m.host_from)
            host = self._hosts.get(url, "") if type(url) is str else None
            if host == "":
                host = self._host(url)
            if host:
                tags["host"] = host
        if m.status_class_from is not None:
            klass = status_class(data.get(m.status_class_from))
            if klass:
                tags["status_class"] = klass
        if self.id_shards > 1:
            # a bounded tag that splits each series, dividing chance timestamp collisions (see README)
            tags["id_shard"] = str(zlib.adler32(event_id.encode()) % self.id_shards)
        return Point(event_id, self.measurement(event, m), tags, fields,
                     point_time_ns(event.time, event_id, self.id_digits))

    def metric_point(self, event: Event) -> Point:
        """The original series of a ``metric.*`` event; LineProtocolError when its data is not a point."""
        point = LinePoint.from_data(event.data)
        if point.timestamp_ns is None:
            point = replace(point, timestamp_ns=((event.time - EPOCH) // _MICROSECOND) * 1000)
        assert point.timestamp_ns is not None
        return Point(event.id, point.measurement, point.tags, point.fields, point.timestamp_ns,
                     self._encoder.exact(point))

    def _host(self, url: Any) -> str | None:
        if not isinstance(url, str):
            return None
        host = self._hosts.get(url, "")
        if host == "":
            try:
                host = urlsplit(url).hostname
            except ValueError:
                host = None
            if len(self._hosts) >= 10_000:
                self._hosts.clear()
            self._hosts[url] = host
        return host
