"""``POST /api/v1/events``: one CloudEvents-style object, or a JSON array of them.

A client sends at least ``type`` and ``data``; it may send ``id`` (for idempotent retries; published
scoped to its key, see ``ApiKey.event_id``), ``time``,
``subject``, ``userid``, ``region`` and ``source`` (appended to the key's source). ``specversion``
and ``datacontenttype`` may be sent if they hold the only values the API writes. Any other
top-level field is refused. A batch is all-or-nothing: if one event is invalid, none is published.
The envelope rules are :class:`~.envelope.PostedEvent`'s, the same model the OpenAPI schema comes from.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from flask import Blueprint, Flask, Response, request

from sink_lib.errors import EventValidationError

from .auth import admit, key_from_headers, require_key, require_scope
from .envelope import envelope_errors
from .ingest import Sink, api_settings, publish, publish_async, sink
from .keys import ApiKey, KeyStore
from .native import NativeRequest, NativeRoute, Reply
from .problems import Problem
from .ratelimit import RateLimiter
from .settings import ApiSettings

bp = Blueprint("events", __name__)

JSON_TYPES = frozenset({"application/json", "application/cloudevents+json", "application/cloudevents-batch+json"})
# orjson turns integers past 64 bits into floats: a body with 19+ digits in a row goes to the stdlib.
# (bytes.translate + ``in`` finds them several times faster than a regular expression.)
_LONG_RUN = b"0" * 19
_DIGITS_AS_ZERO = bytes(48 if 48 <= c <= 57 else 32 for c in range(256))


def source_of(key: ApiKey, client_source: str | None) -> str:
    """``/api/<key name>``, with a client-given source appended as a sub-path."""
    base = f"/api/{key.name}"
    return f"{base}/{client_source.lstrip('/')}" if client_source else base


def decode_json(mimetype: str, raw: bytes) -> Any:
    """The decoded JSON body, or 415/400 problems."""
    if mimetype not in JSON_TYPES:
        raise Problem(415, "send the events as Content-Type: application/json")
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


def accept_events(key: ApiKey, settings: ApiSettings, out: Sink, body: Any) -> list[Any]:
    """Validate and scope-check one event or a batch and prepare each for publishing (all or none)."""
    items = body if isinstance(body, list) else [body]
    if not items:
        raise Problem(422, "the batch is empty", errors=[{"index": None, "field": "", "message": "empty"}])
    if len(items) > settings.max_batch:
        raise Problem(413, f"{len(items)} events in one request; the limit is {settings.max_batch}",
                      slug="too-many-events")
    errors: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        errors.extend(envelope_errors(index, item, settings))
    if errors:
        raise Problem(422, f"{len(errors)} problem(s) in the events; nothing was published", errors=errors)
    require_scope(key, ((i, item["type"]) for i, item in enumerate(items) if isinstance(item["type"], str)))
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
    return prepared


def accepted_body(prepared: list[Any]) -> bytes:
    """The 202 answer: how many events were accepted and their ids."""
    return orjson.dumps({"accepted": len(prepared), "ids": [p.id for p in prepared]})


@bp.post("/api/v1/events")
def post_events() -> Response:
    """Validate, scope-check and publish one event or a batch; 202 with the ids once accepted."""
    key = require_key()
    body = decode_json(request.mimetype, request.get_data(cache=False))
    prepared = accept_events(key, api_settings(), sink(), body)
    publish(prepared, "events")
    return Response(accepted_body(prepared), status=202, mimetype="application/json")


class EventsRoute(NativeRoute):
    """``POST /api/v1/events`` on an event loop (the ``eventsink`` worker class): the same checks as
    :func:`post_events`, then the confirm (or the spool's fsync) is awaited instead of blocking a thread."""

    route = "/api/v1/events"

    def __init__(self, app: Flask) -> None:
        self.settings: ApiSettings = app.extensions["eventsink_settings"]
        self.sink: Sink = app.extensions["eventsink_sink"]
        self.keys: KeyStore = app.extensions["eventsink_keys"]
        self.limiter: RateLimiter | None = app.extensions.get("eventsink_limiter")

    async def answer(self, request: NativeRequest) -> Reply:
        """202 with the ids, or raise the problem."""
        headers = request.headers
        key = admit(self.keys, self.limiter, key_from_headers(headers.get("x-api-key"), headers.get("authorization")),
                    request.remote_addr)
        mimetype = headers.get("content-type", "").partition(";")[0].strip().lower()
        prepared = accept_events(key, self.settings, self.sink, decode_json(mimetype, request.body))
        await publish_async(self.sink, self.settings, prepared, "events")
        return 202, [("Content-Type", "application/json")], accepted_body(prepared)
