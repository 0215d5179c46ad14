"""InfluxDB-compatible endpoints, so Telegraf's ``influxdb`` / ``influxdb_v2`` outputs and the official
client libraries write to EventSink with only a URL and a credential (an EventSink API key)::

    POST /write          1.x: db (required, not used), rp, precision (n ns u us ms s m h);
                         key as ``p`` parameter, Basic auth password, Token or Bearer
    POST /api/v2/write   2.x: org, bucket (required, not used), precision (ns us ms s);
                         ``Authorization: Token <key>``
    POST /query          only ``CREATE DATABASE ...`` (what Telegraf's influxdb output sends at start),
                         answered as done; other statements 400: query the destination instead
    GET  /ping           204 with X-Influxdb-Version (``?verbose=true``: 200 and the version)
    GET  /health         200 {"status": "pass", ...} when events can be accepted, else 503 "fail"

Writes go through the same checks, limits and rate limits as ``/api/v1/write`` (see
:mod:`emergency_api.write`). Answers are InfluxDB's: 204 on success; errors as ``{"error": ...}``
(1.x) or ``{"code": ..., "message": ...}`` (2.x) with the same status codes, ``X-Influxdb-Error``
too. A partial write publishes the good lines and answers 400 naming the bad ones, as InfluxDB does.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

from flask import Blueprint, Response, json, request
from werkzeug.exceptions import HTTPException

from .auth import require_key
from .body import read_body
from .ingest import api_settings, sink
from .keys import ApiKey
from .problems import MAX_ERRORS, Problem
from .write import Written, write_lines

bp = Blueprint("influx", __name__)

#: the InfluxDB version these endpoints answer like (clients read it from /ping and /health)
COMPATIBLE_VERSION = "1.8.10"
V2_WRITE = "/api/v2/write"
_UNPRINTABLE = re.compile(r"[^ -~]")
_CREATE_DATABASE = re.compile(r"\s*CREATE\s+DATABASE\s+\S+(\s+[^;]*)?;?\s*", re.IGNORECASE)
V1_PRECISIONS = frozenset({"n", "ns", "u", "us", "ms", "s", "m", "h"})
V2_PRECISIONS = frozenset({"ns", "us", "ms", "s"})
_V2_CODES = {400: "invalid", 401: "unauthorized", 403: "forbidden", 404: "not found", 405: "method not allowed",
             413: "request too large", 415: "unsupported media type", 429: "too many requests",
             503: "unavailable"}


def _headers(response: Response) -> Response:
    response.headers["X-Influxdb-Version"] = COMPATIBLE_VERSION
    response.headers["X-Influxdb-Build"] = "EventSink"
    return response


def influx_error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """An error as the InfluxDB version of this route answers it."""
    if request.path == V2_WRITE or request.path.startswith("/api/v2/"):
        body = {"code": _V2_CODES.get(status, "internal error"), "message": message}
    else:
        body = {"error": message}
    response = Response(json.dumps(body), status=status, mimetype="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    # a header holds printable ASCII only: the line quoted in a message may hold anything
    response.headers["X-Influxdb-Error"] = _UNPRINTABLE.sub("?", message.split("\n", 1)[0][:200])
    return _headers(response)


@bp.errorhandler(Problem)
def _from_problem(exc: Problem) -> Response:
    message = exc.detail
    if exc.status == 401:
        message = "authorization failed" if request.path != V2_WRITE else "unauthorized access"
    elif exc.errors:
        message += ": " + "; ".join(str(e.get("message", e)) for e in exc.errors[:10])
    return influx_error(exc.status, message, exc.headers)


@bp.errorhandler(HTTPException)
def _from_http(exc: HTTPException) -> Response:
    return influx_error(exc.code or 500, exc.description or exc.name)


def _partial(written: Written) -> Response:
    shown = [f"unable to parse '{e['text']}': {e['message']} (line {e['line']})" for e in written.errors[:MAX_ERRORS]]
    if len(written.errors) > MAX_ERRORS:
        shown.append(f"... and {len(written.errors) - MAX_ERRORS} more")
    message = "\n".join(shown)
    if written.accepted:
        message = f"partial write: {message} dropped={len(written.errors)}"
    return influx_error(400, message)


def _write(key: ApiKey, precision: str) -> Response:
    written = write_lines(key, read_body(api_settings().max_body_bytes), precision, "write")
    return _partial(written) if written.errors else _headers(Response(status=204))


@bp.post("/write")
def write_v1() -> Response:
    """InfluxDB 1.x write: the lines become ``metric.*`` events."""
    return _write(require_key(), _checked_target("db", "database", V1_PRECISIONS))


@bp.post(V2_WRITE)
def write_v2() -> Response:
    """InfluxDB 2.x write: the lines become ``metric.*`` events."""
    return _write(require_key(), _checked_target("bucket", "bucket", V2_PRECISIONS))


def _checked_target(param: str, what: str, precisions: Collection[str]) -> str:
    """The request's precision, after checking the required target (``db`` / ``bucket``) is named."""
    if not request.args.get(param):
        raise Problem(400, f"{what} is required")
    precision = request.args.get("precision") or "ns"
    if precision not in precisions:
        raise Problem(400, f"invalid precision {precision!r}: use one of {', '.join(sorted(precisions))}")
    return precision


@bp.post("/query")
def query() -> Response:
    """Answer ``CREATE DATABASE`` as done (points land where the worker is configured); refuse the rest."""
    require_key()
    statement = request.values.get("q", "")
    if _CREATE_DATABASE.fullmatch(statement) is None:
        raise Problem(400, "EventSink takes writes only; query the InfluxDB the influxdb worker writes to")
    return _headers(Response(json.dumps({"results": [{"statement_id": 0}]}), mimetype="application/json"))


@bp.route("/ping", methods=["GET", "HEAD"])
def ping() -> Response:
    """204 with InfluxDB's version headers; 200 and the version with ``?verbose=true``."""
    if request.args.get("verbose", "").lower() in ("true", "1"):
        return _headers(Response(json.dumps({"version": COMPATIBLE_VERSION}), mimetype="application/json"))
    return _headers(Response(status=204))


@bp.get("/health")
def health() -> Response:
    """InfluxDB's health answer: pass when events can be accepted (broker up or spool writable)."""
    ready = sink().ready()
    body: dict[str, Any] = {"name": "influxdb", "message": "ready for queries and writes" if ready else
            "RabbitMQ is unreachable and the local spool is not writable",
            "status": "pass" if ready else "fail", "checks": [], "version": COMPATIBLE_VERSION, "commit": ""}
    return _headers(Response(json.dumps(body), status=200 if ready else 503, mimetype="application/json"))
