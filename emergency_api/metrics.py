"""Prometheus metrics of the API: requests, latency, accepted, rejected and spooled events.

Under ``eventsink api`` (several gunicorn workers) prometheus-client runs in multiprocess mode:
``PROMETHEUS_MULTIPROC_DIR`` is set to a fresh folder before the workers start, each worker writes
its samples there and ``/metrics`` sums them. Without that variable each process reports its own.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from .problems import reason_of

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Label values come from fixed sets so no client can grow the series count (or /metrics) at will:
# routes are the app's own rules or "unmatched", methods these or "other", statuses the server's.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"

REQUESTS = Counter("eventsink_api_requests_total", "HTTP requests by route, method and status.",
                   ["route", "method", "status"])
LATENCY = Histogram("eventsink_api_request_duration_seconds", "Request latency by route.", ["route"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
ACCEPTED = Counter("eventsink_api_events_accepted_total", "Events answered 2xx (confirmed or spooled).",
                   ["endpoint"])
REJECTED = Counter("eventsink_api_requests_rejected_total", "Requests answered 4xx/5xx, by reason.",
                   ["reason"])
_sink_metrics: dict[str, Any] = {}


def _sink_metric(name: str) -> Any:
    """The sink metrics, created on first use: a metric without labels makes its value store when it
    is created, and under ``eventsink api`` that must happen after multiprocess mode is switched on
    (in the worker), or its samples never reach /metrics."""
    if not _sink_metrics:
        _sink_metrics["spooled"] = Counter(
            "eventsink_api_events_spooled_total", "Events written to the local spool (broker away).")
        _sink_metrics["pending"] = Gauge(
            "eventsink_api_spool_pending", "Events waiting in the local spool.", multiprocess_mode="livemax")
        _sink_metrics["connected"] = Gauge(
            "eventsink_api_broker_connected", "1 when the worker's sink is connected to RabbitMQ.",
            multiprocess_mode="livemin")
    return _sink_metrics[name]

bp = Blueprint("metrics", __name__)

_observe_lock = threading.Lock()
_observed: dict[str, Any] = {"pid": None, "at": 0.0, "spooled": 0}


# labels() resolves a child under a lock on every call; the label sets are fixed (see above), so
# each child is looked up once per process and kept.
_accepted_child = functools.cache(ACCEPTED.labels)
_requests_child = functools.cache(REQUESTS.labels)
_latency_child = functools.cache(LATENCY.labels)
_rejected_child = functools.cache(REJECTED.labels)


def accepted(endpoint: str, count: int) -> None:
    """Count events answered with a 2xx."""
    _accepted_child(endpoint).inc(count)


def observe_sink(sink: Any, every_s: float = 1.0) -> None:
    """Copy the sink's spool counters into the metrics, at most once per ``every_s`` per process."""
    now = time.monotonic()
    if _observed["pid"] == os.getpid() and now - _observed["at"] < every_s:
        return
    if not _observe_lock.acquire(blocking=False):
        return
    try:
        if _observed["pid"] != os.getpid():  # counters of a sink restart after fork
            _observed.update(pid=os.getpid(), spooled=0)
        _observed["at"] = now
        stats = sink.stats()
        spooled = int(stats.get("spooled") or 0)
        if spooled > _observed["spooled"]:
            _sink_metric("spooled").inc(spooled - _observed["spooled"])
        _observed["spooled"] = spooled
        _sink_metric("pending").set(stats.get("spool_pending") or 0)
        _sink_metric("connected").set(1 if stats.get("connected") else 0)
    finally:
        _observe_lock.release()


def _start() -> None:
    g.started = time.perf_counter()


def record(route: str, method: str, status: int, seconds: float | None) -> None:
    """Count one answered request; ``route`` is the matched rule (or "unmatched")."""
    _requests_child(route, method if method in KNOWN_METHODS else OTHER_METHOD, str(status)).inc()
    if seconds is not None:
        _latency_child(route).observe(seconds)
    if status >= 400:
        _rejected_child(reason_of(status)).inc()


def _finish(response: Response) -> Response:
    started = g.get("started")
    record(request.url_rule.rule if request.url_rule is not None else "unmatched", request.method,
           response.status_code, time.perf_counter() - started if started is not None else None)
    return response


@bp.get("/metrics")
def metrics_view() -> Response:
    """The metrics in Prometheus text format (summed over gunicorn workers)."""
    observe_sink(current_app.extensions["eventsink_sink"], every_s=0.0)
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
    return Response(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)


def init_metrics(app: Flask) -> None:
    """Time and count every request of ``app``."""
    app.before_request(_start)
    app.after_request(_finish)
    app.register_blueprint(bp)
