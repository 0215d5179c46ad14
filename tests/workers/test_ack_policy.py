"""The ack policy's table, step by step, without a broker: which deliveries are dead-lettered, acked or retried."""

from __future__ import annotations

import json

import pika

from workers.errors import RejectEvents, RetryLater
from workers.runtime import Delivery, outcome, prepare, settle_attempt, settle_parsed

from .helpers import make_event


def delivery(tag: int, body: dict | bytes) -> Delivery:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Delivery(tag, raw, pika.BasicProperties())


def test_before_any_write_skipped_are_acked_and_malformed_dead_lettered_then_acked() -> None:
    # Given a batch with one event to write, one the plugin does not take and one that is not an event
    wanted, other = make_event(), make_event("health.status", service="db", state="down")
    prepared = prepare([delivery(1, wanted), delivery(2, other), delivery(3, b"{nope")],
                       lambda e: e.type.startswith("storage."))
    # When the parsed batch is settled
    step = settle_parsed(prepared)
    # Then only the malformed one is dead-lettered, both unwritable ones are acked, the event waits for its write
    assert [(d.tag, "malformed event" in reason) for d, reason in step.dead_letters] == [(3, True)]
    assert step.ack == [2, 3] and step.retry == [wanted["id"]]


def test_a_rejected_event_is_dead_lettered_for_every_copy_and_retry_ids_stay_unacked() -> None:
    # Given three events, the first delivered twice
    a, b, c = make_event(), make_event(), make_event()
    prepared = prepare([delivery(1, a), delivery(2, b), delivery(3, a), delivery(4, c)], lambda e: True)
    pending = list(prepared.events)
    # When the destination rejects a and asks for c again
    result = outcome(pending, RejectEvents({a["id"]: "too big"}, retry_ids=[c["id"]]))
    step = settle_attempt(prepared, pending, result)
    # Then both copies of a are dead-lettered with the reason, b is acked, a's copies too, c waits
    assert [(d.tag, reason) for d, reason in step.dead_letters] == [(1, "too big"), (3, "too big")]
    assert sorted(step.ack) == [1, 2, 3] and step.retry == [c["id"]]


def test_retry_later_settles_nothing_of_the_ids_it_names() -> None:
    a, b = make_event(), make_event()
    prepared = prepare([delivery(1, a), delivery(2, b)], lambda e: True)
    pending = list(prepared.events)
    step = settle_attempt(prepared, pending, outcome(pending, RetryLater("down", event_ids=[b["id"]])))
    assert step.dead_letters == [] and step.ack == [1] and step.retry == [b["id"]]


def test_an_unexpected_error_retries_the_whole_attempt() -> None:
    a, b = make_event(), make_event()
    prepared = prepare([delivery(1, a), delivery(2, b)], lambda e: True)
    pending = list(prepared.events)
    step = settle_attempt(prepared, pending, outcome(pending, KeyError("bug")))
    assert step.ack == [] and step.retry == pending
