"""The monitor of one region: probes, status tracking and reporting wired together."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterable
from typing import Any

from sink_lib.errors import EventValidationError
from sink_lib.event import format_time

from .config import MonitorConfig
from .errors import MonitorConfigError
from .probes import make_probe
from .probes.base import ProbeResult, utcnow
from .reporter import Reporter, ReporterSettings, Transport
from .scheduler import Job, Scheduler
from .status import StatusChange, StatusTracker
from .types import monitor_registry

log = logging.getLogger(__name__)


class Monitor:
    """Probes the configured targets and reports results and state changes (``report=False``: no reporter)."""

    def __init__(self, config: MonitorConfig, *, report: bool = True, transport: Transport | None = None) -> None:
        self.config = config
        self.registry = monitor_registry()
        self.trackers = {t.name: StatusTracker(t) for t in config.targets}
        self.invalid = 0
        self.reporter: Reporter | None = None
        if report:
            key = config.key()
            if not key:
                raise MonitorConfigError(["api_key: missing; set api_key, api_key_file or EVENTSINK_MONITOR_API_KEY"])
            self.reporter = Reporter(self.reporter_settings(key), transport)
        jobs = [Job(t.name, make_probe(t), t.interval_s, t.timeout_s) for t in config.targets]
        self.scheduler = Scheduler(jobs, self.handle, max_concurrency=config.max_concurrency,
                                   jitter_s=config.jitter_s)
        self.scheduler.every(config.heartbeat_s, self.heartbeat)

    def reporter_settings(self, key: str) -> ReporterSettings:
        """The reporter's settings from the configuration."""
        c = self.config
        return ReporterSettings(
            api_url=c.api_url, api_key=key, spool_dir=c.spool_dir, spool_max_bytes=c.spool_max_bytes,
            rejected_file=c.rejected_path, queue_size=c.queue_size, batch_size=c.batch_size,
            flush_interval_s=c.flush_interval_s, timeout_s=c.api_timeout_s, retry_max_s=c.retry_max_s,
        )

    # -- results -> events ---------------------------------------------------------------------

    def handle(self, result: ProbeResult) -> None:
        """Turn one result into its event and any status change, and hand them to the reporter."""
        events = [self.envelope(result.event_type, result.data, result.target, result)]
        change = self.trackers[result.target].observe(result)
        if change is not None:
            log.info("%s is %s%s", change.service, change.state, f" ({change.message})" if change.message else "")
            events.append(self.status_event(change))
        self.send(events)

    def heartbeat(self) -> None:
        """Report every known state (uptime is computed from these and the changes)."""
        self.send(self.status_event(c) for t in self.trackers.values() if (c := t.heartbeat()) is not None)

    def status_event(self, change: StatusChange) -> dict[str, Any]:
        """The health.status event of a change or heartbeat."""
        data: dict[str, Any] = {"service": change.service, "state": change.state}
        if change.message:
            data["message"] = change.message[:2048]
        return self.envelope("health.status", data, change.service)

    def envelope(self, type_name: str, data: dict[str, Any], subject: str,
                 result: ProbeResult | None = None) -> dict[str, Any]:
        """The event as posted to the API: id, type, time of the probe, source, subject, region, data."""
        moment = result.started if result is not None else utcnow()
        return {"id": str(uuid.uuid4()), "type": type_name, "time": format_time(moment),
                "source": self.config.event_source, "subject": subject, "region": self.config.region,
                "data": data}

    def send(self, events: Iterable[dict[str, Any]]) -> None:
        """Validate locally (a bug shows here, not as a 422 later) and submit."""
        valid = []
        for event in events:
            try:
                self.registry.validate(event["type"], event["data"])
            except EventValidationError as exc:
                self.invalid += 1
                log.error("monitor produced an invalid event, not sent: %s", exc)
                continue
            valid.append(event)
        if self.reporter is not None and valid:
            self.reporter.submit(valid)

    # -- running -------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Probe until ``stop`` is set, then shut down within ``shutdown_timeout_s``."""
        if self.reporter is not None:
            self.reporter.start()
        try:
            self.scheduler.run(stop)
        finally:
            self.close()

    def run_once(self) -> list[ProbeResult]:
        """Probe every target once and report the results (state = the result itself)."""
        results = self.scheduler.run_once()
        for result in results:
            self.handle(result)
        return results

    def close(self) -> None:
        """Stop probing and send what can be sent within the shutdown bound; the rest stays spooled."""
        self.scheduler.close()
        if self.reporter is not None:
            self.reporter.close(self.config.shutdown_timeout_s)
