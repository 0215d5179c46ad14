"""Turning one message body into an :class:`~sink_lib.event.Event`, the first step of every batch.

A mechanism the ack policy (:mod:`.policy`) calls: it only says what a body is, or why it is not an
event (EventValidationError); what becomes of such a message is the policy's decision.
"""

from __future__ import annotations

from sink_lib.event import Event


def parse_body(body: bytes) -> Event:
    """Parse one message body; EventValidationError says why it is not a valid event."""
    try:
        # pydantic-core's JSON parser is the fast path; Event.parse gives the precise error message
        return Event.model_validate_json(body)
    except ValueError:
        return Event.parse(body)
