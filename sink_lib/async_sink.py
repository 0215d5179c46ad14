"""AsyncEventSink: the asyncio flavour of EventSink, on aio-pika.

``await sink.publish(...)`` returns once the broker confirmed the event, or, when RabbitMQ cannot be
reached or does not confirm in time, once the event is in the same durable spool EventSink uses. A
background task replays the spool, oldest first, whenever the connection is up. When the connection is
lost the sink reconnects to the next node of ``EVENTSINK_AMQP_URL`` (backing off once every node failed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
from typing import Any, Unpack

from .errors import BrokerError, SinkClosedError, SpoolError
from .event import CONTENT_TYPE
from .nodes import BrokerNodes, redact_url
from .prepared import EventFields, PreparedEvent, prepare_event, replay_headers
from .registry import TypeRegistry, default_registry
from .retry import Backoff
from .settings import SinkSettings
from .spool import Spool

try:
    import aio_pika
    import aio_pika.abc
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError("AsyncEventSink needs aio-pika: pip install 'eventsink[async]'") from exc

log = logging.getLogger("sink_lib.async")

REPLAY_BATCH = 500


class AsyncEventSink:
    """Publishes events from asyncio code; same envelope, validation, spool and counters as EventSink."""

    def __init__(self, settings: SinkSettings | None = None, *, registry: TypeRegistry | None = None,
                 confirm_timeout_s: float = 10.0) -> None:
        self.settings = settings if settings is not None else SinkSettings.load()
        self.registry = registry if registry is not None else default_registry()
        self.confirm_timeout_s = confirm_timeout_s
        self._spool = Spool(self.settings.spool_dir, self.settings.spool_max_bytes)
        self._spool.check_directory()
        self._nodes = BrokerNodes(self.settings.amqp_url, shuffle=self.settings.amqp_shuffle)
        self.node: str | None = None  # host:port of the node in use, None while not connected
        self._connection: aio_pika.abc.AbstractConnection | None = None
        self._exchange: aio_pika.abc.AbstractExchange | None = None
        self._replayer: asyncio.Task[None] | None = None
        self._connector: asyncio.Task[None] | None = None
        self._closed = False
        self._counts = dict.fromkeys(("emitted", "confirmed", "spooled", "replayed", "failed"), 0)

    async def __aenter__(self) -> AsyncEventSink:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def connect(self) -> None:
        """Connect (or keep trying in the background) and start replaying the spool."""
        try:
            await self._connect_once()
        except BrokerError as exc:
            log.warning("%s; events go to the spool %s until it is reachable", exc, self._spool.path)
            self._connector = asyncio.create_task(self._keep_connecting())
        self._replayer = asyncio.create_task(self._replay_forever())

    async def _connect_once(self) -> None:
        """Connect to the first node that answers, from the current one; BrokerError when none does."""
        last: BaseException | None = None
        for _ in range(len(self._nodes)):
            url = self._nodes.current
            try:
                connection = await aio_pika.connect(
                    url, timeout=5,
                    client_properties={"connection_name": f"eventsink async {self.settings.source}"},
                )
                channel = await connection.channel(publisher_confirms=True)
                exchange = await channel.declare_exchange(
                    self.settings.exchange, aio_pika.ExchangeType.FANOUT, durable=True
                )
            except (TimeoutError, OSError, aio_pika.exceptions.AMQPException) as exc:
                log.info("RabbitMQ node %s did not answer (%r)", self._nodes.label, exc)
                last = exc
                self._nodes.failed()
                continue
            self._nodes.succeeded()
            self.node = self._nodes.label
            log.info("async sink connected to RabbitMQ node %s", self.node)
            connection.close_callbacks.add(self._on_connection_lost)
            self._connection, self._exchange = connection, exchange
            return
        raise BrokerError(f"cannot reach RabbitMQ at {redact_url(self.settings.amqp_url)}: {last!r}")

    def _on_connection_lost(self, _sender: Any, exc: BaseException | None = None) -> None:
        if self._closed:
            return
        log.warning("connection to RabbitMQ node %s lost (%r); trying the other nodes", self.node, exc)
        self._exchange = None
        self.node = None
        self._nodes.failed()
        if self._connector is None or self._connector.done():
            self._connector = asyncio.get_running_loop().create_task(self._keep_connecting(first_delay=False))

    async def _keep_connecting(self, first_delay: bool = True) -> None:
        backoff = Backoff(self.settings.reconnect_min_s,
                          max(self.settings.reconnect_max_s, self.settings.reconnect_min_s))
        wait = first_delay
        while not self._closed and self._exchange is None:
            if wait:
                await asyncio.sleep(backoff.next_delay())
            wait = True
            with contextlib.suppress(BrokerError):
                await self._connect_once()

    def prepare(self, type: str, data: dict[str, Any], **fields: Unpack[EventFields]) -> PreparedEvent:
        """Validate and serialise an event; raises EventValidationError naming the bad field."""
        return prepare_event(self.settings, self.registry, type, data, **fields)

    async def publish(self, type: str, data: dict[str, Any], **fields: Unpack[EventFields]) -> PreparedEvent:
        """Publish one event and return it once confirmed by the broker or written to the spool.

        Raises EventValidationError for bad input (nothing published), or SpoolError when the broker
        is away and the spool cannot take the event either.
        """
        if self._closed:
            raise SinkClosedError("this AsyncEventSink is closed")
        event = self.prepare(type, data, **fields)
        self._counts["emitted"] += 1
        if await self._publish(event.id, event.type, event.timestamp, event.body):
            self._counts["confirmed"] += 1
            return event
        try:
            await asyncio.to_thread(self._spool.append, [event.spool_entry()])
        except SpoolError:
            self._counts["failed"] += 1
            log.error("event %s refused: RabbitMQ unreachable and the spool cannot take it", event.id)
            raise
        self._counts["spooled"] += 1
        return event

    async def _publish(self, event_id: str, event_type: str, timestamp: int, body: bytes) -> bool:
        exchange = self._exchange
        if exchange is None or self._connection is None or self._connection.is_closed:
            return False
        message = aio_pika.Message(body, content_type=CONTENT_TYPE, delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                                   message_id=event_id, type=event_type, timestamp=timestamp)
        try:
            # asyncio.timeout() instead of publish(timeout=...): aio-pika's timeout wraps every publish
            # in asyncio.wait_for, which costs an extra task per event
            async with asyncio.timeout(self.confirm_timeout_s):
                await exchange.publish(message, routing_key="")
        except (TimeoutError, OSError, aio_pika.exceptions.AMQPException, RuntimeError) as exc:
            log.warning("publish of %s not confirmed (%r); spooling it", event_id, exc)
            return False
        return True

    async def _replay_forever(self) -> None:
        while not self._closed:
            replayed = await self.replay()
            if not replayed:
                await asyncio.sleep(1.0)

    async def replay(self) -> int:
        """Publish one batch of spooled events if connected; returns how many were delivered."""
        if self._exchange is None:
            return 0
        records = await asyncio.to_thread(self._spool.claim, REPLAY_BATCH)
        if not records:
            return 0
        delivered: list[int] = []
        failed: list[int] = []
        for record in records:  # in order: a failure stops the batch so order is kept
            ok = not failed and await self._publish(record.id, *replay_headers(record), record.body)
            (delivered if ok else failed).append(record.seq)
        await asyncio.to_thread(self._spool.ack, delivered)
        await asyncio.to_thread(self._spool.release, failed)
        self._counts["replayed"] += len(delivered)
        return len(delivered)

    def stats(self) -> dict[str, Any]:
        """Counters: emitted, confirmed, spooled, replayed, failed; spool_pending; connected."""
        out: dict[str, Any] = dict(self._counts)
        out["connected"] = self._connection is not None and not self._connection.is_closed
        try:
            out["spool_pending"] = self._spool.count()
        except SpoolError:
            out["spool_pending"] = None
        return out

    async def aclose(self) -> None:
        """Stop replaying and close the connection; spooled events stay for the next process."""
        self._closed = True
        for task in (self._replayer, self._connector):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._connection is not None:
            await self._connection.close()
        self._spool.close()

    async def emit(self, type: str, data: dict[str, Any], **fields: Unpack[EventFields]) -> PreparedEvent:
        """Deprecated alias of :meth:`publish` (kept for one release; warns DeprecationWarning)."""
        warnings.warn("AsyncEventSink.emit() is deprecated: use publish()", DeprecationWarning, stacklevel=2)
        return await self.publish(type, data, **fields)
