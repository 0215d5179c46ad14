"""Why the worker does not wait on the amplitude-analytics SDK's callbacks (see the README).

These tests pin the SDK behaviour the decision rests on; if a new SDK version changes it, they fail and
the decision can be revisited.
"""

from __future__ import annotations

import threading
from typing import Any

from amplitude import Amplitude, BaseEvent, Config

from tests.privacy.recorder import RecordingServer, Reply

from .conftest import Script


def client(server: RecordingServer, calls: list[tuple[Any, ...]], **config: Any) -> Amplitude:
    done = threading.Event()

    def callback(event: BaseEvent, code: int, message: str | None = None) -> None:
        calls.append((event.insert_id, code, message))
        done.set()

    return Amplitude("bad-key", Config(server_url=f"{server.url}/2/httpapi", callback=callback,
                                       flush_interval_millis=60_000, **config))


def test_sdk_never_calls_back_when_the_api_key_is_refused(amplitude: RecordingServer, script: Script) -> None:
    # Given Amplitude refuses the API key
    script.respond = lambda request: Reply(400, {"code": 400, "error": "Invalid API key: bad-key"})
    calls: list[tuple[Any, ...]] = []
    sdk = client(amplitude, calls)
    try:
        # When an event is tracked and the buffer flushed to completion
        sdk.track(BaseEvent("x", user_id="user-00001", insert_id="ev-1"))
        for future in sdk.flush():
            future.result(timeout=10)
        # Then the request was made and answered, yet no callback ever reports the event:
        # a write() waiting for it would hang until its own timeout
        assert len(amplitude.requests) == 1
        assert calls == []
    finally:
        sdk.shutdown()


def test_sdk_keeps_retrying_a_failed_event_in_its_memory_buffer(amplitude: RecordingServer,
                                                                script: Script) -> None:
    # Given Amplitude answers 500
    script.respond = lambda request: Reply(500, {"code": 500, "error": "down"})
    calls: list[tuple[Any, ...]] = []
    sdk = client(amplitude, calls)
    try:
        sdk.track(BaseEvent("x", user_id="user-00001", insert_id="ev-1"))
        for future in sdk.flush():
            future.result(timeout=10)
        # Then the SDK reports nothing and holds the event for its own retries (up to 12, in memory),
        # which would compete with the runtime's backoff and hold events outside the queue
        assert calls == []
        assert len(amplitude.requests) >= 1
    finally:
        script.respond = lambda request: Reply(200, {"code": 200})
        sdk.shutdown()
