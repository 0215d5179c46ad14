"""The exceptions sink_lib raises, all under one root.

::

    EventSinkError
    ├── ConfigurationError          a setting is missing or invalid (names the variable)
    ├── EventValidationError        an event was refused before anything was published
    │                               (``.errors`` lists ``{"field", "message"}`` pairs)
    ├── BrokerError                 RabbitMQ could not be reached or refused an operation
    │   └── TopologyError           declaring or deleting exchanges or queues failed
    │       └── QueueInUseError     a queue to delete has consumers, messages or dead letters
    ├── SpoolError                  the local durable spool could not take or give events
    │   ├── SpoolFullError          the spool reached its size limit or the disk is full
    │   └── UnsafeSpoolDirError     the spool directory is open to other users (also a ConfigurationError)
    ├── QueueFullError              the in-memory queue and the spool could not take an event
    ├── PublishTimeout              events were not confirmed or spooled in time
    ├── SinkClosedError             emit() on a sink that was closed
    └── LineProtocolError           text that is not valid InfluxDB line protocol, or a point that
                                    cannot be written as a line (sink_lib.lineprotocol; a ValueError)

Errors from pika, aio-pika and sqlite3 are re-raised as these types ``from`` the cause.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


class EventSinkError(Exception):
    """Root of every error sink_lib raises on purpose."""


class ConfigurationError(EventSinkError):
    """A setting is missing or invalid; the message names the environment variable."""


class EventValidationError(EventSinkError, ValueError):
    """An event was refused; nothing of it was published.

    ``errors`` is a list of ``{"field": "data.bytes", "message": "..."}`` dicts, one per problem,
    so callers (the emergency API among them) can report each bad field.
    """

    def __init__(self, errors: Iterable[Mapping[str, Any]], event_type: str | None = None) -> None:
        self.errors: list[dict[str, Any]] = [dict(e) for e in errors]
        self.event_type = event_type
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in self.errors) or "invalid event"
        prefix = f"invalid {event_type!r} event: " if event_type else "invalid event: "
        super().__init__(prefix + detail)

    @classmethod
    def single(cls, field: str, message: str, event_type: str | None = None) -> EventValidationError:
        """Build the error for one bad field."""
        return cls([{"field": field, "message": message}], event_type)


class BrokerError(EventSinkError):
    """RabbitMQ could not be reached or refused an operation."""


class TopologyError(BrokerError):
    """Declaring or deleting the exchange, queues or dead-letter queues failed."""


class QueueInUseError(TopologyError):
    """A worker's queue has consumers, messages or dead letters, and deleting it was not forced."""


class SpoolError(EventSinkError):
    """The local durable spool could not store or return events."""


class SpoolFullError(SpoolError):
    """The spool is at its configured size limit, or the disk under it is full."""


class UnsafeSpoolDirError(SpoolError, ConfigurationError):
    """The spool directory, or a folder above it, lets another user read or swap the spooled events.

    The message names ``EVENTSINK_SPOOL_DIR``; nothing is written there.
    """


class QueueFullError(EventSinkError):
    """An event could be neither queued in memory nor written to the spool; it was not accepted."""


class PublishTimeout(EventSinkError):
    """Events were not broker-confirmed or spooled before the deadline."""


class SinkClosedError(EventSinkError):
    """The sink was closed; create a new one to emit again."""
