"""One HTTP V2 / batch request to Amplitude, and what its answer says about each event in it.

Amplitude's answers (https://amplitude.com/docs/apis/analytics/http-v2):

- 200: every event of the request was ingested.
- 400: ``events_with_invalid_fields`` / ``events_with_missing_fields`` / ``events_with_invalid_id_lengths``
  (field -> indexes) and ``silenced_events`` (indexes) name the events refused; the others were not
  ingested and can be resent. ``missing_field`` or ``Invalid API key`` concern the whole request.
- 413: the payload is too large; split it.
- 429: ``throttled_events`` (indexes) exceeded the per user/device rate (``throttled_users`` /
  ``throttled_devices``) or the daily quota (``exceeded_daily_quota_users`` / ``_devices``).
- 5xx, 408 and network errors: transient.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import requests

from workers.thirdparty import retry_after

from .mapping import Outgoing

_INDEX_LISTS = (
    ("events_with_invalid_fields", "invalid field"),
    ("events_with_missing_fields", "missing field"),
    ("events_with_invalid_id_lengths", "id too short"),
)


@dataclass
class Reply:
    """Amplitude's answer to one request: status, parsed body, Retry-After hint."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)
    retry_after_s: float | None = None

    @property
    def error(self) -> str:
        """Amplitude's ``error`` text, or the HTTP status."""
        return str(self.body.get("error") or f"HTTP {self.status}")

    def refused(self, size: int) -> dict[int, str]:
        """400: index -> reason for each event the body names (indexes within ``size`` only)."""
        out: dict[int, str] = {}
        for key, what in _INDEX_LISTS:
            for name, indexes in (self.body.get(key) or {}).items():
                for index in _indexes(indexes, size):
                    out.setdefault(index, f"Amplitude 400: {what} {name!r} ({self.error})")
        for index in _indexes(self.body.get("silenced_events"), size):
            out.setdefault(index, "Amplitude 400: the event's device is silenced (blocked) in Amplitude")
        return out

    @property
    def request_level_error(self) -> bool:
        """400 about the request itself (API key, missing api_key/events): no event is to blame."""
        return bool(self.body.get("missing_field")) or self.error.startswith("Invalid API key")

    def throttled(self, size: int) -> set[int]:
        """429: indexes of the events throttled or over quota."""
        return set(_indexes(self.body.get("throttled_events"), size))

    def over_daily_quota(self, item: Outgoing) -> bool:
        """429: True when the event's user or device exceeded Amplitude's daily quota."""
        users = self.body.get("exceeded_daily_quota_users") or {}
        devices = self.body.get("exceeded_daily_quota_devices") or {}
        return (item.user_id is not None and item.user_id in users) or (
            item.device_id is not None and item.device_id in devices
        )


def _indexes(value: Any, size: int) -> list[int]:
    if not isinstance(value, list):
        return []
    return [i for i in value if isinstance(i, int) and 0 <= i < size]


def request_body(api_key: str, events: Sequence[bytes], options: dict[str, Any] | None) -> bytes:
    """The JSON body ``{"api_key", "events", "options"?}`` built from events serialised once."""
    head = b'{"api_key":' + json.dumps(api_key).encode() + b',"events":['
    tail = b"]" + (b',"options":' + json.dumps(options).encode() if options else b"") + b"}"
    return head + b",".join(events) + tail


def post(session: requests.Session, url: str, body: bytes, timeout_s: float) -> Reply:
    """POST one request; network errors and timeouts propagate as ``requests`` exceptions."""
    response = session.post(
        url, data=body, headers={"Content-Type": "application/json", "Accept": "*/*"}, timeout=timeout_s
    )
    try:
        parsed = response.json()
    except ValueError:
        parsed = {}
    return Reply(response.status_code, parsed if isinstance(parsed, dict) else {}, retry_after(response))
