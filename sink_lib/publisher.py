"""The background publisher: one thread, one pika SelectConnection, pipelined publisher confirms.

Online, the thread keeps up to ``confirm_window`` messages unconfirmed at once: spooled events first
(oldest first), then the in-memory queue. Acks settle events; nacks put them back to be retried; on a
lost connection every unconfirmed event is put back too (so delivery is at least once; consumers
dedupe by event id). When its node fails it moves straight to the next node of ``EVENTSINK_AMQP_URL``;
once every node failed in a row it is offline: it moves the in-memory queue into the durable spool and
reconnects with exponential backoff.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import OrderedDict
from typing import Any

import pika
import pika.exceptions
from pika.adapters.select_connection import SelectConnection

from .errors import SpoolError
from .event import CONTENT_TYPE
from .frames import PublishEncoder
from .nodes import BrokerNodes, redact_url
from .outbox import Item, Outbox, PreparedEvent
from .prepared import replay_headers
from .retry import Backoff
from .settings import SinkSettings
from .spool import Spool, SpoolRecord

log = logging.getLogger("sink_lib.publisher")

SPOOL_BATCH = 1000
SPOOL_POLL_S = 5.0
# While events flow, the publisher looks at the queue every POLL_S instead of being woken per event:
# waking it means a syscall in emit(), which hands the GIL to the publisher thread mid-emit. After
# IDLE_AFTER_S without events it goes back to being woken (no CPU spent while nothing happens).
POLL_S = 0.002
IDLE_AFTER_S = 1.0


def amqp_properties(event_id: str, event_type: str, timestamp: int) -> pika.BasicProperties:
    """The AMQP properties every event carries (docs/architecture.md, "Messages on the broker")."""
    return pika.BasicProperties(
        content_type=CONTENT_TYPE,
        delivery_mode=2,
        message_id=event_id,
        type=event_type,
        timestamp=timestamp,
    )


class Publisher(threading.Thread):
    """Publishes the outbox and the spool to the fanout exchange until stopped."""

    def __init__(self, settings: SinkSettings, outbox: Outbox, spool: Spool) -> None:
        super().__init__(name="eventsink-publisher", daemon=True)
        self.settings = settings
        self.outbox = outbox
        self.spool = spool
        self._stopping = threading.Event()
        self._connection: SelectConnection | None = None
        self._channel: Any = None
        self._tag = 0
        self._inflight: OrderedDict[int, Item | SpoolRecord] = OrderedDict()
        self._spool_buffer: list[SpoolRecord] = []
        self._spool_maybe = True  # the spool may hold records; checked at connect and periodically
        self._last_spool_check = 0.0
        self._backoff = Backoff(settings.reconnect_min_s, max(settings.reconnect_max_s, settings.reconnect_min_s))
        self._nodes = BrokerNodes(settings.amqp_url, shuffle=settings.amqp_shuffle)
        self._was_ready = False
        self._lost_node: str | None = None
        self._lost_at = 0.0
        self.node: str | None = None  # host:port of the node in use, None while not connected
        self._offline_logged = False
        self._encoder: PublishEncoder | None = None
        self._write: Any = None
        self._polling = False
        self._last_active = 0.0
        self._pipe_waker: Any = None
        self._retry_now = threading.Event()
        self.sessions_ended = 0  # connections (or attempts) that ended; close() watches it

    # -- thread --------------------------------------------------------------------------------

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._serve()
            except Exception:  # never let the publisher die: events would pile up unseen
                log.exception("publisher loop failed; reconnecting")
            self._go_offline()
            if self._stopping.is_set():
                break
            if self._was_ready:  # a node we used went away: try the others at once
                self._lost_node, self._lost_at = self._nodes.label, time.monotonic()
                self._was_ready = False
                self._nodes.failed()
                continue
            if self._nodes.failed():  # every node failed in a row: spool and back off
                if not self._offline_logged:
                    log.warning("RabbitMQ unreachable at %s; events go to the spool %s",
                                redact_url(self.settings.amqp_url), self.spool.path)
                    self._offline_logged = True
                self._offline(self._backoff.next_delay())
        self._spool_memory(final=True)

    def stop(self) -> None:
        """Ask the thread to finish: close the connection, spool what is left in memory."""
        self._stopping.set()
        connection = self._connection
        if connection is not None:
            with contextlib.suppress(Exception):  # the loop may already be gone
                connection.ioloop.add_callback_threadsafe(self._close)
        with self.outbox.lock:
            self.outbox.cond.notify_all()

    def deliver_spool_now(self) -> int:
        """Replay the spool at once: now if connected, else by reconnecting without waiting out the backoff.

        Thread-safe. Returns ``sessions_ended`` as it was, so a caller can tell when the attempt ended.
        """
        ended = self.sessions_ended
        self._spool_maybe = True
        self._retry_now.set()
        connection = self._connection
        if connection is not None:
            with contextlib.suppress(Exception):  # the loop may be gone already: the next one replays
                connection.ioloop.add_callback_threadsafe(self._pump)
        with self.outbox.lock:
            self.outbox.cond.notify_all()
        return ended

    # -- online --------------------------------------------------------------------------------

    def _parameters(self) -> pika.URLParameters:
        params = pika.URLParameters(self._nodes.current)
        params.heartbeat = self.settings.heartbeat_s
        params.connection_attempts = 1
        params.socket_timeout = 5
        params.client_properties = {"connection_name": f"eventsink publisher {self.settings.source}"}
        return params

    def _serve(self) -> None:
        self._connection = SelectConnection(
            self._parameters(),
            on_open_callback=self._on_open,
            on_open_error_callback=self._on_open_error,
            on_close_callback=self._on_closed,
        )
        self._connection.ioloop.start()

    def _on_open_error(self, connection: Any, error: BaseException) -> None:
        log.info("RabbitMQ node %s did not answer (%r)", self._nodes.label, error)
        connection.ioloop.stop()

    def _on_closed(self, connection: Any, reason: BaseException) -> None:
        if not self._stopping.is_set():
            log.warning("connection to RabbitMQ lost (%r); retrying", reason)
        connection.ioloop.stop()

    def _close(self) -> None:
        if self._connection is not None and self._connection.is_open:
            self._connection.close()
        elif self._connection is not None:
            self._connection.ioloop.stop()

    def _on_open(self, connection: Any) -> None:
        connection.channel(on_open_callback=self._on_channel)

    def _on_channel(self, channel: Any) -> None:
        self._channel = channel
        channel.add_on_close_callback(self._on_channel_closed)
        channel.confirm_delivery(self._on_confirm, callback=lambda _frame: self._declare())

    def _declare(self) -> None:
        self._channel.exchange_declare(
            self.settings.exchange, exchange_type="fanout", durable=True, callback=lambda _f: self._ready()
        )

    def _on_channel_closed(self, channel: Any, reason: BaseException) -> None:
        if not self._stopping.is_set():
            log.error("publisher channel closed: %r", reason)
        if self._connection is not None and self._connection.is_open:
            self._connection.close()

    def _ready(self) -> None:
        self._tag = 0
        assert self._connection is not None
        # Direct frame encoding (see frames.py) when pika exposes its frame writer; else basic_publish.
        self._write = getattr(self._connection, "_output_marshaled_frames", None)
        body_max = getattr(self._connection, "_body_max_length", None)
        self._encoder = None
        if self._write is not None and isinstance(body_max, int):
            self._encoder = PublishEncoder(self._channel.channel_number, self.settings.exchange, body_max)
        self._backoff.reset()
        self._retry_now.clear()
        self._nodes.succeeded()
        self._was_ready = True
        self.node = self._nodes.label
        if self._lost_node is not None:
            log.warning("publisher moved from RabbitMQ node %s to %s in %.2fs", self._lost_node, self.node,
                        time.monotonic() - self._lost_at)
        elif self._offline_logged:
            log.warning("connected to RabbitMQ node %s again; replaying the spool", self.node)
        else:
            log.info("publisher connected to RabbitMQ node %s", self.node)
        self._lost_node = None
        self._offline_logged = False
        self._spool_maybe = True
        assert self._connection is not None
        ioloop = self._connection.ioloop
        self._pipe_waker = lambda: ioloop.add_callback_threadsafe(self._on_wake)
        self._polling = False
        with self.outbox.lock:
            self.outbox.connected = True
            self.outbox.wake_pending = False
            self.outbox.urgent_waker = self._pipe_waker
        self._start_polling()
        self._schedule_spool_check()
        self._pump()

    def _on_wake(self) -> None:
        self._start_polling()
        self._pump()

    def _start_polling(self) -> None:
        self._last_active = time.monotonic()
        if self._polling or self._connection is None:
            return
        self._polling = True
        with self.outbox.lock:
            self.outbox.waker = None
        self._connection.ioloop.call_later(POLL_S, self._poll)

    def _poll(self) -> None:
        connection = self._connection
        if connection is None or self._stopping.is_set() or self._channel is None:
            self._polling = False
            return
        if self._pump() or self._inflight:
            self._last_active = time.monotonic()
        elif time.monotonic() - self._last_active > IDLE_AFTER_S:
            with self.outbox.lock:
                if not self.outbox.items:  # idle: be woken by the next emit instead of polling
                    self._polling = False
                    self.outbox.wake_pending = False
                    self.outbox.waker = self._pipe_waker
                    return
        connection.ioloop.call_later(POLL_S, self._poll)

    def _schedule_spool_check(self) -> None:
        def check() -> None:
            self._spool_maybe = True
            self._pump()
            self._schedule_spool_check()

        if self._connection is not None and not self._stopping.is_set():
            self._connection.ioloop.call_later(SPOOL_POLL_S, check)

    def _pump(self) -> bool:
        """Publish until the confirm window is full or there is nothing left; True if it published."""
        channel = self._channel
        if channel is None or not channel.is_open or self._stopping.is_set():
            return False
        outbox = self.outbox
        window = self.settings.confirm_window
        exchange = self.settings.exchange
        publish = channel.basic_publish
        inflight = self._inflight
        room = window - len(inflight)
        if room <= 0:
            return False
        if self._spool_maybe or self._spool_buffer:
            before = room
            room = self._pump_spool(room)
            if self._spool_buffer or room <= 0:
                return room < before
        with outbox.lock:
            outbox.wake_pending = False
            items = outbox.take(room)
            outbox.inflight = len(inflight) + len(items)
        if not items:
            return False
        try:
            if self._encoder is not None:
                encode = self._encoder.encode
                chunks = []
                for item in items:
                    event: PreparedEvent = item.event
                    chunks.append(encode(event.id, event.type, event.timestamp, event.body))
                    self._tag += 1
                    inflight[self._tag] = item
                self._write([b"".join(chunks)])
            else:
                for item in items:
                    event = item.event
                    publish(exchange, "", event.body, amqp_properties(event.id, event.type, event.timestamp))
                    self._tag += 1
                    inflight[self._tag] = item
        except (pika.exceptions.AMQPError, ValueError) as exc:
            log.warning("publish failed (%r); will retry after reconnect", exc)
        return True

    def _pump_spool(self, room: int) -> int:
        if not self._spool_buffer:
            try:
                self._spool_buffer = self.spool.claim(SPOOL_BATCH)
            except SpoolError as exc:
                log.error("cannot read the spool: %s", exc)
                self._spool_buffer = []
            if not self._spool_buffer:
                self._spool_maybe = False
                return room
        publish = self._channel.basic_publish
        exchange = self.settings.exchange
        sent = 0
        chunks = []
        for record in self._spool_buffer[:room]:
            event_type, stamp = replay_headers(record)
            if self._encoder is not None:
                chunks.append(self._encoder.encode(record.id, event_type, stamp, record.body))
            else:
                publish(exchange, "", record.body, amqp_properties(record.id, event_type, stamp))
            self._tag += 1
            self._inflight[self._tag] = record
            sent += 1
        if chunks:
            self._write([b"".join(chunks)])
        del self._spool_buffer[:sent]
        return room - sent

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        tag = method.delivery_tag
        inflight = self._inflight
        done: list[Any] = []
        if method.multiple:
            while inflight:
                first = next(iter(inflight))
                if first > tag:
                    break
                done.append(inflight.pop(first))
        elif tag in inflight:
            done.append(inflight.pop(tag))
        items = [d for d in done if isinstance(d, Item)]
        records = [d for d in done if isinstance(d, SpoolRecord)]
        acked = isinstance(method, pika.spec.Basic.Ack)
        if records:
            if acked:
                try:
                    self.spool.ack([r.seq for r in records])
                except SpoolError as exc:  # they stay in the spool and are published again later
                    log.error("cannot remove replayed events from the spool: %s", exc)
            else:
                self.spool.release([r.seq for r in records])
                self._spool_maybe = True
        with self.outbox.lock:
            if records and acked:
                self.outbox.counts["replayed"] += len(records)
            if items:
                if acked:
                    self.outbox.settle(items, "confirmed")
                else:
                    self.outbox.counts["nacked"] += len(items)
                    self.outbox.put_back(items)
            self.outbox.inflight = len(inflight)
        if not acked:
            log.warning("RabbitMQ nacked %d event(s); publishing them again", len(done))
        self._pump()

    # -- offline -------------------------------------------------------------------------------

    def _go_offline(self) -> None:
        """After a connection ends: put unconfirmed events back (memory) or release them (spool)."""
        self.node = None
        self._channel = None
        self._connection = None
        inflight = list(self._inflight.values())
        self._inflight.clear()
        items = [d for d in inflight if isinstance(d, Item)]
        records = [d for d in inflight if isinstance(d, SpoolRecord)] + self._spool_buffer
        self._spool_buffer = []
        if records:
            try:
                self.spool.release([r.seq for r in records])
            except SpoolError as exc:
                log.error("cannot release spool claims (they return after the lease): %s", exc)
        self._polling = False
        self.sessions_ended += 1
        with self.outbox.lock:
            self.outbox.connected = False
            self.outbox.waker = self._wake_offline
            self.outbox.urgent_waker = self._wake_offline
            self.outbox.wake_pending = False
            self.outbox.inflight = 0
            if items:
                self.outbox.counts["republished"] += len(items)
                self.outbox.put_back(items)

    def _wake_offline(self) -> None:
        with self.outbox.lock:
            self.outbox.cond.notify_all()

    def _offline(self, seconds: float) -> None:
        """Until it is time to reconnect: move what callers emit into the spool."""
        deadline = time.monotonic() + seconds
        while not self._stopping.is_set():
            self._spool_memory()
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._retry_now.is_set():
                self._retry_now.clear()
                return
            with self.outbox.lock:
                self.outbox.wake_pending = False
                if not self.outbox.items and not self._stopping.is_set() and not self._retry_now.is_set():
                    self.outbox.cond.wait(remaining)

    def _spool_memory(self, final: bool = False) -> None:
        """Write the in-memory queue to the spool, in batches, in order."""
        while True:
            with self.outbox.lock:
                items = self.outbox.take(SPOOL_BATCH)
            if not items:
                return
            try:
                self.spool.append([i.event.spool_entry() for i in items])
            except SpoolError as exc:
                self._spool_failed(items, exc, final)
                return
            with self.outbox.lock:
                self.outbox.settle(items, "spooled")

    def _spool_failed(self, items: list[Item], exc: SpoolError, final: bool) -> None:
        # Events of a waiting submit() fail now, so the caller can answer "not accepted";
        # plain emit() events stay in memory (bounded) and are retried, unless the sink is closing.
        waiting = [i for i in items if i.ticket is not None]
        held = [i for i in items if i.ticket is None]
        with self.outbox.lock:
            if waiting:
                self.outbox.fail(waiting, exc)
            if final:
                self.outbox.counts["dropped"] += len(held)
                self.outbox.pending -= len(held)
                self.outbox.cond.notify_all()
            else:
                self.outbox.put_back(held)
        if final and held:
            log.critical("LOST %d event(s): RabbitMQ unreachable and the spool failed at exit: %s", len(held), exc)
        else:
            log.error("RabbitMQ unreachable and the spool cannot take events (%s); %d held in memory",
                      exc, len(held))
        if not final:
            time.sleep(0.5)
