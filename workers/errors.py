"""Outcomes a worker plugin signals from ``write``, and the worker package's errors.

::

    WorkerError
    ├── RetryLater        transient: the destination is down or throttling; nothing (or only the
    │                     listed events) was written; the runtime backs off and retries, no dead letters
    ├── RejectEvents      permanent for the listed events: they go to the dead-letter queue with their
    │                     reason; every other event of the batch counts as written (unless in retry_ids)
    ├── PluginError       a plugin could not be loaded or configured
    └── ClowderMessageError  a Clowder event-sink message that cannot be converted (also an
                          EventValidationError, so the runtime dead-letters it with the reason)

Returning normally from ``write`` means every event of the batch was accepted by the destination.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sink_lib.errors import EventSinkError, EventValidationError


class WorkerError(EventSinkError):
    """Root of the worker package's errors."""


class RetryLater(WorkerError):
    """The destination cannot take the batch now; retry after a backoff.

    ``event_ids``: only these events need retrying (the rest were written); None means all of them.
    ``delay_s``: the destination's own hint (e.g. a Retry-After header), used as the minimum backoff.
    """

    def __init__(self, reason: str, *, event_ids: Iterable[str] | None = None, delay_s: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.event_ids = None if event_ids is None else frozenset(event_ids)
        self.delay_s = delay_s


class RejectEvents(WorkerError):
    """The destination refused these events for good; dead-letter them with the reason.

    ``reasons`` maps event id -> why. Events listed in ``retry_ids`` are retried later; every other
    event of the batch was written.
    """

    def __init__(self, reasons: Mapping[str, str], *, retry_ids: Iterable[str] = ()):
        self.reasons = dict(reasons)
        self.retry_ids = frozenset(retry_ids)
        preview = "; ".join(f"{k}: {v}" for k, v in list(self.reasons.items())[:3])
        super().__init__(f"{len(self.reasons)} event(s) rejected: {preview}")


class PluginError(WorkerError):
    """A plugin could not be found, loaded or configured."""


class ClowderMessageError(WorkerError, EventValidationError):
    """A message in Clowder's event-sink shape that cannot become an event; ``errors`` names the key."""
