"""EventSink: the non-blocking publishing client application code calls.

``enqueue`` validates and serialises in the caller, appends to a bounded in-memory queue and returns; a
background thread (:mod:`sink_lib.publisher`) publishes with pipelined confirms, or spools to disk
while RabbitMQ is away.

Full-queue policy (``EVENTSINK_FULL_POLICY``), when ``max_queue`` events wait in memory:
``spool`` (default) the caller writes the event to the durable spool itself (slower, nothing lost);
``block`` the caller waits up to ``block_timeout_s`` for room, then gets QueueFullError;
``raise`` the caller gets QueueFullError at once. Whenever an event cannot be accepted (spool full
or unwritable too), ``enqueue`` raises QueueFullError, the ``failed`` counter goes up and an error is
logged: an event is either accepted (and then confirmed or spooled) or refused loudly, never lost
silently. The one exception is an event accepted while the broker AND the spool are unavailable
until exit: it is counted as ``dropped`` and logged as CRITICAL.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Sequence
from typing import Any, Unpack

from .errors import (
    PublishTimeout,
    QueueFullError,
    SinkClosedError,
    SpoolError,
)
from .groupcommit import GroupCommitSpool, spooled_directly
from .loopwake import LoopTicket, settled
from .outbox import Item, Outbox, Ticket
from .prepared import EventFields, PreparedEvent, prepare_event
from .publisher import Publisher
from .registry import TypeRegistry, default_registry
from .settings import SinkSettings
from .spool import Spool
from .spool_delivery import count_left, deliver_spool

log = logging.getLogger("sink_lib")

_live_sinks: weakref.WeakSet[EventSink] = weakref.WeakSet()


class EventSink:
    """Publishes events to the fanout exchange without blocking the caller on the network.

    Thread-safe and fork-safe (a child process gets a fresh, working sink on first use); flushes for
    at most ``exit_timeout_s`` at interpreter exit, then spools what is left. Use as a context manager
    or call :meth:`close`.
    """

    def __init__(self, settings: SinkSettings | None = None, *, registry: TypeRegistry | None = None):
        self.settings = settings if settings is not None else SinkSettings.load()
        self.registry = registry if registry is not None else default_registry()
        self._spool = Spool(self.settings.spool_dir, self.settings.spool_max_bytes)
        self._spool.check_directory()
        self._group_spool = GroupCommitSpool(self._spool)
        self._start_lock = threading.Lock()
        self._reset()
        self._closed = False
        self._left = 0
        _live_sinks.add(self)
        # Start now, not at the first emit: events a previous process left in the spool are replayed
        # even by a process that never emits.
        self._start()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._outbox = Outbox()
        self._publisher: Publisher | None = None

    # -- building events -----------------------------------------------------------------------

    def prepare(self, type: str, data: dict[str, Any], **fields: Unpack[EventFields]) -> PreparedEvent:
        """Validate and serialise an event; raises EventValidationError naming the bad field.

        Keywords (all optional): ``source``, ``id``, ``time`` (datetime or RFC 3339), ``subject``,
        ``userid``, ``region``; the same for :meth:`enqueue` and :meth:`publish`.
        """
        return prepare_event(self.settings, self.registry, type, data, **fields)

    def enqueue(self, type: str, data: dict[str, Any], **fields: Unpack[EventFields]) -> PreparedEvent:
        """Validate, enqueue and return the event at once; publishing happens in the background.

        Returns the event as sent (``.id``, ``.type``, ``.envelope``, ``.body``). Raises
        EventValidationError (nothing published) or QueueFullError (see the module's policy).
        """
        event = self.prepare(type, data, **fields)
        self._enqueue([event], None)
        return event

    def publish(self, type: str, data: dict[str, Any], *, timeout: float = 10.0,
                **fields: Unpack[EventFields]) -> PreparedEvent:
        """Validate and enqueue the event, then wait until the broker confirmed it or it is spooled.

        The blocking twin of :meth:`AsyncEventSink.publish`. Raises EventValidationError (nothing
        published), PublishTimeout when ``timeout`` passes first (the event stays queued and will still
        be published), or the spool's error when the broker is away and the spool cannot take it.
        """
        event = self.prepare(type, data, **fields)
        self.submit([event], wait=timeout)
        return event

    def emit(self, type: str, data: dict[str, Any], **fields: Unpack[EventFields]) -> PreparedEvent:
        """Deprecated alias of :meth:`enqueue` (kept for one release; warns DeprecationWarning)."""
        warnings.warn("EventSink.emit() is deprecated: use enqueue() (returns at once) or publish() "
                      "(waits for the confirm)", DeprecationWarning, stacklevel=2)
        return self.enqueue(type, data, **fields)

    def submit(self, events: Sequence[PreparedEvent], *, wait: float | None = None) -> None:
        """Enqueue prepared events; with ``wait``, block until each is confirmed or spooled.

        Raises PublishTimeout when ``wait`` passes first (the events stay queued and will still be
        published), or the spool's error when the broker is away and the spool cannot take them.
        """
        if not events:
            return
        ticket = Ticket(len(events)) if wait is not None else None
        self._enqueue(events, ticket)
        if ticket is None or wait is None:
            return
        if not ticket.wait(wait):
            raise PublishTimeout(f"{ticket.remaining} of {len(events)} event(s) not confirmed in {wait}s")
        if ticket.error is not None:
            raise ticket.error

    async def submit_async(self, events: Sequence[PreparedEvent], *, wait: float) -> None:
        """:meth:`submit` with ``wait`` for a caller on an asyncio event loop: enqueue, then await until
        each event is confirmed or spooled, without blocking the loop; the same errors.

        The publisher wakes the loop once per batch of settled calls, not once per call. (Enqueueing
        itself can block only with ``EVENTSINK_FULL_POLICY=block`` and a full queue.)
        """
        if not events:
            return
        loop = asyncio.get_running_loop()
        ticket = LoopTicket(len(events), loop)
        waker = self._enqueue(events, ticket, defer_wake=True)
        if waker is not None:
            # once per pass of the loop: requests read in the same pass reach the broker in one write
            loop.call_soon(waker)
        if not await settled(ticket.future, wait):
            raise PublishTimeout(f"{ticket.remaining} of {len(events)} event(s) not confirmed in {wait}s")
        if ticket.error is not None:
            raise ticket.error

    def spool_submit(self, events: Sequence[PreparedEvent], *, wait: float) -> None:
        """Write events to the durable spool (fsync'd, group-committed with concurrent callers) and return;
        the publisher sends them from there. Raises the spool's error or PublishTimeout."""
        self._check_started()
        self._group_spool.append([e.spool_entry() for e in events], wait)
        spooled_directly(self._outbox, self._publisher, len(events))

    async def spool_submit_async(self, events: Sequence[PreparedEvent], *, wait: float) -> None:
        """:meth:`spool_submit` for a caller on an asyncio event loop (not blocked during the fsync)."""
        self._check_started()
        await self._group_spool.append_async([e.spool_entry() for e in events], wait)
        spooled_directly(self._outbox, self._publisher, len(events))

    def _check_started(self) -> None:
        if self._closed:
            raise SinkClosedError("this EventSink is closed")
        if self._publisher is None or self._pid != os.getpid():
            self._start()

    def _enqueue(self, events: Sequence[PreparedEvent], ticket: Ticket | None,
                 defer_wake: bool = False) -> Callable[[], None] | None:
        """Queue ``events`` for the publisher and wake it if it is not polling. With ``defer_wake`` the
        wake is returned for the caller to make (once it has queued what else it has) instead."""
        self._check_started()
        outbox = self._outbox
        settings = self.settings
        waker = None
        with outbox.lock:
            if len(outbox.items) + len(events) > settings.max_queue and settings.full_policy == "block":
                deadline = time.monotonic() + settings.block_timeout_s
                outbox.waiters += 1
                try:
                    while len(outbox.items) + len(events) > settings.max_queue:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            break
                        outbox.cond.wait(min(left, 0.1))
                finally:
                    outbox.waiters -= 1
            overflow = len(outbox.items) + len(events) > settings.max_queue
            if not overflow:
                outbox.items.extend(Item(e, ticket) for e in events)
                outbox.pending += len(events)
                outbox.counts["emitted"] += len(events)
                # a waiting submit() wakes the publisher at once; enqueue() leaves it to its polling
                candidate = outbox.urgent_waker if ticket is not None else outbox.waker
                if not outbox.wake_pending and candidate is not None:
                    outbox.wake_pending = True
                    waker = candidate
        if overflow:
            self._overflow(events)
            if ticket is not None:  # spooled: settled for a waiting caller too
                with outbox.lock:
                    for _ in events:
                        ticket.count_down()
            return None
        if waker is not None and not defer_wake:
            waker()
            return None
        return waker

    def _overflow(self, events: Sequence[PreparedEvent]) -> None:
        outbox = self._outbox
        if self.settings.full_policy == "spool":
            try:
                self._spool.append([e.spool_entry() for e in events])
            except SpoolError as exc:
                with outbox.lock:
                    outbox.counts["failed"] += len(events)
                log.error("event(s) refused: in-memory queue full and spool unavailable: %s", exc)
                raise QueueFullError(f"in-memory queue full ({self.settings.max_queue}) and {exc}") from exc
            with outbox.lock:
                outbox.counts["emitted"] += len(events)
                outbox.counts["spooled"] += len(events)
            if self._publisher is not None:
                self._publisher._spool_maybe = True
            return
        with outbox.lock:
            outbox.counts["failed"] += len(events)
        log.error("event(s) refused: in-memory queue full (EVENTSINK_MAX_QUEUE=%d)", self.settings.max_queue)
        raise QueueFullError(f"in-memory queue full ({self.settings.max_queue} events waiting)")

    def _start(self) -> None:
        with self._start_lock:
            if self._pid != os.getpid():
                self._reset()  # forked: the parent's queue and thread are not ours
            if self._publisher is None:
                self._publisher = Publisher(self.settings, self._outbox, self._spool)
                self._publisher.start()

    # -- waiting and closing -------------------------------------------------------------------

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every emitted event is broker-confirmed or spooled; False on timeout."""
        if self._pid != os.getpid():
            return True
        outbox = self._outbox
        deadline = time.monotonic() + timeout
        with outbox.lock:
            outbox.waiters += 1
            try:
                while outbox.pending > 0:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    outbox.cond.wait(min(left, 0.5))
            finally:
                outbox.waiters -= 1
        return True

    def close(self, timeout: float = 10.0) -> int:
        """Deliver for up to ``timeout`` seconds, spool what is left, stop the publisher.

        Waits for the events in memory and, while RabbitMQ is reachable, for the spool too
        (:mod:`sink_lib.spool_delivery`). Returns the events left in the spool (0: none), logged as a
        WARNING when not 0.
        """
        if self._closed:
            return self._left
        deadline = time.monotonic() + timeout
        flushed = self.flush(timeout)
        self._closed = True
        publisher = self._publisher
        if publisher is not None and self._pid == os.getpid():
            if flushed and publisher.is_alive():
                deliver_spool(publisher, self._outbox, self._spool, deadline)
            publisher.stop()
            publisher.join(max(1.0, min(timeout, 5.0)))
            if publisher.is_alive():
                log.error("publisher thread did not stop in time; spooling what it holds")
        self._spool_leftovers()
        if not flushed:
            stats = self.stats()
            log.warning("closed before every event was confirmed: %d spooled, %d dropped",
                        stats["spooled"], stats["dropped"])
        self._left = count_left(self._spool)
        self._spool.close()
        _live_sinks.discard(self)
        return self._left

    def _spool_leftovers(self) -> None:
        outbox = self._outbox
        with outbox.lock:
            items = outbox.take(len(outbox.items))
        if not items:
            return
        try:
            self._spool.append([i.event.spool_entry() for i in items])
        except SpoolError as exc:
            with outbox.lock:
                outbox.counts["dropped"] += len(items)
                outbox.pending -= len(items)
            log.critical("LOST %d event(s) at close: broker and spool unavailable: %s", len(items), exc)
            return
        with outbox.lock:
            outbox.settle(items, "spooled")

    def __enter__(self) -> EventSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(self.settings.exit_timeout_s)

    # -- inspection ----------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters since creation (or fork): emitted, confirmed, spooled, replayed, dropped, failed..."""
        outbox = self._outbox
        with outbox.lock:
            out: dict[str, Any] = dict(outbox.counts)
            out["queued"] = len(outbox.items)
            out["inflight"] = outbox.inflight
            out["pending"] = outbox.pending
            out["connected"] = outbox.connected
        publisher = self._publisher
        out["node"] = getattr(publisher, "node", None)
        try:
            out["spool_pending"] = self._spool.count()
        except SpoolError:
            out["spool_pending"] = None
        return out

    def ready(self) -> bool:
        """True when RabbitMQ is connected or the spool can take events."""
        if self._publisher is None or self._pid != os.getpid():
            self._start()
        return self._outbox.connected or self._spool.writable()


def _close_all_at_exit() -> None:
    for sink in list(_live_sinks):
        if sink._pid == os.getpid():
            try:
                sink.close(sink.settings.exit_timeout_s)
            except Exception:
                log.exception("closing an EventSink at exit failed")


def _reset_sinks_in_child() -> None:
    # The parent's threads do not exist in the child; any lock they held at fork() would stay held.
    for sink in list(_live_sinks):
        sink._start_lock = threading.Lock()
        sink._reset()


atexit.register(_close_all_at_exit)
os.register_at_fork(after_in_child=_reset_sinks_in_child)
