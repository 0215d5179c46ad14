"""The ack policy, in one place: what each delivery of a batch becomes after parsing and ``deliver``.

:func:`prepare` parses a batch (malformed bodies are dead-lettered, types the plugin does not take are
acked unwritten, duplicate ids are written once). :func:`outcome` maps what ``deliver`` did (returned,
raised RetryLater, RejectEvents, or anything else) onto written / rejected / retry sets of event ids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from sink_lib.errors import EventValidationError
from sink_lib.event import Event

from ..errors import RejectEvents, RetryLater
from .batcher import Delivery
from .clowder import ClowderConverter

_DEFAULT_CONVERTER = ClowderConverter()
NOT_CLOWDER = "not a Clowder event-sink message either (no 'category' key in a JSON object)"


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


def parse_body(body: bytes, clowder: ClowderConverter = _DEFAULT_CONVERTER) -> Event:
    """Parse one message body: a CloudEvent, or a Clowder event-sink message converted to one.

    This is the one place where messages of other producers become events, before any plugin sees
    them. EventValidationError (ClowderMessageError for Clowder's shape) says why a body is neither.
    """
    if b'"specversion"' in body:  # every CloudEvent has it; Clowder's messages skip a failing parse
        try:
            # pydantic-core's JSON parser is the fast path; Event.parse gives the precise error message
            return Event.model_validate_json(body)
        except ValueError:
            pass
    message = clowder.recognise(body)
    if message is not None:
        return clowder.convert(message)
    try:
        return Event.parse(body)
    except EventValidationError as exc:
        raise EventValidationError([*exc.errors, {"field": "body", "message": NOT_CLOWDER}], exc.event_type) from None


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
