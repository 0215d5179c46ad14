"""Removing a worker's queues: ``eventsink topology delete --worker NAME``.

A worker that stopped for good leaves ``<exchange>.W`` bound to the fanout exchange, where every
event keeps landing. Deleting it (and its dead-letter queue ``<exchange>.W.dead``) is refused while
anything would be lost or cut off: a consumer on the live queue, messages in it, or dead letters;
``force`` deletes anyway. Quorum queues do not support the broker's own ``if-unused`` / ``if-empty``
guards, so the check reads the queues first; a consumer attaching in between is cut off as with
``force``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pika.exceptions

from .errors import BrokerError, QueueInUseError, TopologyError
from .settings import SinkSettings
from .topology import connect, dead_queue_name, queue_name, queue_status


@dataclass(frozen=True)
class DeletedQueues:
    """What ``delete_worker_queues`` removed: each queue with the messages it held (None: absent)."""

    worker: str
    queue: str
    messages: int | None
    dead_queue: str
    dead_letters: int | None


def refusal(worker: str, consumers: int | None, messages: int | None, dead_letters: int | None) -> str | None:
    """Why deleting ``worker``'s queues would lose or cut off something, or None when nothing would be."""
    reasons = []
    if consumers:
        reasons.append(f"{consumers} consumer(s) attached (stop the worker first)")
    if messages:
        reasons.append(f"{messages} message(s) not yet delivered")
    if dead_letters:
        reasons.append(f"{dead_letters} dead letter(s) (see eventsink dead list {worker})")
    return "; ".join(reasons) or None


def delete_worker_queues(settings: SinkSettings, worker: str, *, force: bool = False) -> DeletedQueues:
    """Delete ``<exchange>.<worker>`` and ``<exchange>.<worker>.dead``; return what each held.

    Raises QueueInUseError (naming consumers, messages and dead letters) unless ``force``, TopologyError
    when neither queue exists, and BrokerError when RabbitMQ cannot be reached.
    """
    (status,) = queue_status(settings, [worker])
    if status.messages is None and status.dead_letters is None:
        raise TopologyError(
            f"worker {worker!r} has no queues on exchange {settings.exchange!r} "
            f"(neither {status.queue} nor {dead_queue_name(settings.exchange, worker)} exists)"
        )
    reason = refusal(worker, status.consumers, status.messages, status.dead_letters)
    if reason and not force:
        raise QueueInUseError(f"not deleting the queues of worker {worker!r}: {reason}; --force deletes anyway")
    live, dead = queue_name(settings.exchange, worker), dead_queue_name(settings.exchange, worker)
    connection = connect(settings, name="eventsink topology delete")
    try:
        channel = connection.channel()
        messages = channel.queue_delete(live).method.message_count if status.messages is not None else None
        dead_letters = channel.queue_delete(dead).method.message_count if status.dead_letters is not None else None
    except pika.exceptions.AMQPError as exc:
        raise BrokerError(f"deleting the queues of worker {worker!r} failed: {exc!r}") from exc
    finally:
        if connection.is_open:
            connection.close()
    return DeletedQueues(worker, live, messages, dead, dead_letters)
