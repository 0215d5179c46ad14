"""State shared by the callers of ``emit`` and the publisher thread: the in-memory queue and counters."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from .prepared import PreparedEvent


class Ticket:
    """Tracks a group of submitted events until each is broker-confirmed or spooled (or failed).

    Each ticket has its own signal, so a confirm wakes only the submitter it completes, not every
    thread waiting on the sink (a request-per-thread server has many). The signal is a lock taken at
    creation and released when the last event settles: cheaper to make and to wait on than a
    ``threading.Event`` (no Condition, no RLock), which counts on a server answering thousands of
    requests a second.
    """

    __slots__ = ("_signal", "error", "remaining")

    def __init__(self, count: int) -> None:
        self.remaining = count
        self.error: BaseException | None = None
        self._signal = threading.Lock()
        self._signal.acquire()

    def count_down(self, error: BaseException | None = None) -> None:
        """One event of the group is settled (or failed with ``error``); call with the outbox lock held."""
        if error is not None:
            self.error = error
        self.remaining -= 1
        if self.remaining == 0:
            self._signal.release()

    def wait(self, timeout: float) -> bool:
        """Block until every event of the group is settled; False when ``timeout`` passes first.

        Meant for the one thread that submitted the group (a second waiter would not be woken).
        """
        if self._signal.acquire(timeout=timeout):
            self._signal.release()
            return True
        return False

    def is_done(self) -> bool:
        """True once every event of the group is settled."""
        return self.remaining <= 0


class Item(NamedTuple):
    """One queued event and the ticket of the submit() call that brought it, if any."""

    event: PreparedEvent
    ticket: Ticket | None


COUNTERS = ("emitted", "confirmed", "spooled", "replayed", "nacked", "republished", "dropped", "failed")


@dataclass
class Outbox:
    """The bounded in-memory queue between callers and the publisher, guarded by one lock.

    ``pending`` counts events accepted from callers that are neither broker-confirmed nor spooled yet;
    ``flush`` waits for it to reach zero. ``waiters`` counts threads blocked on ``cond`` for room in the
    queue or for a flush, so settling wakes ``cond`` only when someone can act on it.
    """

    lock: threading.Lock = field(default_factory=threading.Lock)
    items: deque[Item] = field(default_factory=deque)
    pending: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    waker: Callable[[], None] | None = None  # None while the publisher polls: emit makes no syscall
    urgent_waker: Callable[[], None] | None = None  # for callers that block until their events settle
    wake_pending: bool = False
    connected: bool = False
    inflight: int = 0
    waiters: int = 0
    cond: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.cond = threading.Condition(self.lock)

    def settle(self, items: list[Item], counter: str) -> None:
        """Count items as done (confirmed or spooled) and wake waiters; call with the lock held."""
        self.pending -= len(items)
        self.counts[counter] += len(items)
        for item in items:
            if item.ticket is not None:
                item.ticket.count_down()
        if self.waiters:
            self.cond.notify_all()

    def fail(self, items: list[Item], error: BaseException) -> None:
        """Count items as not accepted after all; call with the lock held."""
        self.pending -= len(items)
        self.counts["failed"] += len(items)
        for item in items:
            if item.ticket is not None:
                item.ticket.count_down(error)
        if self.waiters:
            self.cond.notify_all()

    def take(self, limit: int) -> list[Item]:
        """Pop up to ``limit`` items from the front; call with the lock held."""
        n = min(limit, len(self.items))
        popleft = self.items.popleft
        return [popleft() for _ in range(n)]

    def put_back(self, items: list[Item]) -> None:
        """Return items to the front in their order (to retry them first); call with the lock held."""
        self.items.extendleft(reversed(items))
        self.cond.notify_all()
