"""Reading and replaying a worker's dead-letter queue (``eventsink dead list|replay``).

Listing is non-destructive: messages are fetched unacked and returned with one ``nack(requeue)``.
Replaying publishes each matching dead letter to the live queue (default exchange, routing key = queue
name) on a confirm channel and acks the dead letter only after the broker confirmed the copy; the
others are returned to the dead-letter queue untouched.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import pika
import pika.exceptions

from sink_lib.errors import BrokerError
from sink_lib.settings import SinkSettings
from sink_lib.topology import connect, dead_queue_name, queue_name

from .deadletter import EVENTSINK_HEADERS, FAILED_AT_HEADER, reason_of


@dataclass(frozen=True)
class DeadLetter:
    """One dead letter as ``dead list`` shows it."""

    id: str
    type: str
    reason: str
    failed_at: str
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass(frozen=True)
class ReplayResult:
    """What ``dead replay`` did: ids moved back to the live queue, and how many stayed."""

    replayed: list[str]
    kept: int


def describe(properties: Any, body: bytes) -> DeadLetter:
    """Id, type, reason and failure time of a dead letter, from its properties or its body."""
    event_id, event_type = properties.message_id, properties.type
    if not (event_id and event_type):
        try:
            obj = json.loads(body)
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            event_id = event_id or obj.get("id")
            event_type = event_type or obj.get("type")
    headers = properties.headers or {}
    failed_at = headers.get(FAILED_AT_HEADER)
    if failed_at is None and headers.get("x-death"):
        stamp = headers["x-death"][0].get("time")
        failed_at = stamp.isoformat() if hasattr(stamp, "isoformat") else stamp
    if isinstance(failed_at, bytes):
        failed_at = failed_at.decode()
    return DeadLetter(str(event_id or "?"), str(event_type or "?"), reason_of(headers), str(failed_at or "?"),
                      len(body))


def matches(letter: DeadLetter, type_pattern: str | None, ids: Iterable[str] | None) -> bool:
    """True when the dead letter passes both filters (an absent filter passes everything)."""
    if type_pattern is not None and not fnmatch.fnmatchcase(letter.type, type_pattern):
        return False
    id_set = set(ids or ())
    return not id_set or letter.id in id_set


@contextmanager
def _dead_channel(settings: SinkSettings, worker: str) -> Iterator[tuple[Any, int]]:
    connection = connect(settings, name=f"eventsink dead {worker}")
    try:
        channel = connection.channel()
        queue = dead_queue_name(settings.exchange, worker)
        try:
            depth = channel.queue_declare(queue, passive=True).method.message_count
        except pika.exceptions.ChannelClosedByBroker as exc:
            raise BrokerError(f"worker {worker!r} has no dead-letter queue {queue!r}: {exc.reply_text}") from exc
        yield channel, depth
    except pika.exceptions.AMQPError as exc:
        raise BrokerError(f"reading the dead letters of {worker!r} failed: {exc!r}") from exc
    finally:
        if connection.is_open:
            connection.close()


def list_dead(settings: SinkSettings, worker: str, limit: int = 100) -> list[DeadLetter]:
    """Up to ``limit`` dead letters of ``worker``, oldest first, left in the queue."""
    out: list[DeadLetter] = []
    with _dead_channel(settings, worker) as (channel, depth):
        queue = dead_queue_name(settings.exchange, worker)
        for _ in range(min(depth, limit)):
            method, properties, body = channel.basic_get(queue, auto_ack=False)
            if method is None:
                break
            out.append(describe(properties, body))
        if out:
            channel.basic_nack(delivery_tag=0, multiple=True, requeue=True)
    return out


def replay_properties(properties: Any) -> Any:
    """The dead letter's properties without the dead-letter headers (so a new failure writes fresh ones)."""
    headers = {k: v for k, v in (properties.headers or {}).items() if k not in EVENTSINK_HEADERS and k != "x-death"}
    return pika.BasicProperties(
        content_type=properties.content_type,
        delivery_mode=2,
        message_id=properties.message_id,
        type=properties.type,
        timestamp=properties.timestamp,
        headers=headers or None,
    )


def replay_dead(
    settings: SinkSettings,
    worker: str,
    *,
    type_pattern: str | None = None,
    ids: Iterable[str] | None = None,
    limit: int | None = None,
) -> ReplayResult:
    """Move matching dead letters of ``worker`` back to its live queue; the others stay."""
    replayed: list[str] = []
    kept = 0
    id_list = list(ids or ())
    live = queue_name(settings.exchange, worker)
    with _dead_channel(settings, worker) as (channel, depth):
        queue = dead_queue_name(settings.exchange, worker)
        channel.confirm_delivery()
        for _ in range(depth):
            if limit is not None and len(replayed) >= limit:
                break
            method, properties, body = channel.basic_get(queue, auto_ack=False)
            if method is None:
                break
            letter = describe(properties, body)
            if not matches(letter, type_pattern, id_list):
                kept += 1
                continue
            try:
                channel.basic_publish("", live, body, replay_properties(properties), mandatory=True)
            except (pika.exceptions.UnroutableError, pika.exceptions.NackError) as exc:
                raise BrokerError(f"live queue {live!r} did not take the replayed event {letter.id}: {exc!r}") from exc
            channel.basic_ack(method.delivery_tag)
            replayed.append(letter.id)
        if kept:
            channel.basic_nack(delivery_tag=0, multiple=True, requeue=True)
    return ReplayResult(replayed, kept)
