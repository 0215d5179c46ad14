"""The amplitude worker: sends user-activity events to Amplitude's HTTP V2 (or batch) API.

``write`` sends synchronously and returns only once Amplitude accepted every event it did not
report otherwise; see the README for why it calls the API itself instead of the SDK's buffered client.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Sequence
from typing import ClassVar

import orjson
import requests
from prometheus_client import CollectorRegistry

from sink_lib.errors import ConfigurationError
from sink_lib.event import Event
from workers.errors import RejectEvents, RetryLater
from workers.plugin import WorkerPlugin
from workers.thirdparty import PluginCounters, new_session

from .mapping import Outgoing, Unsendable, to_amplitude
from .settings import ENV_PREFIX, AmplitudeSettings
from .transport import Reply, post, request_body

log = logging.getLogger(__name__)

_Item = tuple[Outgoing, bytes]


class _Outcome:
    """What happened to a batch: dead letters (id -> reason) and retries (ids, reason, delay)."""

    def __init__(self) -> None:
        self.rejected: dict[str, str] = {}
        self.retry: set[str] = set()
        self.retry_reason = ""
        self.delay_s: float | None = None

    def retry_later(self, items: Sequence[_Item], reason: str, delay_s: float | None = None) -> None:
        self.retry.update(item.event_id for item, _ in items)
        self.retry_reason = self.retry_reason or reason
        if delay_s is not None:
            self.delay_s = delay_s if self.delay_s is None else min(self.delay_s, delay_s)

    def raise_if_needed(self) -> None:
        if self.rejected:
            raise RejectEvents(self.rejected, retry_ids=self.retry)
        if self.retry:
            raise RetryLater(self.retry_reason, event_ids=self.retry, delay_s=self.delay_s)


class AmplitudeWorker(WorkerPlugin):
    """Sends user-activity events to Amplitude's HTTP V2 (or batch) API, honouring each of its answers.

    Mapping in :mod:`.mapping`; answers (413 split, 429 hold, 400 partial) in :meth:`_send`.
    """

    name: ClassVar[str] = "amplitude"
    settings_model: ClassVar[type[AmplitudeSettings]] = AmplitudeSettings
    accepts: ClassVar[Sequence[str] | None] = (
        "activity.*",
        "traffic.page.viewed",
        "traffic.resource.downloaded",
        "storage.*",
        "extraction.*",
    )

    settings: AmplitudeSettings

    def __init__(self, settings: AmplitudeSettings) -> None:
        if not settings.api_key.get_secret_value():
            raise ConfigurationError(f"{ENV_PREFIX}API_KEY is not set: the API key of the Amplitude project")
        super().__init__(settings)
        self._api_key = settings.api_key.get_secret_value()
        self._options = {"min_id_length": settings.min_id_length} if settings.min_id_length != 5 else None
        self._held: dict[str, float] = {}  # "user:<id>" / "device:<id>" -> monotonic time it may send again
        self._session: requests.Session | None = None
        self.skipped = 0  # events acked unsent: no user_id/device_id of the minimum length
        self.throttled = 0  # events held back because Amplitude throttles their user/device

    def register_metrics(self, registry: CollectorRegistry) -> None:
        """Export the skipped and throttled counts on the worker's ``/metrics``."""
        registry.register(PluginCounters(self.name, [
            ("eventsink_amplitude_events_skipped",
             "Events acked unsent: no user or device id of the minimum length.", lambda: self.skipped),
            ("eventsink_amplitude_events_throttled",
             "Events held back because Amplitude throttles their user or device.", lambda: self.throttled),
        ]))

    def open(self) -> None:
        """Create the HTTP session (connections are opened on the first request)."""
        self._session = new_session(self.settings.url)

    def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            self._session.close()
            self._session = None

    def write(self, batch: Sequence[Event]) -> None:
        """Send ``batch``; raise RejectEvents / RetryLater for the events Amplitude did not take."""
        outcome = _Outcome()
        items: list[_Item] = []
        now = time.monotonic()
        for event in batch:
            try:
                item = to_amplitude(event, self.settings)
            except Unsendable as exc:
                if exc.skip:
                    self.skipped += 1
                    log.info("not sending event %s to Amplitude: %s (%d so far)", event.id, exc.reason,
                             self.skipped)
                else:
                    outcome.rejected[event.id] = exc.reason
                continue
            wait = self._held_for(item, now)
            if wait > 0:
                self.throttled += 1
                outcome.retry_later([(item, b"")], "Amplitude throttles this user/device", wait)
                continue
            items.append((item, orjson.dumps(item.body)))
        if items:
            self._send(self._chunks(items, outcome), outcome)
        outcome.raise_if_needed()

    def _held_for(self, item: Outgoing, now: float) -> float:
        if not self._held:
            return 0.0
        until = max(
            self._held.get(f"user:{item.user_id}", 0.0) if item.user_id else 0.0,
            self._held.get(f"device:{item.device_id}", 0.0) if item.device_id else 0.0,
        )
        if until <= now:
            self._held = {key: t for key, t in self._held.items() if t > now}
        return max(0.0, until - now)

    def _chunks(self, items: list[_Item], outcome: _Outcome) -> deque[list[_Item]]:
        """Split into requests within the event-count and byte limits; oversize events are rejected."""
        limit = self.settings.request_byte_limit - len(request_body(self._api_key, [], self._options))
        chunks: deque[list[_Item]] = deque()
        current: list[_Item] = []
        size = 0
        for item, raw in items:
            if len(raw) + 1 > limit:
                outcome.rejected[item.event_id] = f"event is {len(raw)} bytes; an Amplitude request takes {limit}"
                continue
            if current and (len(current) >= self.settings.max_events_per_request or size + len(raw) + 1 > limit):
                chunks.append(current)
                current, size = [], 0
            current.append((item, raw))
            size += len(raw) + 1
        if current:
            chunks.append(current)
        return chunks

    def _send(self, pending: deque[list[_Item]], outcome: _Outcome) -> None:
        """Post every chunk; each answer other than 200 shrinks what is left, so this ends."""
        session = self._session or new_session(self.settings.url)
        self._session = session
        while pending:
            chunk = pending.popleft()
            body = request_body(self._api_key, [raw for _, raw in chunk], self._options)
            try:
                answer = post(session, self.settings.url, body, self.settings.timeout_s)
            except requests.RequestException as exc:
                outcome.retry_later([i for c in (chunk, *pending) for i in c], f"Amplitude unreachable: {exc}")
                return
            if 200 <= answer.status < 300:
                continue
            if answer.status == 413 and len(chunk) > 1:
                half = len(chunk) // 2
                pending.extendleft([chunk[half:], chunk[:half]])
            elif answer.status == 413:
                outcome.rejected[chunk[0][0].event_id] = "Amplitude 413: the event alone is too large"
            elif answer.status == 400 and not answer.request_level_error:
                self._refused(chunk, answer, pending, outcome)
            elif answer.status == 429 and answer.throttled(len(chunk)):
                self._throttled(chunk, answer, pending, outcome)
            else:
                rest = [i for c in (chunk, *pending) for i in c]
                reason = f"Amplitude answered {answer.status}: {answer.error}"
                delay = answer.retry_after_s
                if answer.status == 429 and delay is None:
                    delay = self.settings.throttle_backoff_s
                log.warning("%s; %d event(s) will be retried", reason, len(rest))
                outcome.retry_later(rest, reason, delay)
                return

    def _refused(self, chunk: list[_Item], answer: Reply, pending: deque[list[_Item]], outcome: _Outcome) -> None:
        refused = answer.refused(len(chunk))
        if not refused:
            refused = {i: f"Amplitude 400: {answer.error}" for i in range(len(chunk))}
        for index, reason in refused.items():
            outcome.rejected[chunk[index][0].event_id] = reason
        log.warning("Amplitude refused %d event(s): %s", len(refused), answer.error)
        rest = [item for i, item in enumerate(chunk) if i not in refused]
        if rest:
            pending.appendleft(rest)

    def _throttled(self, chunk: list[_Item], answer: Reply, pending: deque[list[_Item]], outcome: _Outcome) -> None:
        """429 naming events: hold their users/devices back, resend the others of the request."""
        until = time.monotonic() + self.settings.throttle_backoff_s
        users = answer.body.get("throttled_users") or {}
        devices = answer.body.get("throttled_devices") or {}
        for user in users:
            self._held[f"user:{user}"] = until
        for device in devices:
            self._held[f"device:{device}"] = until
        throttled = answer.throttled(len(chunk))
        held: list[_Item] = []
        for index in sorted(throttled):
            item = chunk[index]
            if answer.over_daily_quota(item[0]):
                outcome.rejected[item[0].event_id] = "Amplitude 429: the user/device exceeded its daily quota"
                continue
            held.append(item)
            if not users and not devices:  # the answer names the events only: hold their own ids
                key = f"user:{item[0].user_id}" if item[0].user_id else f"device:{item[0].device_id}"
                self._held[key] = until
        now = time.monotonic()
        rest: list[_Item] = []
        for index, item in enumerate(chunk):
            if index not in throttled:
                (held if self._held_for(item[0], now) > 0 else rest).append(item)
        self.throttled += len(held)
        log.warning("Amplitude throttled %d event(s); holding their users/devices back", len(held))
        outcome.retry_later(held, "Amplitude throttled these users/devices", self.settings.throttle_backoff_s)
        if rest:
            pending.appendleft(rest)
