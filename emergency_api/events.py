"""``POST /api/v1/events``: one CloudEvents-style object, or a JSON array of them.

A client sends at least ``type`` and ``data``; it may send ``id`` (for idempotent retries; published
scoped to its key, see ``ApiKey.event_id``), ``time``,
``subject``, ``userid``, ``region`` and ``source`` (appended to the key's source). ``specversion``
and ``datacontenttype`` may be sent if they hold the only values the API writes. Any other
top-level field is refused. A batch is all-or-nothing: if one event is invalid, none is published.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from flask import Blueprint, Response, request

from sink_lib.errors import EventValidationError

from .auth import require_key, require_scope
from .checks import source_problem, time_problem
from .ingest import api_settings, publish, sink
from .keys import ApiKey
from .problems import Problem

bp = Blueprint("events", __name__)

JSON_TYPES = frozenset({"application/json", "application/cloudevents+json", "application/cloudevents-batch+json"})
OPTIONAL_STRINGS = {"id": 256, "time": 64, "subject": 1024, "userid": 256, "region": 64, "source": 256}
FIXED = {"specversion": "1.0", "datacontenttype": "application/json"}
ALLOWED = frozenset({"type", "data", *OPTIONAL_STRINGS, *FIXED})
# orjson turns integers past 64 bits into floats: a body with 19+ digits in a row goes to the stdlib.
# (bytes.translate + ``in`` finds them several times faster than a regular expression.)
_LONG_RUN = b"0" * 19
_DIGITS_AS_ZERO = bytes(48 if 48 <= c <= 57 else 32 for c in range(256))


def source_of(key: ApiKey, client_source: str | None) -> str:
    """``/api/<key name>``, with a client-given source appended as a sub-path."""
    base = f"/api/{key.name}"
    return f"{base}/{client_source.lstrip('/')}" if client_source else base


def check_envelope(index: int, item: Any) -> list[dict[str, Any]]:
    """Problems with the top-level fields of one event (the registry checks ``data``)."""
    if not isinstance(item, dict):
        return [{"index": index, "field": "", "message": "an event must be a JSON object"}]
    errors = [
        {"index": index, "field": name, "message": "unknown field; allowed: " + ", ".join(sorted(ALLOWED))}
        for name in item
        if name not in ALLOWED
    ]
    for name in ("type", "data"):
        if name not in item:
            errors.append({"index": index, "field": name, "message": "field required"})
    for name, limit in OPTIONAL_STRINGS.items():
        if name not in item:
            continue
        value = item[name]
        if not isinstance(value, str) or not 0 < len(value) <= limit:
            errors.append({"index": index, "field": name, "message": f"must be a string of 1-{limit} characters"})
    for name, fixed in FIXED.items():
        if name in item and item[name] != fixed:
            errors.append({"index": index, "field": name, "message": f"must be {fixed!r}"})
    source = item.get("source")
    if isinstance(source, str) and source and (reason := source_problem(source)):
        errors.append({"index": index, "field": "source", "message": reason})
    return errors


def read_json_body() -> Any:
    """The decoded JSON body, or 415/400/413 problems."""
    if request.mimetype not in JSON_TYPES:
        raise Problem(415, "send the events as Content-Type: application/json")
    raw = request.get_data(cache=False)
    if _LONG_RUN not in raw.translate(_DIGITS_AS_ZERO):
        try:  # orjson is several times faster; whatever it refuses, the stdlib decides (same results)
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem(400, f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise Problem(400, "the body is nested too deeply") from None


@bp.post("/api/v1/events")
def post_events() -> Response:
    """Validate, scope-check and publish one event or a batch; 202 with the ids once accepted."""
    key = require_key()
    settings = api_settings()
    body = read_json_body()
    items = body if isinstance(body, list) else [body]
    if not items:
        raise Problem(422, "the batch is empty", errors=[{"index": None, "field": "", "message": "empty"}])
    if len(items) > settings.max_batch:
        raise Problem(413, f"{len(items)} events in one request; the limit is {settings.max_batch}",
                      slug="too-many-events")
    errors: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        errors.extend(check_envelope(index, item))
        if isinstance(item, dict) and (reason := time_problem(item.get("time"), settings)):
            errors.append({"index": index, "field": "time", "message": reason})
    if errors:
        raise Problem(422, f"{len(errors)} problem(s) in the events; nothing was published", errors=errors)
    require_scope(key, ((i, item["type"]) for i, item in enumerate(items) if isinstance(item["type"], str)))
    out = sink()
    prepared = []
    for index, item in enumerate(items):
        try:
            prepared.append(out.prepare(
                item["type"], item["data"], source=source_of(key, item.get("source")), id=key.event_id(item.get("id")),
                time=item.get("time"), subject=item.get("subject"), userid=item.get("userid"),
                region=item.get("region"),
            ))
        except EventValidationError as exc:
            errors.extend({"index": index, **err} for err in exc.errors)
    if errors:
        raise Problem(422, f"{len(errors)} problem(s) in the events; nothing was published", errors=errors)
    publish(prepared, "events")
    body_out = orjson.dumps({"accepted": len(prepared), "ids": [p.id for p in prepared]})
    return Response(body_out, status=202, mimetype="application/json")
