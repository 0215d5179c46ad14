"""The AMQP loop of a worker: consume, batch, deliver, ack; reconnect and back off; stop gracefully.

One :class:`QueueConsumer` drains the queue ``<exchange>.<plugin.name>`` into one plugin, on a pika
BlockingConnection: ``basic_consume`` fills a :class:`~.batcher.Batcher` while
``process_data_events(time_limit)`` runs, and each ready batch goes to the
:class:`~.processor.BatchProcessor` (parse, ``plugin.deliver``, outcome). Deliveries are acked
(``multiple`` where possible) only once written, dead-lettered or skipped; a batch the destination
cannot take stays unacked in memory and is retried after a backoff, so a destination outage never
counts against the quorum delivery limit.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import pika
import pika.exceptions

from sink_lib.errors import BrokerError, EventSinkError, TopologyError
from sink_lib.nodes import BrokerNodes
from sink_lib.retry import Backoff
from sink_lib.settings import SinkSettings
from sink_lib.topology import declare_exchange, declare_worker, queue_name, redact_url

from ..errors import RetryLater
from ..plugin import WorkerPlugin
from .batcher import AckTracker, Batcher, Delivery
from .deadletter import DeadLetterPublisher
from .metrics import WorkerMetrics
from .processor import BatchProcessor

log = logging.getLogger(__name__)

POLL_S = 0.2  # longest time between two looks at the stop event
DEPTH_EVERY_S = 5.0
FATAL_BROKER_ERRORS = (pika.exceptions.ProbableAuthenticationError, pika.exceptions.ProbableAccessDeniedError)


class QueueConsumer:
    """Runs one plugin against its queue until ``stop_event`` is set.

    ``dry_run``: consume and parse, log what would be written, write and ack nothing (every message
    is returned to the queue at exit), and never open the destination.
    """

    def __init__(
        self,
        plugin: WorkerPlugin,
        sink_settings: SinkSettings,
        *,
        metrics: WorkerMetrics | None = None,
        dry_run: bool = False,
        stop_event: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.plugin, self.sink, self.name = plugin, sink_settings, plugin.name
        ws = plugin.settings
        self.batch_size, self.batch_timeout_s = ws.batch_size, ws.batch_timeout_s
        self.prefetch = ws.prefetch or 2 * ws.batch_size
        self.queue = queue_name(sink_settings.exchange, self.name)
        self.metrics = metrics if metrics is not None else WorkerMetrics(self.name)
        self.metrics.include(plugin)
        self.dry_run = dry_run
        self.stop_event = stop_event if stop_event is not None else threading.Event()
        self._clock = clock
        self._destination_backoff = Backoff(ws.backoff_min_s, max(ws.backoff_max_s, ws.backoff_min_s))
        self._broker_backoff = Backoff(
            sink_settings.reconnect_min_s, max(sink_settings.reconnect_max_s, sink_settings.reconnect_min_s)
        )
        self._nodes = BrokerNodes(sink_settings.amqp_url, shuffle=sink_settings.amqp_shuffle)
        self.node: str | None = None  # host:port of the node consumed from, None while not connected
        self._lost: tuple[str, float] | None = None  # the node lost and when, until consuming elsewhere
        self._connection: Any = None
        self._channel: Any = None
        self._dead: DeadLetterPublisher | None = None
        self._batcher = Batcher(self.batch_size, self.batch_timeout_s, clock=clock)
        self._acks = AckTracker()
        self._processor = BatchProcessor(
            plugin, self.metrics, self._destination_backoff, ack=self._ack, dead_letter=self._dead_letter,
            wait=self._wait, dry_run=dry_run, clock=clock,
        )

    @property
    def stopping(self) -> bool:
        """True once a stop was asked for."""
        return self.stop_event.is_set()

    # -- lifecycle -----------------------------------------------------------------------------------

    def run(self) -> None:
        """Open the destination, then consume until stopped, reconnecting to the broker as needed.

        Raises EventSinkError subclasses for what retrying cannot fix (bad configuration, refused
        credentials, a queue declared with other arguments).
        """
        try:
            if not self.dry_run and not self._open_plugin():
                return
            while not self.stopping:
                try:
                    self._session()
                except FATAL_BROKER_ERRORS as exc:
                    raise BrokerError(
                        f"RabbitMQ at {redact_url(self.sink.amqp_url)} refused the worker: {exc!r}"
                    ) from exc
                except (pika.exceptions.AMQPError, BrokerError, OSError) as exc:
                    if isinstance(exc, TopologyError):
                        raise
                    self.metrics.reconnects.inc()
                    delay = self._broker_backoff.next_delay()
                    log.warning(
                        "worker %s: broker connection to %s lost (%r); reconnecting in %.1fs",
                        self.name, self.node or redact_url(self.sink.amqp_url), exc, delay,
                    )
                    if self.node is not None:  # the node we used failed: start with the next one
                        self._lost = self._lost or (self.node, time.monotonic())
                        self._nodes.failed()
                    self.node = None
                    self._drop_session()
                    self.stop_event.wait(delay)
        finally:
            self._drop_session()
            if not self.dry_run:
                try:
                    self.plugin.close()
                except Exception:  # must not hide why the worker stopped
                    log.exception("worker %s: closing the destination failed", self.name)
            log.info("worker %s stopped", self.name)

    def _open_plugin(self) -> bool:
        """Open the destination, backing off while it is unreachable; False when stopped first."""
        while not self.stopping:
            try:
                self.plugin.open()
            except RetryLater as exc:
                delay = self._destination_backoff.next_delay(exc.delay_s)
                log.warning("worker %s: destination not ready (%s); retrying in %.1fs", self.name, exc, delay)
            except EventSinkError:
                raise
            except Exception:
                self.metrics.errors.inc()
                delay = self._destination_backoff.next_delay()
                log.exception("worker %s: opening the destination failed; retrying in %.1fs", self.name, delay)
            else:
                self._destination_backoff.reset()
                self.metrics.destination_up.set(1)
                return True
            self.metrics.destination_up.set(0)
            self.stop_event.wait(delay)
        return False

    def _connect(self) -> Any:
        """A connection to the first node of the list that answers, starting from the current one."""
        def attempt(url: str) -> Any:
            params = pika.URLParameters(url)
            params.heartbeat = self.sink.heartbeat_s
            params.connection_attempts = 1
            params.socket_timeout = 5
            # a broker resource alarm blocks publishing (our dead letters); give up and reconnect after a while
            params.blocked_connection_timeout = 120
            params.client_properties = {"connection_name": f"eventsink worker {self.name}"}
            return pika.BlockingConnection(params)

        connection = self._nodes.connect(attempt, (pika.exceptions.AMQPConnectionError, OSError))
        self.node = self._nodes.label
        return connection

    def _session(self) -> None:
        """One broker connection: declare, consume and process until stopped or the connection drops."""
        self._connection = connection = self._connect()
        channel = connection.channel()
        try:
            declare_exchange(channel, self.sink)
            declare_worker(channel, self.sink, self.name)
        except pika.exceptions.ChannelClosedByBroker as exc:
            raise TopologyError(f"declaring the queues of worker {self.name!r} failed: {exc.reply_text}") from exc
        channel.basic_qos(prefetch_count=self.prefetch)
        self._dead = None if self.dry_run else DeadLetterPublisher(connection, self.sink.exchange, self.name)
        self._channel = channel
        self._batcher.clear()
        self._acks = AckTracker()
        cancelled: list[Any] = []
        channel.add_on_cancel_callback(cancelled.append)  # queue deleted, or its leader moved
        consumer_tag = channel.basic_consume(self.queue, self._on_message, auto_ack=False)
        self._broker_backoff.reset()
        log.info(
            "worker %s consuming %s at %s (prefetch %d, batches of %d or %.2fs)%s",
            self.name, self.queue, self.node, self.prefetch, self.batch_size,
            self.batch_timeout_s, " [dry run]" if self.dry_run else "",
        )
        if self._lost is not None:
            log.warning("worker %s moved from RabbitMQ node %s to %s in %.2fs", self.name, self._lost[0],
                        self.node, time.monotonic() - self._lost[1])
            self._lost = None
        next_depth = 0.0
        while not self.stopping:
            left = self._batcher.time_left()
            connection.process_data_events(time_limit=POLL_S if left is None else min(left, POLL_S))
            if self._batcher.ready():
                self._processor.process(self._batcher.take())
            if cancelled:
                raise BrokerError(f"the broker cancelled the consumer of {self.queue}; reconnecting")
            if self._clock() >= next_depth:
                next_depth = self._clock() + DEPTH_EVERY_S
                self.metrics.queue_messages.set(channel.queue_declare(self.queue, passive=True).method.message_count)
        self._shutdown(consumer_tag)

    def _shutdown(self, consumer_tag: str) -> None:
        """Stop consuming, write the buffered deliveries if the destination is up, return the rest.

        Writing what is already here (one attempt, no backoff) spares those messages a redelivery,
        which would count against the quorum delivery limit.
        """
        channel = self._channel
        channel.basic_cancel(consumer_tag)  # pika nacks (requeues) deliveries not yet dispatched to us
        while len(self._batcher) and self._processor.destination_ok and not self.dry_run:
            self._processor.process(self._batcher.take())
        if len(self._acks):
            returned = self._acks.clear()
            channel.basic_nack(delivery_tag=0, multiple=True, requeue=True)
            log.info("worker %s: returned %d unwritten message(s) to %s", self.name, len(returned), self.queue)
        self._connection.close()

    def _drop_session(self) -> None:
        connection, self._connection, self._channel, self._dead = self._connection, None, None, None
        self._batcher.clear()
        self._acks.clear()
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except Exception:  # already broken; the broker requeues what was unacked
                log.debug("closing a broken connection failed", exc_info=True)

    def _wait(self, seconds: float) -> bool:
        """Wait ``seconds`` while servicing the connection; False when stopped first."""
        deadline = self._clock() + seconds
        while not self.stopping:
            left = deadline - self._clock()
            if left <= 0:
                return True
            self._connection.process_data_events(time_limit=min(left, POLL_S))
        return False

    # -- messages --------------------------------------------------------------------------------------

    def _on_message(self, _channel: Any, method: Any, properties: Any, body: bytes) -> None:
        tag = method.delivery_tag
        self._acks.received(tag)
        self._batcher.add(Delivery(tag, body, properties, method.redelivered))

    def _ack(self, tags: Iterable[int]) -> None:
        for tag, multiple in self._acks.settle(tags):
            self._channel.basic_ack(delivery_tag=tag, multiple=multiple)

    def _dead_letter(self, delivery: Delivery, reason: str) -> None:
        assert self._dead is not None
        self._dead.publish(delivery, reason)


Worker = QueueConsumer  # the former name (it read like a plugin's ...Worker); kept for one release
