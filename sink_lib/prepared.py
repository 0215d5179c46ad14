"""Validating and serialising an event once, for the sync and async sinks alike."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, NamedTuple

import orjson

from .errors import EventValidationError
from .event import build_envelope, encode
from .registry import TypeRegistry
from .settings import SinkSettings


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
