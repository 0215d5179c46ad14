"""The ack policy, in one place: what becomes of every delivery of a batch.

=====================================================  ====================================================
what happened to a delivery                            what the runtime does
=====================================================  ====================================================
body is neither a CloudEvent nor a Clowder message     dead-letter with the parse error, then ack
(:mod:`.parse` refused it)
type the plugin does not take                          ack unwritten (counted as skipped)
same event id twice in the batch                       written once; every copy settles with it
``deliver`` returned                                   ack
``deliver`` raised ``RejectEvents`` for some ids       dead-letter each copy with the destination's reason,
                                                       then ack; ``retry_ids`` are retried, the rest acked
``deliver`` raised ``RetryLater`` (all or some ids)    those stay unacked and are delivered again after a
                                                       backoff (``delay_s``, e.g. Retry-After, is a floor);
                                                       what was settled meanwhile is acked first
``deliver`` raised anything else                       the whole attempt is retried like ``RetryLater``,
                                                       logged with its traceback and counted as an error
the worker stops while waiting to retry                the unwritten rest is returned to the queue (nack
                                                       with requeue, by the consumer at shutdown)
=====================================================  ====================================================

Dead letters are stored (broker-confirmed) before the original is acked, so nothing is lost between
the two. The mechanisms live elsewhere: :mod:`.parse` (bodies to events), :mod:`.processor` (runs the
steps, waits, counts), :mod:`.batcher` (batches, fewest acks), :mod:`.deadletter` (confirmed dead
letters with their reason) and :mod:`.consumer` (the AMQP channel).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from sink_lib.errors import EventValidationError
from sink_lib.event import Event

from ..errors import RejectEvents, RetryLater
from .batcher import Delivery
from .parse import parse_body


@dataclass
class Prepared:
    """A parsed batch: events to write (distinct ids, arrival order) and what needs no write."""

    events: dict[str, Event] = field(default_factory=dict)
    tags: dict[str, list[int]] = field(default_factory=dict)  # event id -> its deliveries' tags
    deliveries: dict[int, Delivery] = field(default_factory=dict)
    malformed: list[tuple[Delivery, str]] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    duplicates: int = 0

    def tags_of(self, ids: Iterable[str]) -> list[int]:
        """Delivery tags of the given event ids (every copy of a duplicate)."""
        return [tag for event_id in ids for tag in self.tags.get(event_id, ())]


def prepare(
    batch: Sequence[Delivery], takes: Callable[[Event], bool], parse: Callable[[bytes], Event] = parse_body
) -> Prepared:
    """Parse ``batch`` with ``parse``; sort deliveries into events to write, malformed ones and skipped ones."""
    out = Prepared()
    events, tags = out.events, out.tags
    for delivery in batch:
        out.deliveries[delivery.tag] = delivery
        try:
            event = parse(delivery.body)
        except EventValidationError as exc:
            out.malformed.append((delivery, f"malformed event: {exc}"))
            continue
        if not takes(event):
            out.skipped.append(delivery.tag)
            continue
        known = tags.get(event.id)
        if known is None:
            events[event.id] = event
            tags[event.id] = [delivery.tag]
        else:
            known.append(delivery.tag)
            out.duplicates += 1
    return out


@dataclass
class Outcome:
    """What one ``deliver`` attempt did to the ids it was given."""

    written: set[str]
    rejected: dict[str, str]
    retry: set[str]
    delay_s: float | None = None
    reason: str = ""
    unexpected: bool = False


def outcome(ids: Iterable[str], error: BaseException | None) -> Outcome:
    """Classify a ``deliver`` attempt over ``ids`` by the exception it raised (None: success).

    Ids a plugin names that were not in the batch are ignored. An unexpected exception counts as a
    transient failure of the whole batch (retried; the caller logs it with its traceback).
    """
    attempted = set(ids)
    if error is None:
        return Outcome(written=attempted, rejected={}, retry=set())
    if isinstance(error, RetryLater):
        retry = attempted if error.event_ids is None else attempted & error.event_ids
        return Outcome(attempted - retry, {}, retry, delay_s=error.delay_s, reason=error.reason)
    if isinstance(error, RejectEvents):
        rejected = {i: r for i, r in error.reasons.items() if i in attempted}
        retry = (attempted & error.retry_ids) - rejected.keys()
        return Outcome(attempted - retry - rejected.keys(), rejected, retry, reason=str(error))
    return Outcome(set(), {}, attempted, reason=f"{type(error).__name__}: {error}", unexpected=True)


@dataclass
class Settlement:
    """The actions one step of a batch calls for, carried out in this order: dead letters, then acks.

    ``retry`` lists the event ids (in arrival order) still to be delivered, after a backoff when the
    step was a failed ``deliver``; their deliveries stay unacked meanwhile.
    """

    dead_letters: list[tuple[Delivery, str]]
    ack: list[int]
    retry: list[str]


def settle_parsed(prepared: Prepared) -> Settlement:
    """Before any write: skipped deliveries are acked, malformed ones dead-lettered and acked."""
    malformed = [delivery.tag for delivery, _ in prepared.malformed]
    return Settlement(list(prepared.malformed), [*prepared.skipped, *malformed], list(prepared.events))


def settle_attempt(prepared: Prepared, pending: Sequence[str], result: Outcome) -> Settlement:
    """After a ``deliver`` of ``pending``: written and rejected events settle, the rest is retried."""
    dead_letters = [(prepared.deliveries[tag], reason)
                    for event_id, reason in result.rejected.items() for tag in prepared.tags.get(event_id, ())]
    ack = prepared.tags_of(result.written) + [delivery.tag for delivery, _ in dead_letters]
    return Settlement(dead_letters, ack, [event_id for event_id in pending if event_id in result.retry])
