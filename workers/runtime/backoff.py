"""Exponential backoff with full jitter, for destination outages and broker reconnects.

A small stateful helper rather than tenacity's retry decorator: the runtime must keep servicing the
AMQP connection (heartbeats, new deliveries) and watch for a stop request while it waits, so it asks
for the next delay and does the waiting itself.
"""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    """Delays that grow ``min_s * 2**attempt`` up to ``max_s``, each drawn uniformly from its upper half.

    Half-jitter keeps a floor (so a worker never hammers a dead destination) while spreading the
    retries of many workers apart. ``hint_s`` (a destination's Retry-After) raises the floor.
    """

    def __init__(self, min_s: float, max_s: float, *, rand: Callable[[], float] = random.random) -> None:
        if min_s <= 0 or max_s < min_s:
            raise ValueError(f"need 0 < min_s <= max_s, got {min_s}, {max_s}")
        self.min_s, self.max_s = min_s, max_s
        self.attempt = 0
        self._rand = rand

    def next_delay(self, hint_s: float | None = None) -> float:
        """The delay before the next retry; each call counts one more failed attempt."""
        ceiling = min(self.max_s, self.min_s * (2 ** min(self.attempt, 32)))
        self.attempt += 1
        delay = ceiling / 2 + self._rand() * ceiling / 2
        delay = max(delay, self.min_s)
        if hint_s is not None and hint_s > delay:
            delay = hint_s
        return delay

    def reset(self) -> None:
        """Start again from ``min_s`` (after a success)."""
        self.attempt = 0
