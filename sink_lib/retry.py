"""Retry timing shared by every part of EventSink: one backoff and one ``Retry-After`` parser.

The publisher, the async sink, the worker runtime, the monitors' reporter and the HTTP transports of
the workers all wait with :class:`Backoff` and read a server's hint with :func:`parse_retry_after`.

:class:`Backoff` is a small stateful helper rather than a retry decorator: its users keep servicing a
connection (heartbeats, deliveries) and watch for a stop request while they wait, so they ask for the
next delay and do the waiting themselves.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import UTC
from email.utils import parsedate_to_datetime

# a server's Retry-After beyond this is treated as this (a typo or a hostile server must not park us for days)
RETRY_AFTER_CAP_S = 600.0


class Backoff:
    """Delays that grow ``min_s * 2**attempt`` up to ``max_s``, each drawn uniformly from its upper half.

    Half-jitter keeps a floor (so a client never hammers a dead server) while spreading the retries of
    many clients apart. A ``hint_s`` (a server's Retry-After) raises the floor of one delay.
    """

    def __init__(self, min_s: float, max_s: float, *, rand: Callable[[], float] = random.random) -> None:
        if min_s <= 0 or max_s < min_s:
            raise ValueError(f"backoff needs 0 < min_s <= max_s, got min_s={min_s}, max_s={max_s}")
        self.min_s, self.max_s = min_s, max_s
        self.attempt = 0
        self._rand = rand

    def next_delay(self, hint_s: float | None = None) -> float:
        """The delay before the next retry; each call counts one more failed attempt."""
        ceiling = min(self.max_s, self.min_s * (2 ** min(self.attempt, 32)))
        self.attempt += 1
        delay = max(ceiling / 2 + self._rand() * ceiling / 2, self.min_s)
        if hint_s is not None and hint_s > delay:
            delay = hint_s
        return delay

    def reset(self) -> None:
        """Start again from ``min_s`` (after a success)."""
        self.attempt = 0


def parse_retry_after(value: str | None, *, now: float | None = None,
                      cap_s: float = RETRY_AFTER_CAP_S) -> float | None:
    """Seconds to wait from a ``Retry-After`` header value, or None when absent or unusable.

    Both forms of RFC 9110 are read: delta-seconds (``"120"``) and an HTTP-date
    (``"Wed, 21 Oct 2015 07:28:00 GMT"``, relative to ``now``, default the current time). A date in the
    past gives 0; anything above ``cap_s`` gives ``cap_s``; negative, non-finite or malformed values
    give None.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if not text.isascii():
        return None
    if text.isdigit():
        # more digits than a float's precision is past any cap (and int() refuses over 4300 digits)
        return cap_s if len(text) > 15 else min(float(int(text)), cap_s)
    try:
        seconds = float(text)  # lenient: "1.5" is not RFC form but its meaning is plain
    except ValueError:
        pass
    else:
        return min(seconds, cap_s) if 0 <= seconds < float("inf") else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC dates are GMT; a zone-less date is read as such
        when = when.replace(tzinfo=UTC)
    current = time.time() if now is None else now
    return min(max(0.0, when.timestamp() - current), cap_s)
