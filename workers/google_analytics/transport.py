"""Requests to the Measurement Protocol: building bodies within the limits, posting, reading answers.

/mp/collect answers 2xx whenever it received the request (even for events it drops), so only transport
failures are visible: 429, 5xx, other 4xx (a wrong endpoint or secret), timeouts. /debug/mp/collect
answers ``{"validationMessages": [{"fieldPath", "description", "validationCode"}]}``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import requests

from workers.thirdparty import new_session, retry_after

from . import limits
from .mapping import Outgoing

_EVENT_INDEX = re.compile(r"^events\[(\d+)\]")


@dataclass
class Request:
    """One request: the events in it (in body order) and the body bytes."""

    items: list[Outgoing]
    body: bytes


@dataclass
class SendOutcome:
    """What a request came to: ok, or a retry reason and delay, plus validation messages by event index."""

    ok: bool
    reason: str = ""
    delay_s: float | None = None
    messages: dict[int | None, list[str]] = field(default_factory=dict)


def _encode(value: Any) -> bytes:
    return orjson.dumps(value)


def build_requests(items: Sequence[Outgoing]) -> tuple[list[Request], dict[str, str]]:
    """Group events by client (client_id, user_id, user properties) into requests of at most 25 events
    and 130 kB; returns the requests and the events too large to send (id -> reason)."""
    groups: dict[Any, list[Outgoing]] = defaultdict(list)
    for item in items:
        groups[item.group].append(item)
    requests_: list[Request] = []
    too_large: dict[str, str] = {}
    for (client_id, user_id, user_properties), members in groups.items():
        head: dict[str, Any] = {"client_id": client_id}
        if user_id is not None:
            head["user_id"] = user_id
        if user_properties:
            head["user_properties"] = {name: {"value": value} for name, value in user_properties}
        # timestamps have 16 digits until 2286, so the overhead of head + events array is fixed
        overhead = len(_encode({**head, "timestamp_micros": 10**15})) + len(',"events":[]')
        chunk: list[tuple[Outgoing, bytes]] = []
        size = overhead
        for item in members:
            raw = _encode(item.body)
            if overhead + len(raw) + 1 > limits.MAX_BODY_BYTES:
                too_large[item.event_id] = f"event is {len(raw)} bytes; a GA4 request takes 130 kB"
                continue
            if chunk and (len(chunk) == limits.MAX_EVENTS_PER_REQUEST or size + len(raw) + 1 > limits.MAX_BODY_BYTES):
                requests_.append(_request(head, chunk))
                chunk, size = [], overhead
            chunk.append((item, raw))
            size += len(raw) + 1
        if chunk:
            requests_.append(_request(head, chunk))
    return requests_, too_large


def _envelope(head: dict[str, Any], chunk: list[tuple[Outgoing, bytes]]) -> tuple[bytes, bytes]:
    # the request-level timestamp is the latest event's; each event carries its own timestamp_micros
    fields = {**head, "timestamp_micros": max(item.micros for item, _ in chunk)}
    return _encode(fields)[:-1] + b',"events":[', b"]}"


def _request(head: dict[str, Any], chunk: list[tuple[Outgoing, bytes]]) -> Request:
    start, end = _envelope(head, chunk)
    return Request([item for item, _ in chunk], start + b",".join(raw for _, raw in chunk) + end)


class Poster:
    """POSTs JSON bodies to one URL over one keep-alive session (one per sender thread).

    The request (URL with its query string, headers, the session's settings) is prepared once; each
    post sends a copy carrying the new body. That skips what ``session.post`` redoes on every call
    (parsing and encoding the URL and parameters, merging settings): against a nearby endpoint about
    a third of the client's CPU time per request.
    """

    def __init__(self, url: str, params: dict[str, str]) -> None:
        self.session = new_session(url)
        self._template = self.session.prepare_request(
            requests.Request("POST", url, params=params, headers={"Content-Type": "application/json"})
        )

    def post(self, body: bytes, timeout_s: float) -> requests.Response:
        """Send ``body``; raises what requests raises."""
        prepared = self._template.copy()
        prepared.body = body
        prepared.headers["Content-Length"] = str(len(body))
        return self.session.send(prepared, timeout=timeout_s)

    def close(self) -> None:
        """Close the session's connections."""
        self.session.close()


def post(poster: Poster, request: Request, timeout_s: float, validating: bool) -> SendOutcome:
    """Send one request and read its answer; never raises for network trouble (it is an SendOutcome)."""
    try:
        response = poster.post(request.body, timeout_s)
    except requests.RequestException as exc:
        return SendOutcome(False, f"Google Analytics unreachable: {type(exc).__name__}")
    if not 200 <= response.status_code < 300:
        return SendOutcome(False, f"Google Analytics answered {response.status_code}", retry_after(response))
    if not validating:
        return SendOutcome(True)
    return SendOutcome(True, messages=_validation_messages(response))


def _validation_messages(response: requests.Response) -> dict[int | None, list[str]]:
    try:
        found = response.json().get("validationMessages") or []
    except (ValueError, AttributeError):
        return {None: ["the validation server's answer is not JSON"]}
    out: dict[int | None, list[str]] = defaultdict(list)
    for message in found:
        path = str(message.get("fieldPath") or "")
        match = _EVENT_INDEX.match(path)
        text = f"{message.get('description', '')} ({message.get('validationCode', '?')} at {path or 'request'})"
        out[int(match.group(1)) if match else None].append(text)
    return dict(out)
