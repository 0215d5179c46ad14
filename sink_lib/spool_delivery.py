"""What ``EventSink.close`` does with the spool: deliver it while RabbitMQ is reachable, then say what is left.

A sink closing with events in the spool (spooled during an outage, or left by an earlier process)
delivers them within its timeout when it can: connected, it waits until the spool holds nothing it
could send; offline, it asks the publisher to reconnect at once instead of waiting out its backoff,
and stops waiting when that attempt fails.
"""

from __future__ import annotations

import logging
import time

from .errors import SpoolError
from .outbox import Outbox
from .publisher import Publisher
from .spool import Spool

log = logging.getLogger("sink_lib")
POLL_S = 0.05


def deliver_spool(publisher: Publisher, outbox: Outbox, spool: Spool, deadline: float) -> None:
    """Until ``deadline`` (monotonic): replay the spool while connected; give up once a reconnect fails."""
    ended: int | None = None
    while time.monotonic() < deadline and publisher.is_alive():
        if ended is None or outbox.connected:
            try:
                if spool.deliverable() == 0:
                    return
            except SpoolError as exc:
                log.error("cannot read the spool: %s", exc)
                return
        if ended is None:  # something to deliver: do not wait out the reconnect backoff
            ended = publisher.deliver_spool_now()
        elif not outbox.connected and publisher.sessions_ended > ended:
            return  # RabbitMQ is still unreachable: the spool stays for later
        time.sleep(POLL_S)


def count_left(spool: Spool) -> int:
    """Events left in the spool, logged as a WARNING naming it when there are any (0 if it is unreadable)."""
    try:
        left = spool.count()
    except SpoolError as exc:
        log.error("cannot count the events left in the spool: %s", exc)
        return 0
    if left:
        log.warning("closed with %d event(s) left in the spool %s; the next EventSink on this spool directory, "
                    "or 'eventsink spool replay', delivers them", left, spool.path)
    return left
