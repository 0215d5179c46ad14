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
    async def submit_async(self, events: Sequence[Any], *, wait: float) -> None: ...
    def spool_submit(self, events: Sequence[Any], *, wait: float) -> None: ...
    async def spool_submit_async(self, events: Sequence[Any], *, wait: float) -> None: ...
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


def _refusal(exc: EventSinkError, count: int, settings: ApiSettings) -> Problem:
    """The 503 answering events that could not be confirmed or spooled (logged, never with keys)."""
    unavailable = {"Retry-After": str(settings.retry_after_s)}
    if isinstance(exc, PublishTimeout):
        log.warning("%d event(s) not confirmed or spooled in time: %s", count, exc)
        return Problem(503, "events were not confirmed or spooled in time; retry later with the same ids",
                       headers=unavailable)
    if isinstance(exc, SpoolError | QueueFullError):
        log.error("events refused, spool or queue full: %s", exc)
        return Problem(503, "the broker is unreachable and the local spool cannot take more events",
                       headers=unavailable)
    log.error("publishing failed: %s", exc)
    return Problem(503, "events could not be accepted now", headers=unavailable)


def _accepted(out: Sink, endpoint: str, count: int) -> None:
    metrics.accepted(endpoint, count)
    metrics.observe_sink(out)


def publish(prepared: Sequence[Any], endpoint: str) -> None:
    """Submit and wait; raise a 503 Problem when the events could not be confirmed or spooled."""
    settings, out = api_settings(), sink()
    try:
        if settings.accept_on == "spool":
            out.spool_submit(prepared, wait=settings.publish_timeout_s)
        else:
            out.submit(prepared, wait=settings.publish_timeout_s)
    except EventSinkError as exc:
        raise _refusal(exc, len(prepared), settings) from exc
    _accepted(out, endpoint, len(prepared))


async def publish_async(out: Sink, settings: ApiSettings, prepared: Sequence[Any], endpoint: str) -> None:
    """:func:`publish` for a caller on an event loop: the confirm (or the spool's group commit) is awaited."""
    try:
        if settings.accept_on == "spool":
            await out.spool_submit_async(prepared, wait=settings.publish_timeout_s)
        else:
            await out.submit_async(prepared, wait=settings.publish_timeout_s)
    except EventSinkError as exc:
        raise _refusal(exc, len(prepared), settings) from exc
    _accepted(out, endpoint, len(prepared))
