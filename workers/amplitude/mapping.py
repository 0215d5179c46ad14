"""Our events -> Amplitude HTTP V2 event objects.

``event_type`` from the configured mapping (else our type), ``user_id`` from ``userid``, ``device_id``
from ``data.<device_id_field>``, ``time`` in epoch milliseconds, ``insert_id`` = our event id (Amplitude
ignores a repeated insert_id for 7 days, so a redelivered event is not counted twice), and
``event_properties`` from the rest of ``data`` (strings cut at 1024 characters, as the SDK does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amplitude.event import is_validate_object
from amplitude.utils import truncate

from sink_lib.event import Event
from workers.thirdparty import Unsendable

from .settings import AmplitudeSettings


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One mapped event: our id, its Amplitude body, and the ids Amplitude throttles by."""

    event_id: str
    body: dict[str, Any]
    user_id: str | None
    device_id: str | None


def _usable_id(value: Any, min_length: int) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if len(text) >= min_length else None


def to_amplitude(event: Event, settings: AmplitudeSettings) -> Outgoing:
    """Map one event; raises :class:`Unsendable` when Amplitude could not take it."""
    properties = dict(event.data)
    device_id = _usable_id(properties.pop(settings.device_id_field, None), settings.min_id_length)
    user_id = _usable_id(event.userid, settings.min_id_length)
    if user_id is None and device_id is None:
        raise Unsendable(
            f"no user_id or device_id of at least {settings.min_id_length} characters", skip=True
        )
    if not is_validate_object(properties):
        raise Unsendable("data holds values Amplitude cannot take as event_properties (e.g. nested lists)")
    body: dict[str, Any] = {
        "event_type": settings.event_types.get(event.type, event.type),
        "time": int(event.time.timestamp() * 1000),
        "insert_id": event.id,
    }
    if user_id is not None:
        body["user_id"] = user_id
    if device_id is not None:
        body["device_id"] = device_id
    if properties:
        body["event_properties"] = truncate(properties)
    return Outgoing(event.id, body, user_id, device_id)
