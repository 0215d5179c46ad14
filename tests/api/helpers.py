"""Test helpers of the emergency API: a fake EventSink and a problem+json assertion."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sink_lib.event import build_envelope, encode
from sink_lib.registry import TypeRegistry, default_registry


@dataclass(frozen=True)
class PreparedEvent:
    """What ``EventSink.prepare`` returns, as far as the API uses it."""

    id: str
    type: str
    body: bytes
    envelope: dict[str, Any]


class FakeSink:
    """Implements the EventSink methods the API uses; records what was submitted."""

    def __init__(self, *, strict: bool = False, registry: TypeRegistry | None = None) -> None:
        self.registry = registry or default_registry()
        self.strict = strict
        self.submitted: list[PreparedEvent] = []
        self.fail_with: BaseException | None = None
        self.is_ready = True
        self.lock = threading.Lock()

    def prepare(self, type: str, data: dict[str, Any], *, source: str | None = None, id: str | None = None,
                time: Any = None, subject: str | None = None, userid: str | None = None,
                region: str | None = None) -> PreparedEvent:
        self.registry.validate(type, data, strict=self.strict)
        envelope = build_envelope(type, data, source=source or "/eventsink", id=id, time=time,
                                  subject=subject, userid=userid, region=region)
        return PreparedEvent(envelope["id"], type, encode(envelope, 1 << 20), envelope)

    def submit(self, events: Sequence[PreparedEvent], *, wait: float | None = None) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        with self.lock:
            self.submitted.extend(events)

    async def submit_async(self, events: Sequence[PreparedEvent], *, wait: float) -> None:
        self.submit(events, wait=wait)

    def ready(self) -> bool:
        return self.is_ready

    def stats(self) -> dict[str, Any]:
        return {"spooled": 0, "spool_pending": 0, "connected": self.is_ready}

    def close(self, timeout: float = 10.0) -> None:
        pass

    @property
    def envelopes(self) -> list[dict[str, Any]]:
        return [p.envelope for p in self.submitted]



def assert_problem(response: Any, status: int) -> dict[str, Any]:
    """The response is an RFC 7807 problem with ``status`` and no stack trace; return its body."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = response.get_json()
    assert body["status"] == status
    assert body["type"].startswith("https://") and body["title"] and body["detail"]
    assert "Traceback" not in response.get_data(as_text=True)
    return body
