"""The public names of sink_lib are the documented ones, sorted, and importable."""

from __future__ import annotations

import sink_lib


def test_public_names_are_pinned_and_sorted():
    assert sink_lib.__all__ == sorted(sink_lib.__all__)
    assert sink_lib.__all__ == [
        "AsyncEventSink", "BrokerError", "ConfigurationError", "Event", "EventSink", "EventSinkError",
        "EventValidationError", "PreparedEvent", "PublishTimeout", "QueueFullError", "SinkClosedError",
        "SinkSettings", "SpoolError", "SpoolFullError", "TopologyError", "TypeRegistry", "default_registry",
    ]
    for name in sink_lib.__all__:
        assert getattr(sink_lib, name) is not None


def test_every_error_is_an_eventsink_error():
    errors = [getattr(sink_lib, n) for n in sink_lib.__all__ if n.endswith("Error")]
    assert all(issubclass(e, sink_lib.EventSinkError) for e in errors)
    assert issubclass(sink_lib.SpoolFullError, sink_lib.SpoolError)
    assert issubclass(sink_lib.TopologyError, sink_lib.BrokerError)
    assert issubclass(sink_lib.EventValidationError, ValueError)
