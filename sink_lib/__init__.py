"""sink_lib: emit CloudEvents to EventSink's fanout exchange, reliably and without blocking.

::

    from sink_lib import EventSink
    sink = EventSink()
    sink.enqueue("storage.file.uploaded", {"file_id": "f1", "bytes": 10}, userid="u1")  # returns at once
    sink.publish("storage.file.deleted", {"file_id": "f1", "bytes": 10})  # waits for the confirm
"""

from .errors import (
    BrokerError,
    ConfigurationError,
    EventSinkError,
    EventValidationError,
    PublishTimeout,
    QueueFullError,
    SinkClosedError,
    SpoolError,
    SpoolFullError,
    TopologyError,
)
from .event import Event
from .prepared import PreparedEvent
from .registry import TypeRegistry, default_registry
from .settings import SinkSettings
from .sink import EventSink

__all__ = [
    "AsyncEventSink",
    "BrokerError",
    "ConfigurationError",
    "Event",
    "EventSink",
    "EventSinkError",
    "EventValidationError",
    "PreparedEvent",
    "PublishTimeout",
    "QueueFullError",
    "SinkClosedError",
    "SinkSettings",
    "SpoolError",
    "SpoolFullError",
    "TopologyError",
    "TypeRegistry",
    "default_registry",
]


def __getattr__(name: str) -> object:
    # aio-pika is an optional extra: import the async sink only when asked for.
    if name == "AsyncEventSink":
        from .async_sink import AsyncEventSink

        return AsyncEventSink
    raise AttributeError(name)
