"""Carrying out the ack policy for one batch: parse, hand to the plugin, settle, wait and retry.

What becomes of each delivery is decided in :mod:`.policy`; the :class:`BatchProcessor` only carries
those settlements out (in order: dead letters, then acks), backs off between attempts and keeps the
metrics. It knows nothing about AMQP: the consumer gives it three callables (ack these tags,
dead-letter this delivery, wait while servicing the connection), so it is testable with fakes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import partial
from operator import attrgetter

from sink_lib.retry import Backoff

from ..plugin import WorkerPlugin
from .batcher import Delivery
from .clowder import ClowderConverter
from .metrics import WorkerMetrics
from .parse import parse_body
from .policy import Prepared, Settlement, outcome, prepare, settle_attempt, settle_parsed

log = logging.getLogger(__name__)
_time_of = attrgetter("time")


class BatchProcessor:
    """Runs batches through ``plugin.deliver`` with the runtime's ack, dead-letter and retry policy.

    ``ack(tags)`` settles deliveries; ``dead_letter(delivery, reason)`` must return only once the
    dead letter is safely stored; ``wait(seconds)`` returns False when the worker is stopping.
    """

    def __init__(
        self,
        plugin: WorkerPlugin,
        metrics: WorkerMetrics,
        backoff: Backoff,
        *,
        ack: Callable[[Iterable[int]], None],
        dead_letter: Callable[[Delivery, str], None],
        wait: Callable[[float], bool],
        dry_run: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.plugin, self.metrics, self.backoff = plugin, metrics, backoff
        self.name = plugin.name
        self._ack, self._dead_letter, self._wait = ack, dead_letter, wait
        self.dry_run = dry_run
        self._clock = clock
        self.destination_ok = True  # the last deliver() wrote everything it was given
        converter = ClowderConverter(getattr(plugin.settings, "clowder_keep", None) or ())
        self._parse = partial(parse_body, clowder=converter)

    def process(self, batch: list[Delivery]) -> None:
        """Deliver ``batch``; returns once every delivery is settled, or early when stopping."""
        prepared = prepare(batch, self.plugin.takes, self._parse)
        if self.dry_run:
            self._log_dry_run(prepared)
            return
        if prepared.duplicates:
            self.metrics.duplicates.inc(prepared.duplicates)
        if prepared.skipped:
            self.metrics.skipped.inc(len(prepared.skipped))
        step = settle_parsed(prepared)
        for delivery, reason in step.dead_letters:
            log.warning("worker %s: dead-lettering message %d: %s", self.name, delivery.tag, reason)
            self.metrics.rejected("malformed").inc()
        settled = self._dead_letter_all(step)
        pending = step.retry
        while pending:
            step, delay = self._attempt(prepared, pending)
            settled.extend(self._dead_letter_all(step))
            if not step.retry:
                break
            if settled:
                self._ack(settled)
                settled = []
            if not self._wait(delay):
                return  # stopping: the consumer returns the unwritten rest to the queue
            pending = step.retry
        if settled:
            self._ack(settled)

    def _dead_letter_all(self, step: Settlement) -> list[int]:
        """Store the step's dead letters (each confirmed); returns the tags it settles."""
        for delivery, reason in step.dead_letters:
            self._dead_letter(delivery, reason)
        return list(step.ack)

    def _attempt(self, prepared: Prepared, pending: list[str]) -> tuple[Settlement, float]:
        """One ``deliver`` of ``pending``: what it settles, and the delay before retrying the rest."""
        events = [prepared.events[event_id] for event_id in pending]
        started = self._clock()
        error: BaseException | None = None
        try:
            self.plugin.deliver(events)
        except Exception as exc:
            error = exc
        self.metrics.batch_seconds.observe(self._clock() - started)
        result = outcome(pending, error)
        if result.unexpected:
            self.metrics.errors.inc()
            log.error("worker %s: deliver() raised unexpectedly; retrying the batch", self.name, exc_info=error)
        if result.written:
            self.metrics.processed.inc(len(result.written))
            # map/attrgetter keep the per-event loop in C (this runs for every event written)
            written = events if len(result.written) == len(events) else map(prepared.events.get, result.written)
            oldest = min(map(_time_of, written))
            self.metrics.lag_seconds.set((datetime.now(UTC) - oldest).total_seconds())
        for event_id, reason in result.rejected.items():
            log.warning("worker %s: destination rejected event %s: %s", self.name, event_id, reason)
            self.metrics.rejected("rejected").inc()
        step = settle_attempt(prepared, pending, result)
        self.destination_ok = not result.retry
        if not result.retry:
            self.backoff.reset()
            self.metrics.destination_up.set(1)
            return step, 0.0
        self.metrics.retried.inc(len(result.retry))
        self.metrics.destination_up.set(0)
        delay = self.backoff.next_delay(result.delay_s)
        log.warning(
            "worker %s: %d event(s) not written (%s); retrying in %.1fs",
            self.name, len(result.retry), result.reason, delay,
        )
        return step, delay

    def _log_dry_run(self, prepared: Prepared) -> None:
        for event in prepared.events.values():
            log.info("dry run: would write %s %s %s", event.id, event.type, event.time.isoformat())
        for delivery, reason in prepared.malformed:
            log.info("dry run: would dead-letter message %d: %s", delivery.tag, reason)
        log.info(
            "dry run: batch of %d: %d to write, %d skipped, %d duplicate, %d malformed (nothing acked)",
            len(prepared.deliveries), len(prepared.events), len(prepared.skipped), prepared.duplicates,
            len(prepared.malformed),
        )
