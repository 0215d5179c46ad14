"""WSGI middleware that emits ``traffic.api.called`` for every request of the wrapped application.

The event is emitted when the server closes the response, after the body was sent, so tracking never
delays a response; ``enqueue`` itself only validates and queues. Failures to emit are logged and
counted, never raised into the host application.
"""

from __future__ import annotations

import fnmatch
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

log = logging.getLogger("sink_lib.integrations")

# Path segments that look like identifiers become "<id>" so routes stay low-cardinality.
_ID_SEGMENT = re.compile(r"^(?:\d+|[0-9a-fA-F]{16,}|[0-9a-fA-F-]{32,36}|[A-Za-z0-9_-]{20,})$")
DEFAULT_EXCLUDE = ("/healthz", "/readyz", "/metrics", "/static/*", "/favicon.ico")


def route_template(path: str) -> str:
    """A low-cardinality route for a raw path: identifier-like segments replaced by ``<id>``."""
    return "/".join("<id>" if _ID_SEGMENT.match(part) else part for part in path.split("/")) or "/"


class RequestTracker:
    """Emits one ``traffic.api.called`` event per request through an EventSink-like ``sink``."""

    def __init__(self, sink: Any, *, exclude: Iterable[str] = DEFAULT_EXCLUDE, source: str | None = None,
                 userid: Callable[[], str | None] | None = None) -> None:
        self.sink = sink
        self.exclude = tuple(exclude)
        self.source = source
        self.userid = userid
        self.failures = 0

    def excluded(self, path: str) -> bool:
        """True for paths that are not tracked (health checks, metrics, static files)."""
        return any(fnmatch.fnmatchcase(path, pattern) for pattern in self.exclude)

    def record(self, method: str, route: str, status: int, duration_ms: float, userid: str | None = None) -> None:
        """Emit the event; never raises into the host application."""
        data = {"method": method, "route": route, "status": status, "duration_ms": round(duration_ms, 3)}
        try:
            self.sink.enqueue("traffic.api.called", data, source=self.source, userid=userid)
        except Exception:
            self.failures += 1
            log.exception("could not emit traffic.api.called for %s %s", method, route)


class TrackingMiddleware:
    """Wrap any WSGI app: ``app.wsgi_app = TrackingMiddleware(app.wsgi_app, sink)``."""

    def __init__(self, app: Callable[..., Iterable[bytes]], sink: Any, *,
                 route_for: Callable[[dict[str, Any]], str] | None = None, **options: Any) -> None:
        self.app = app
        self.tracker = RequestTracker(sink, **options)
        self.route_for = route_for or (lambda environ: route_template(environ.get("PATH_INFO", "/")))

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if self.tracker.excluded(path):
            return self.app(environ, start_response)
        started = time.perf_counter()
        status = [500]

        def capture(status_line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status[0] = int(status_line.split(" ", 1)[0])
            return start_response(status_line, headers, exc_info)

        try:
            body = self.app(environ, capture)
        except Exception:
            self.tracker.record(environ.get("REQUEST_METHOD", "GET"), self.route_for(environ), 500, _ms(started))
            raise
        # WSGI time: until the server closed the body, i.e. including sending it
        return _ClosingIterable(body, lambda: self.tracker.record(
            environ.get("REQUEST_METHOD", "GET"), self.route_for(environ), status[0], _ms(started)))


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


class _ClosingIterable:
    """Passes the body through and calls ``on_close`` once the server closes it."""

    def __init__(self, body: Iterable[bytes], on_close: Callable[[], None]) -> None:
        self._body = body
        self._on_close = on_close

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._on_close()
