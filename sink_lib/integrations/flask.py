"""Flask extension: ``EventSinkFlask(app, sink)`` emits ``traffic.api.called`` for each request.

The route is Flask's URL rule template (``/files/<file_id>``), so there is one series per endpoint
whatever the ids; unmatched paths are reported as ``<unmatched>``. The event is emitted from
``response.call_on_close``, after the response was sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from .wsgi import DEFAULT_EXCLUDE, RequestTracker

try:
    from flask import Flask, Response, g, request
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError("the Flask integration needs Flask: pip install 'eventsink[flask]'") from exc


class EventSinkFlask:
    """Request tracking for a Flask app; ``init_app`` supports the app-factory pattern."""

    def __init__(self, app: Flask | None = None, sink: Any = None, *, exclude: Iterable[str] = DEFAULT_EXCLUDE,
                 source: str | None = None, userid: Callable[[], str | None] | None = None) -> None:
        self.tracker = RequestTracker(sink, exclude=exclude, source=source, userid=userid)
        if app is not None:
            self.init_app(app, sink)

    def init_app(self, app: Flask, sink: Any = None) -> None:
        """Register the request hooks on ``app`` (and set the sink, when given here)."""
        if sink is not None:
            self.tracker.sink = sink
        app.extensions["eventsink"] = self
        app.before_request(self._start)
        app.after_request(self._finish)

    def _start(self) -> None:
        g._eventsink_started = time.perf_counter()

    def _finish(self, response: Response) -> Response:
        started = g.pop("_eventsink_started", None)
        if started is None or self.tracker.excluded(request.path):
            return response
        rule = request.url_rule.rule if request.url_rule is not None else "<unmatched>"
        method, status = request.method, response.status_code
        duration_ms = (time.perf_counter() - started) * 1000.0  # handling time, without sending the body
        userid = self.tracker.userid() if self.tracker.userid else None
        response.call_on_close(lambda: self.tracker.record(method, rule, status, duration_ms, userid))
        return response
