"""Validating and serialising an event once, for the sync and async sinks alike."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, NamedTuple, TypedDict, Unpack

import orjson

from .errors import EventValidationError
from .event import build_envelope, encode, parse_time
from .registry import TypeRegistry
from .settings import SinkSettings
from .spool import SpoolRecord


class PreparedEvent(NamedTuple):
    """A validated, serialised event ready to publish (it holds only the body, to keep queues small)."""

    id: str
    type: str
    body: bytes
    timestamp: int

    @property
    def envelope(self) -> dict[str, Any]:
        """The CloudEvents envelope, decoded from the body."""
        return dict(orjson.loads(self.body))

    def spool_entry(self) -> tuple[str, bytes, str, int]:
        """What the spool stores: id, body and the AMQP type and timestamp replay publishes with."""
        return (self.id, self.body, self.type, self.timestamp)


def replay_headers(record: SpoolRecord) -> tuple[str, int]:
    """The AMQP ``type`` and ``timestamp`` to publish a spooled event with.

    Records store both; only a record written without them (by an older version) is read back from its body.
    """
    if record.type is not None and record.timestamp is not None:
        return record.type, record.timestamp
    try:
        envelope = orjson.loads(record.body)
        return str(envelope["type"]), int(parse_time(envelope["time"]).timestamp())
    except (ValueError, KeyError, TypeError):
        return "", int(time.time())


class EventFields(TypedDict, total=False):
    """The optional envelope fields every ``prepare``/``enqueue``/``publish`` takes as keywords."""

    source: str | None
    id: str | None
    time: datetime | str | None
    subject: str | None
    userid: str | None
    region: str | None


def prepare_event(
    settings: SinkSettings, registry: TypeRegistry, type: str, data: dict[str, Any], **fields: Unpack[EventFields]
) -> PreparedEvent:
    """Validate ``data`` for ``type`` and serialise the envelope; raises EventValidationError."""
    unknown = fields.keys() - EventFields.__annotations__.keys()
    if unknown:  # what a keyword-only signature would refuse: a typo must not be dropped silently
        raise TypeError(f"unexpected keyword argument(s): {', '.join(sorted(unknown))}")
    registry.validate(type, data, strict=settings.strict_types)
    for name in ("source", "id", "subject", "userid", "region"):
        value = fields.get(name)
        if value is not None and (not isinstance(value, str) or not value):
            raise EventValidationError.single(name, "must be a non-empty string", type)
    envelope = build_envelope(type, data, source=fields.get("source") or settings.source, id=fields.get("id"),
                              time=fields.get("time"), subject=fields.get("subject"), userid=fields.get("userid"),
                              region=fields.get("region"))
    body = encode(envelope, settings.max_event_bytes)
    return PreparedEvent(envelope["id"], type, body, int(time.time()))
