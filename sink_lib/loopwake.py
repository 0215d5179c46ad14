"""Resolving an asyncio loop's futures from the publisher's threads, one wake-up per batch.

``loop.call_soon_threadsafe`` per settled request would wake the loop (a pipe write with the stdlib
loop) once per request; a broker confirm often settles dozens at once. :class:`LoopNotifier` queues
the futures and schedules one drain while none is pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections import deque
from typing import Any

from .outbox import Ticket

_notifiers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopNotifier] = weakref.WeakKeyDictionary()
_notifiers_lock = threading.Lock()


class LoopNotifier:
    """Sets futures of one event loop to done from any thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._ready: deque[asyncio.Future[None]] = deque()
        self._scheduled = False

    def settle(self, future: asyncio.Future[None]) -> None:
        """Mark ``future`` done on its loop (soon); callable from any thread."""
        self._ready.append(future)
        if not self._scheduled:
            self._scheduled = True
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
                self.loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        # The flag is cleared before popping: a future appended after this point either is popped
        # below or sees the flag down and schedules another drain.
        self._scheduled = False
        ready = self._ready
        while ready:
            future = ready.popleft()
            if not future.done():  # cancelled by a timeout meanwhile
                future.set_result(None)


def notifier_for(loop: asyncio.AbstractEventLoop) -> LoopNotifier:
    """The notifier of ``loop`` (one per loop, kept while the loop lives)."""
    notifier = _notifiers.get(loop)
    if notifier is None:
        with _notifiers_lock:
            notifier = _notifiers.setdefault(loop, LoopNotifier(loop))
    return notifier


class LoopTicket(Ticket):
    """A :class:`Ticket` awaited on an event loop: settling the last event resolves ``future``."""

    __slots__ = ("future", "notifier")

    def __init__(self, count: int, loop: asyncio.AbstractEventLoop) -> None:  # no lock: wait() is not used
        self.remaining = count
        self.error: BaseException | None = None
        self.future: asyncio.Future[None] = loop.create_future()
        self.notifier = notifier_for(loop)

    def count_down(self, error: BaseException | None = None) -> None:
        if error is not None:
            self.error = error
        self.remaining -= 1
        if self.remaining == 0:
            self.notifier.settle(self.future)

    def wait(self, timeout: float) -> bool:
        raise TypeError("a LoopTicket is awaited (its future), not waited on")


async def settled(future: asyncio.Future[Any], timeout: float) -> bool:
    """Wait for ``future`` at most ``timeout`` seconds; False when the time ran out first."""
    try:
        await asyncio.wait_for(future, timeout)
    except TimeoutError:
        return False
    return True
