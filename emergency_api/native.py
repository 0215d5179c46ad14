"""Routes answered on the event loop of the ``eventsink`` worker class, without WSGI.

A native route gets a :class:`NativeRequest` (the body already read and within the size limit) and
returns a :data:`Reply`. It must give the same answers as its Flask view (which still serves it under
other worker classes, in the OpenAPI document and in the test client): the two share every check
and differ only in how they wait for the broker. :class:`NativeRoute` turns a raised
:class:`~.problems.Problem` into problem+json and counts the request in the same metrics as the
Flask hooks do.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from . import metrics
from .problems import PROBLEM_CONTENT_TYPE, Problem, problem_bytes

log = logging.getLogger(__name__)

#: status, headers (name, value), body
Reply = tuple[int, list[tuple[str, str]], bytes]


@dataclass(frozen=True, slots=True)
class NativeRequest:
    """One request as the worker parsed it: header names lower-case, repeated headers joined by ", "."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes
    remote_addr: str


class NativeRoute:
    """Base of a native route: subclasses set ``route`` (the Flask rule it mirrors) and ``answer``."""

    route = ""

    async def answer(self, request: NativeRequest) -> Reply:
        raise NotImplementedError

    async def __call__(self, request: NativeRequest) -> Reply:
        """The reply, with problems as problem+json; the request counted in the API's metrics."""
        started = time.perf_counter()
        try:
            reply = await self.answer(request)
        except Problem as exc:
            reply = (exc.status, [("Content-Type", PROBLEM_CONTENT_TYPE), *exc.headers.items()], problem_bytes(exc))
        except Exception:
            log.exception("unhandled error")
            failure = Problem(500, "The server could not handle the request.")
            reply = (500, [("Content-Type", PROBLEM_CONTENT_TYPE)], problem_bytes(failure))
        metrics.record(self.route, request.method, reply[0], time.perf_counter() - started)
        return reply
