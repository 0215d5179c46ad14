"""Collecting deliveries into batches by size and time, and turning settled deliveries into few acks.

Both are pure bookkeeping (no AMQP calls), so the ack policy is tested without a broker.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class Delivery:
    """One AMQP message as received: its delivery tag on the consuming channel, properties and body."""

    tag: int
    body: bytes
    properties: Any
    redelivered: bool = False


class Batcher:
    """Buffers deliveries; a batch is ready when it holds ``size`` of them or the oldest is ``timeout_s`` old."""

    def __init__(self, size: int, timeout_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.size, self.timeout_s = size, timeout_s
        self._clock = clock
        self._items: list[Delivery] = []
        self._first_at = 0.0

    def __len__(self) -> int:
        return len(self._items)

    def add(self, delivery: Delivery) -> None:
        """Buffer one delivery."""
        if not self._items:
            self._first_at = self._clock()
        self._items.append(delivery)

    def ready(self) -> bool:
        """True when a batch should be taken now."""
        if not self._items:
            return False
        return len(self._items) >= self.size or self._clock() - self._first_at >= self.timeout_s

    def time_left(self) -> float | None:
        """Seconds until the buffered deliveries are due; None when nothing is buffered."""
        if not self._items:
            return None
        if len(self._items) >= self.size:
            return 0.0
        return max(0.0, self.timeout_s - (self._clock() - self._first_at))

    def take(self) -> list[Delivery]:
        """The next batch (at most ``size`` deliveries, oldest first); the rest stay buffered."""
        batch, self._items = self._items[: self.size], self._items[self.size :]
        if self._items:
            self._first_at = self._clock()
        return batch

    def clear(self) -> list[Delivery]:
        """Every buffered delivery, leaving the buffer empty."""
        items, self._items = self._items, []
        return items


class AckTracker:
    """The unacked delivery tags of one channel, and the fewest acks that settle some of them.

    ``basic_ack(tag, multiple=True)`` acks every outstanding tag up to ``tag``; it is only safe when all
    of those are settled. :meth:`settle` returns ``(tag, multiple)`` pairs: one multiple ack for the
    settled prefix, single acks for settled tags behind a still-unsettled one (a retried event).
    """

    def __init__(self) -> None:
        self._outstanding: dict[int, bool] = {}  # tag -> settled; insertion order == delivery order

    def __len__(self) -> int:
        return len(self._outstanding)

    def received(self, tag: int) -> None:
        """Record a delivered tag as outstanding."""
        self._outstanding[tag] = False

    def settle(self, tags: Iterable[int]) -> list[tuple[int, bool]]:
        """Mark ``tags`` settled and return the acks to send, forgetting the tags they cover."""
        outstanding = self._outstanding
        loose = []
        for tag in tags:
            if tag in outstanding:
                outstanding[tag] = True
                loose.append(tag)
        if not loose:
            return []
        acks: list[tuple[int, bool]] = []
        prefix_end = None
        prefix_len = 0
        for tag, settled in outstanding.items():
            if not settled:
                break
            prefix_end = tag
            prefix_len += 1
        if prefix_end is not None:
            # rebuilt rather than popped from the front: repeated front deletes scan dict holes
            outstanding = self._outstanding = dict(itertools.islice(outstanding.items(), prefix_len, None))
            acks.append((prefix_end, prefix_len > 1))
        for tag in loose:
            if outstanding.get(tag):
                del outstanding[tag]
                acks.append((tag, False))
        return acks

    def forget(self, tags: Iterable[int]) -> None:
        """Drop tags settled another way (nacked back to the queue)."""
        for tag in tags:
            self._outstanding.pop(tag, None)

    def clear(self) -> list[int]:
        """Every outstanding tag, leaving none (after a nack of all of them, or a lost channel)."""
        tags = list(self._outstanding)
        self._outstanding.clear()
        return tags
