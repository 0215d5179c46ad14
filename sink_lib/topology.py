"""Broker topology: the fanout exchange, one durable queue per worker, and their dead-letter queues.

Declared idempotently by ``eventsink topology declare`` and by each component when it starts::

    exchange <exchange>        fanout, durable
    queue    <exchange>.W      durable, quorum (or classic), x-dead-letter-exchange=<exchange>.dead,
                               x-dead-letter-routing-key=W, x-delivery-limit (quorum)
    exchange <exchange>.dead   direct, durable
    queue    <exchange>.W.dead durable, bound to <exchange>.dead with key W
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

import pika
import pika.exceptions

from .errors import BrokerError, TopologyError
from .nodes import BrokerNodes, node_label, redact_url
from .settings import SinkSettings

WORKERS_ENTRY_POINT_GROUP = "eventsink.workers"
log = logging.getLogger("sink_lib.topology")


def queue_name(exchange: str, worker: str) -> str:
    """The live queue of ``worker``: ``<exchange>.<worker>``."""
    return f"{exchange}.{worker}"


def dead_exchange_name(exchange: str) -> str:
    """The dead-letter exchange: ``<exchange>.dead``."""
    return f"{exchange}.dead"


def dead_queue_name(exchange: str, worker: str) -> str:
    """The dead-letter queue of ``worker``: ``<exchange>.<worker>.dead``."""
    return f"{exchange}.{worker}.dead"


def installed_workers() -> list[str]:
    """Names of the worker plugins installed under the ``eventsink.workers`` entry-point group."""
    return sorted({ep.name for ep in entry_points(group=WORKERS_ENTRY_POINT_GROUP)})


def quorum_group_size(settings: SinkSettings) -> int | None:
    """Replicas of a new quorum queue: the setting, else 3 when 3 or more nodes are configured, else None.

    None leaves the choice to RabbitMQ (every cluster member). Three replicas survive the loss of one
    node; more cost publish throughput for no gain in a 3-node cluster.
    """
    if settings.quorum_group_size is not None:
        return settings.quorum_group_size
    return 3 if len(settings.amqp_url.split(",")) >= 3 else None


def queue_arguments(settings: SinkSettings, worker: str) -> dict[str, Any]:
    """Arguments of a worker's live queue, exactly as declared (they must match on redeclare)."""
    args: dict[str, Any] = {
        "x-queue-type": settings.queue_type,
        "x-dead-letter-exchange": dead_exchange_name(settings.exchange),
        "x-dead-letter-routing-key": worker,
    }
    if settings.queue_type == "quorum":
        args["x-delivery-limit"] = settings.delivery_limit
        group = quorum_group_size(settings)
        if group:
            args["x-quorum-initial-group-size"] = group
    return args


def declare_exchange(channel: Any, settings: SinkSettings) -> None:
    """Declare the fanout exchange events are published to."""
    channel.exchange_declare(settings.exchange, exchange_type="fanout", durable=True)


def declare_worker(channel: Any, settings: SinkSettings, worker: str) -> str:
    """Declare one worker's live queue, dead-letter exchange and queue; return the live queue name."""
    dead_exchange = dead_exchange_name(settings.exchange)
    channel.exchange_declare(dead_exchange, exchange_type="direct", durable=True)
    dead_queue = dead_queue_name(settings.exchange, worker)
    channel.queue_declare(dead_queue, durable=True, arguments={"x-queue-type": settings.queue_type})
    channel.queue_bind(dead_queue, dead_exchange, routing_key=worker)
    live = queue_name(settings.exchange, worker)
    channel.queue_declare(live, durable=True, arguments=queue_arguments(settings, worker))
    channel.queue_bind(live, settings.exchange)
    return live


def connect(settings: SinkSettings, *, name: str = "eventsink",
            nodes: BrokerNodes | None = None) -> pika.BlockingConnection:
    """A blocking connection to the first node that answers, for administrative work.

    Errors are wrapped as BrokerError. ``nodes`` keeps a caller's place in the node list between calls.
    """
    nodes = nodes if nodes is not None else BrokerNodes(settings.amqp_url, shuffle=settings.amqp_shuffle)

    def attempt(url: str) -> pika.BlockingConnection:
        params = pika.URLParameters(url)
        params.client_properties = {"connection_name": name}
        params.connection_attempts = 1
        params.socket_timeout = 5
        return pika.BlockingConnection(params)

    try:
        connection = nodes.connect(attempt, (pika.exceptions.AMQPError, OSError))
    except (pika.exceptions.AMQPError, OSError) as exc:
        raise BrokerError(f"cannot connect to RabbitMQ at {redact_url(settings.amqp_url)}: {exc!r}") from exc
    log.info("%s connected to RabbitMQ node %s", name, node_label(nodes.current))
    return connection


def declare(settings: SinkSettings, workers: Iterable[str] | None = None) -> list[str]:
    """Declare the exchange and the queues of ``workers`` (default: every installed plugin).

    Idempotent: declaring twice with the same settings changes nothing. A queue that exists with
    other arguments (say, classic where quorum is asked) raises TopologyError naming it.
    """
    names = list(installed_workers() if workers is None else workers)
    connection = connect(settings, name="eventsink topology")
    declared: list[str] = []
    try:
        channel = connection.channel()
        declare_exchange(channel, settings)
        for worker in names:
            try:
                declared.append(declare_worker(channel, settings, worker))
            except pika.exceptions.ChannelClosedByBroker as exc:
                raise TopologyError(
                    f"declaring the queues of worker {worker!r} failed: {exc.reply_text} "
                    "(an existing queue with other arguments must be deleted or the settings matched)"
                ) from exc
    except pika.exceptions.AMQPError as exc:
        if isinstance(exc, pika.exceptions.ChannelClosedByBroker):
            raise TopologyError(f"declaring exchange {settings.exchange!r} failed: {exc.reply_text}") from exc
        raise BrokerError(f"topology declaration failed: {exc!r}") from exc
    finally:
        if connection.is_open:
            connection.close()
    return declared


@dataclass(frozen=True)
class QueueStatus:
    """Depth and consumers of one worker's live queue and its dead-letter queue."""

    worker: str
    queue: str
    messages: int | None
    consumers: int | None
    dead_letters: int | None


def queue_status(settings: SinkSettings, workers: Iterable[str] | None = None) -> list[QueueStatus]:
    """Read each worker queue's depth, consumers and dead letters (None where a queue is absent)."""
    names = list(installed_workers() if workers is None else workers)
    connection = connect(settings, name="eventsink status")
    out = []
    try:
        for worker in names:
            live = _passive(connection, queue_name(settings.exchange, worker))
            dead = _passive(connection, dead_queue_name(settings.exchange, worker))
            out.append(
                QueueStatus(
                    worker=worker,
                    queue=queue_name(settings.exchange, worker),
                    messages=live[0] if live else None,
                    consumers=live[1] if live else None,
                    dead_letters=dead[0] if dead else None,
                )
            )
    finally:
        if connection.is_open:
            connection.close()
    return out


def _passive(connection: pika.BlockingConnection, queue: str) -> tuple[int, int] | None:
    channel = connection.channel()
    pika_log = logging.getLogger("pika.channel")
    level = pika_log.level
    pika_log.setLevel(logging.ERROR)  # a missing queue is an answer here, not a warning
    try:
        ok = channel.queue_declare(queue, passive=True)
    except pika.exceptions.ChannelClosedByBroker:
        return None
    finally:
        pika_log.setLevel(level)
    result = (ok.method.message_count, ok.method.consumer_count)
    channel.close()
    return result
