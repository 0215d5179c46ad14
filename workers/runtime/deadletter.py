"""Dead-lettering with the reason: republish the original body to ``<exchange>.dead``, confirmed.

Native ``basic_nack(requeue=False)`` would dead-letter too, but without saying why. The runtime instead
republishes the message to the dead exchange (routing key = worker name) with three headers, on a
channel in confirm mode, and acks the original only after the broker confirmed the copy::

    x-eventsink-reason     why the event was refused (destination's words, or the parse error)
    x-eventsink-worker     which worker refused it
    x-eventsink-failed-at  when (RFC 3339, UTC)

Messages dead-lettered by the broker itself (quorum delivery limit) carry ``x-death`` instead;
:func:`reason_of` reads either.
"""

from __future__ import annotations

from typing import Any

import pika
import pika.exceptions

from sink_lib.errors import BrokerError
from sink_lib.event import now_rfc3339
from sink_lib.topology import dead_exchange_name

from .batcher import Delivery

REASON_HEADER = "x-eventsink-reason"
WORKER_HEADER = "x-eventsink-worker"
FAILED_AT_HEADER = "x-eventsink-failed-at"
EVENTSINK_HEADERS = (REASON_HEADER, WORKER_HEADER, FAILED_AT_HEADER)
MAX_REASON_CHARS = 2000


def dead_letter_properties(properties: Any, worker: str, reason: str, failed_at: str | None = None) -> Any:
    """The original message's properties plus the dead-letter headers."""
    headers = dict(getattr(properties, "headers", None) or {})
    if len(reason) > MAX_REASON_CHARS:
        reason = reason[: MAX_REASON_CHARS - 3] + "..."
    headers[REASON_HEADER] = reason
    headers[WORKER_HEADER] = worker
    headers[FAILED_AT_HEADER] = failed_at or now_rfc3339()
    return pika.BasicProperties(
        content_type=getattr(properties, "content_type", None),
        delivery_mode=2,
        message_id=getattr(properties, "message_id", None),
        type=getattr(properties, "type", None),
        timestamp=getattr(properties, "timestamp", None),
        headers=headers,
    )


def reason_of(headers: dict[str, Any] | None) -> str:
    """Why a dead letter was dead-lettered: our reason header, else the broker's ``x-death`` reason."""
    headers = headers or {}
    reason = headers.get(REASON_HEADER)
    if reason is not None:
        return reason.decode() if isinstance(reason, bytes) else str(reason)
    deaths = headers.get("x-death") or []
    if deaths:
        death = deaths[0]
        why = death.get("reason", b"")
        why = why.decode() if isinstance(why, bytes) else str(why)
        return f"dead-lettered by the broker ({why})"
    return ""


class DeadLetterPublisher:
    """Publishes refused messages to the dead exchange on its own confirm-mode channel."""

    def __init__(self, connection: Any, exchange: str, worker: str) -> None:
        self.exchange = dead_exchange_name(exchange)
        self.worker = worker
        self._channel = connection.channel()
        self._channel.confirm_delivery()

    def publish(self, delivery: Delivery, reason: str) -> None:
        """Publish one dead letter and wait for the broker's confirm; BrokerError when it is refused."""
        props = dead_letter_properties(delivery.properties, self.worker, reason)
        try:
            self._channel.basic_publish(self.exchange, self.worker, delivery.body, props, mandatory=True)
        except (pika.exceptions.UnroutableError, pika.exceptions.NackError) as exc:
            raise BrokerError(
                f"dead letter for worker {self.worker!r} was not accepted by {self.exchange!r}: {exc!r}"
            ) from exc
