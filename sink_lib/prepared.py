"""Validating and serialising an event once, for the sync and async sinks alike."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, NamedTuple

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


def prepare_event(
    settings: SinkSettings,
    registry: TypeRegistry,
    type: str,
    data: dict[str, Any],
    *,
    source: str | None = None,
    id: str | None = None,
    time_: datetime | str | None = None,
    subject: str | None = None,
    userid: str | None = None,
    region: str | None = None,
) -> PreparedEvent:
    """Validate ``data`` for ``type`` and serialise the envelope; raises EventValidationError."""
    registry.validate(type, data, strict=settings.strict_types)
    for name, value in (("source", source), ("id", id), ("subject", subject), ("userid", userid),
                        ("region", region)):
        if value is not None and (not isinstance(value, str) or not value):
            raise EventValidationError.single(name, "must be a non-empty string", type)
    envelope = build_envelope(type, data, source=source or settings.source, id=id, time=time_,
                              subject=subject, userid=userid, region=region)
    body = encode(envelope, settings.max_event_bytes)
    return PreparedEvent(envelope["id"], type, body, int(time.time()))
