"""Turning one message body into an :class:`~sink_lib.event.Event`, the first step of every batch.

A mechanism the ack policy (:mod:`.policy`) calls: it only says what a body is, or why it is not an
event (EventValidationError); what becomes of such a message is the policy's decision.
"""

from __future__ import annotations

from sink_lib.errors import EventValidationError
from sink_lib.event import Event

from .clowder import ClowderConverter

_DEFAULT_CONVERTER = ClowderConverter()
NOT_CLOWDER = "not a Clowder event-sink message either (no 'category' key in a JSON object)"


def parse_body(body: bytes, clowder: ClowderConverter = _DEFAULT_CONVERTER) -> Event:
    """Parse one message body: a CloudEvent, or a Clowder event-sink message converted to one.

    This is the one place where messages of other producers become events, before any plugin sees
    them. EventValidationError (ClowderMessageError for Clowder's shape) says why a body is neither.
    """
    if b'"specversion"' in body:  # every CloudEvent has it; Clowder's messages skip a failing parse
        try:
            # pydantic-core's JSON parser is the fast path; Event.parse gives the precise error message
            return Event.model_validate_json(body)
        except ValueError:
            pass
    message = clowder.recognise(body)
    if message is not None:
        return clowder.convert(message)
    try:
        return Event.parse(body)
    except EventValidationError as exc:
        raise EventValidationError([*exc.errors, {"field": "body", "message": NOT_CLOWDER}], exc.event_type) from None
