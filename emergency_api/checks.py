"""Checks of client-sent envelope fields beyond their type and length: ``source`` paths and ``time``.

Patterns are applied with ``fullmatch``: ``re.match`` with a ``$`` anchor lets a trailing newline
through. A source is appended to ``/api/<key name>``, so dot segments (``.``, ``..``, also
percent-encoded) are refused: a consumer resolving the path must not land under another key's source.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from sink_lib.event import parse_time

from .settings import ApiSettings

SOURCE_PATH = re.compile(r"^[A-Za-z0-9._~!$&'()*+,;=:@/%-]+$")
_DOT_SEGMENTS = frozenset({".", ".."})


def source_problem(source: str) -> str | None:
    """Why a client-sent ``source`` is refused, or None when it is a fine URI path."""
    if not SOURCE_PATH.fullmatch(source):
        return "must be a URI path"
    if any(unquote(segment) in _DOT_SEGMENTS for segment in source.split("/")):
        return "must not contain '.' or '..' path segments"
    return None


def time_problem(value: Any, settings: ApiSettings, now: datetime | None = None) -> str | None:
    """Why a client-sent ``time`` is refused for being too far from now, or None.

    Unparsable values pass here: the event preparation refuses them with its own message.
    """
    if not isinstance(value, str):
        return None
    try:
        moment = parse_time(value)
    except (ValueError, TypeError):
        return None
    offset = (moment - (now or datetime.now(UTC))).total_seconds()
    if offset > settings.max_time_future_s:
        return (f"more than {settings.max_time_future_s} s in the future "
                "(EVENTSINK_API_MAX_TIME_FUTURE_S); check the sender's clock")
    if -offset > settings.max_time_past_s:
        return f"more than {settings.max_time_past_s} s in the past (EVENTSINK_API_MAX_TIME_PAST_S)"
    return None
