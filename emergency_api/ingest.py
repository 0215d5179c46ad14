"""Hand accepted events to the app's EventSink and keep the promise behind a 2xx.

``submit(..., wait=...)`` returns once every event is broker-confirmed or durably in the local
spool (with ``EVENTSINK_API_ACCEPT_ON=spool``, ``spool_submit`` returns once every event is fsync'd
in the spool, group-committed with concurrent requests); when that cannot happen in time, or the
spool is full, the request gets 503 with Retry-After and nothing is reported as accepted.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

from flask import current_app

from sink_lib.errors import EventSinkError, PublishTimeout, QueueFullError, SpoolError

from . import metrics
from .problems import Problem
from .settings import ApiSettings

log = logging.getLogger(__name__)


class Sink(Protocol):
    """The part of ``sink_lib.EventSink`` the API uses (tests pass a fake with the same methods)."""

    def prepare(self, type: str, data: dict[str, Any], **kwargs: Any) -> Any: ...
    def submit(self, events: Sequence[Any], *, wait: float | None = None) -> None: ...
    def spool_submit(self, events: Sequence[Any], *, wait: float) -> None: ...
    def ready(self) -> bool: ...
    def stats(self) -> dict[str, Any]: ...
    def close(self, timeout: float = 10.0) -> None: ...


def sink() -> Sink:
    """The EventSink of this process."""
    current: Sink = current_app.extensions["eventsink_sink"]
    return current


def api_settings() -> ApiSettings:
    """The settings the app was created with."""
    settings: ApiSettings = current_app.extensions["eventsink_settings"]
    return settings


def publish(prepared: Sequence[Any], endpoint: str) -> None:
    """Submit and wait; raise a 503 Problem when the events could not be confirmed or spooled."""
    settings = api_settings()
    unavailable = {"Retry-After": str(settings.retry_after_s)}
    try:
        if settings.accept_on == "spool":
            sink().spool_submit(prepared, wait=settings.publish_timeout_s)
        else:
            sink().submit(prepared, wait=settings.publish_timeout_s)
    except PublishTimeout as exc:
        log.warning("%d event(s) not confirmed or spooled in time: %s", len(prepared), exc)
        raise Problem(503, "events were not confirmed or spooled in time; retry later with the same ids",
                      headers=unavailable) from exc
    except (SpoolError, QueueFullError) as exc:
        log.error("events refused, spool or queue full: %s", exc)
        raise Problem(503, "the broker is unreachable and the local spool cannot take more events",
                      headers=unavailable) from exc
    except EventSinkError as exc:
        log.error("publishing failed: %s", exc)
        raise Problem(503, "events could not be accepted now", headers=unavailable) from exc
    metrics.accepted(endpoint, len(prepared))
    metrics.observe_sink(sink())
