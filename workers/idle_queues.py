"""Warnings of ``eventsink status`` about worker queues nobody consumes.

A queue bound to the fanout exchange receives every event whether or not its worker runs; with no
consumer it grows until the broker runs out of disk. ``eventsink status`` reads the depth of each
such queue twice, ``interval_s`` apart, and warns when it grew (or holds messages at all), naming the
two ways out: start the worker, or delete its queues.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sink_lib.settings import SinkSettings
from sink_lib.topology import QueueStatus, queue_status


@dataclass(frozen=True)
class IdleQueue:
    """A worker queue with no consumer: its depth at the first and at the second reading."""

    worker: str
    queue: str
    before: int
    after: int

    @property
    def growing(self) -> bool:
        """True when messages arrived between the two readings."""
        return self.after > self.before

    def warning(self, interval_s: float) -> str:
        """The line ``eventsink status`` prints for this queue."""
        if self.growing:
            what = f"grew from {self.before} to {self.after} messages in {interval_s:g} s with no consumer"
        else:
            what = f"holds {self.after} messages with no consumer"
        return (f"warning: queue {self.queue} {what}; start the worker (eventsink worker run {self.worker}) "
                f"or delete its queues (eventsink topology delete --worker {self.worker})")


def idle_queues(
    settings: SinkSettings,
    rows: Sequence[QueueStatus],
    interval_s: float,
    wait: Callable[[float], None] = time.sleep,
) -> list[IdleQueue]:
    """Queues among ``rows`` with no consumer that hold messages or grew over ``interval_s`` seconds.

    Only queues without a consumer are read again (none: no wait). ``interval_s`` 0 skips the second
    reading, so only queues already holding messages are reported.
    """
    unconsumed = [r for r in rows if r.consumers == 0 and r.messages is not None]
    if not unconsumed:
        return []
    later = {r.worker: r for r in unconsumed}
    if interval_s > 0:
        wait(interval_s)
        later = {r.worker: r for r in queue_status(settings, [r.worker for r in unconsumed])}
    found = []
    for first in unconsumed:
        second = later[first.worker]
        if second.consumers == 0 and second.messages:
            found.append(IdleQueue(first.worker, first.queue, first.messages or 0, second.messages))
    return found
