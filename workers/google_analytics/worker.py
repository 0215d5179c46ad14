"""The google_analytics worker: sends user-activity events to GA4 through the Measurement Protocol."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar

from prometheus_client import CollectorRegistry

from sink_lib.event import Event
from workers.errors import RejectEvents, RetryLater
from workers.plugin import WorkerPlugin
from workers.thirdparty import PluginCounters

from .mapping import Mapper, Outgoing, Unsendable
from .settings import GoogleAnalyticsSettings
from .transport import Poster, Request, SendOutcome, build_requests, post

log = logging.getLogger(__name__)


class SentIds:
    """The last ``size`` event ids sent: GA4 cannot deduplicate, so a redelivery is not sent twice."""

    def __init__(self, size: int) -> None:
        self._ids: set[str] = set()
        self._order: deque[str] = deque()
        self._size = size

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def add(self, ids: Sequence[str]) -> None:
        """Remember ``ids``, forgetting the oldest beyond the size."""
        if not self._size:
            return
        for event_id in ids:
            if event_id not in self._ids:
                self._ids.add(event_id)
                self._order.append(event_id)
        while len(self._order) > self._size:
            self._ids.discard(self._order.popleft())


class GoogleAnalyticsWorker(WorkerPlugin):
    """Sends user-activity events to Google Analytics 4 through the Measurement Protocol.

    Mapping and limits in :mod:`.mapping` / :mod:`.limits`; one request per client id, up to 25 events.
    """

    name: ClassVar[str] = "google_analytics"
    settings_model: ClassVar[type[GoogleAnalyticsSettings]] = GoogleAnalyticsSettings
    accepts: ClassVar[Sequence[str] | None] = (
        "activity.*",
        "traffic.page.viewed",
        "traffic.resource.downloaded",
        "storage.*",
        "extraction.*",
    )

    settings: GoogleAnalyticsSettings

    def __init__(self, settings: GoogleAnalyticsSettings) -> None:
        super().__init__(settings)
        self.mapper = Mapper(settings)
        self._params = {"measurement_id": settings.measurement_id,
                        "api_secret": settings.api_secret.get_secret_value()}
        self._local = threading.local()
        self._posters: list[Poster] = []
        self._pool: ThreadPoolExecutor | None = None
        self.skipped = 0  # events acked unsent: no client id and no userid
        self.invalid = 0  # events dead-lettered as invalid: beyond GA4's limits, or named by its validation
        self.sent = SentIds(0 if settings.validate_only else settings.remember_sent)

    def register_metrics(self, registry: CollectorRegistry) -> None:
        """Export the skipped and invalid counts on the worker's ``/metrics``."""
        registry.register(PluginCounters(self.name, [
            ("eventsink_google_analytics_events_skipped",
             "Events acked unsent: no client id and no userid.", lambda: self.skipped),
            ("eventsink_google_analytics_events_invalid",
             "Events dead-lettered as invalid (GA4 limits or validation messages).", lambda: self.invalid),
        ]))

    def open(self) -> None:
        """Start the sender threads (connections open on the first request)."""
        if self.settings.concurrency > 1:
            self._pool = ThreadPoolExecutor(self.settings.concurrency, thread_name_prefix="ga-send")

    def close(self) -> None:
        """Stop the sender threads and close the HTTP sessions."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        for poster in self._posters:
            poster.close()
        self._posters.clear()

    def write(self, batch: Sequence[Event]) -> None:
        """Send ``batch``; raise RejectEvents / RetryLater for the events GA4 did not take."""
        rejected: dict[str, str] = {}
        items: list[Outgoing] = []
        for event in batch:
            if event.id in self.sent:
                continue
            try:
                items.append(self.mapper.map(event))
            except Unsendable as exc:
                if exc.skip:
                    self.skipped += 1
                    log.info("not sending event %s to GA4: %s (%d so far)", event.id, exc.reason, self.skipped)
                else:
                    rejected[event.id] = exc.reason
        requests_, too_large = build_requests(items)
        rejected.update(too_large)
        retry: set[str] = set()
        reason, delay = "", None
        for request, answer in zip(requests_, self._send_all(requests_), strict=True):
            ids = [item.event_id for item in request.items]
            if answer.ok:
                self.sent.add(ids)
            else:
                retry.update(ids)
                reason = reason or answer.reason
                if answer.delay_s is not None:
                    delay = answer.delay_s if delay is None else min(delay, answer.delay_s)
            for index, messages in answer.messages.items():
                named = ids if index is None or index >= len(ids) else [ids[index]]
                for event_id in named:
                    rejected[event_id] = "GA4 validation: " + "; ".join(messages)
                log.warning("GA4 validation of event(s) %s: %s", ", ".join(named), "; ".join(messages))
        if rejected:
            self.invalid += len(rejected)
            raise RejectEvents(rejected, retry_ids=retry)
        if retry:
            raise RetryLater(reason, event_ids=retry, delay_s=delay)

    def _send_all(self, requests_: list[Request]) -> list[SendOutcome]:
        if self._pool is None or len(requests_) < 2:
            return [self._send(request) for request in requests_]
        return list(self._pool.map(self._send, requests_))

    def _send(self, request: Request) -> SendOutcome:
        poster = getattr(self._local, "poster", None)
        if poster is None:
            poster = self._local.poster = Poster(self.settings.collect_url, self._params)
            self._posters.append(poster)
        return post(poster, request, self.settings.timeout_s, self.settings.validate_only)
