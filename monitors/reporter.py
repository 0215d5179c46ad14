"""Sends events to the emergency API in batches, through a local durable spool.

Probes hand events to :meth:`Reporter.submit`, which only puts them on a bounded in-memory queue, so
probing never waits on the network or the disk. One sender thread moves queued events into the spool
(one fsync'd transaction per batch), then posts the oldest spooled events to ``POST /api/v1/events``
and deletes them once the API answered 202. Each event carries its probe time and its own ``id``, so a
batch sent again after a lost answer is recognisable downstream.

Outcomes of a POST:

- 2xx: delivered, removed from the spool.
- connection error, timeout, 408, 429, 5xx (503 included), 3xx: the batch stays in the spool; the next
  attempt waits for Retry-After when given, else an exponential backoff up to ``retry_max_s``.
- a redirect (3xx) is never followed, since the key would go along to the host it names; it is
  logged at ERROR and retried like an outage until ``api_url`` is fixed.
- another 4xx: the API refuses the events for good. A batch of several is retried one event at a
  time so only the bad ones are refused; those are written with the problem detail to the
  ``rejected_file`` (JSON lines), logged at ERROR and counted, and removed from the spool.

Bounds: the in-memory queue holds ``queue_size`` events and the spool ``spool_max_bytes``; past either,
new events are dropped, logged at ERROR and counted in ``stats()["dropped"]``. Events still queued in
memory (not yet in the spool) are lost if the process is killed with SIGKILL; SIGTERM spools them.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sink_lib.errors import SpoolError, SpoolFullError
from sink_lib.retry import Backoff, parse_retry_after
from sink_lib.spool import Spool, SpoolRecord

from .errors import ReporterError
from .transport import Answer, RequestsTransport, Transport, TransportError

log = logging.getLogger(__name__)
EVENTS_PATH = "/api/v1/events"


@dataclass(frozen=True)
class ReporterSettings:
    """How the reporter reaches the API and what it may keep."""

    api_url: str
    api_key: str
    spool_dir: Path
    spool_max_bytes: int = 64 << 20
    rejected_file: Path | None = None
    queue_size: int = 10_000
    batch_size: int = 100
    flush_interval_s: float = 1.0
    timeout_s: float = 5.0
    retry_min_s: float = 0.5
    retry_max_s: float = 60.0


class Reporter:
    """Durable, batched, non-blocking delivery of events to the emergency API."""

    def __init__(self, settings: ReporterSettings, transport: Transport | None = None) -> None:
        self.settings = settings
        self.transport = transport or RequestsTransport()
        try:
            self.spool = Spool(settings.spool_dir, settings.spool_max_bytes, name="monitor")
            self.spool.count()  # open now: a bad spool_dir is a start-up error, not a later surprise
        except SpoolError as exc:
            raise ReporterError(f"cannot use the spool in {settings.spool_dir}: {exc}") from exc
        self._queue: queue.Queue[tuple[str, bytes]] = queue.Queue(settings.queue_size)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_attempt = 0.0
        self._backoff = Backoff(settings.retry_min_s, max(settings.retry_max_s, settings.retry_min_s))
        self._lock = threading.Lock()
        self.counts = {"submitted": 0, "sent": 0, "retries": 0, "rejected": 0, "dropped": 0}
        self.last_error: str | None = None

    # -- producer side -------------------------------------------------------------------------

    def submit(self, events: Sequence[dict[str, Any]]) -> None:
        """Queue events for delivery; never blocks. Drops (counted, logged) when the queue is full."""
        for event in events:
            body = json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()
            try:
                self._queue.put_nowait((event["id"], body))
                self._count("submitted")
            except queue.Full:
                self._count("dropped")
                log.error("reporter queue full (%d events): dropped %s event %s",
                          self.settings.queue_size, event.get("type"), event["id"])

    def stats(self) -> dict[str, Any]:
        """Counters, plus events queued in memory and in the spool."""
        with self._lock:
            out: dict[str, Any] = dict(self.counts)
        out["queued"] = self._queue.qsize()
        out["spooled"] = self.spool.count()
        out["last_error"] = self.last_error
        return out

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.counts[key] += n

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the sender thread."""
        self._thread = threading.Thread(target=self._loop, name="reporter", daemon=True)
        self._thread.start()

    def flush(self, timeout: float) -> bool:
        """Spool what is queued and try to send everything until ``timeout``; True when all were sent."""
        end = time.monotonic() + timeout
        while self._queue.qsize():
            self._spool_queued()
        self._next_attempt = 0.0
        while self.spool.count() and time.monotonic() < end:
            if time.monotonic() >= self._next_attempt:
                self._send_spooled(deadline=end)
            else:
                time.sleep(max(0.0, min(0.05, end - time.monotonic())))
        return self.spool.count() == 0

    def close(self, timeout: float = 5.0) -> None:
        """Stop the sender, spool what is queued and send what the API takes within ``timeout``.

        What is not delivered stays in the spool for the next start.
        """
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=max(timeout, 0.1) + self.settings.timeout_s)
        if not self.flush(timeout):
            log.warning("%d events stay in the spool %s until the next start",
                        self.spool.count(), self.spool.path)
        stats = self.stats()
        log.info("reporter stopped: %s", " ".join(f"{k}={v}" for k, v in stats.items() if k != "last_error"))
        self.spool.close()

    # -- sender --------------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._spool_queued(wait=self.settings.flush_interval_s)
            if self._stop.is_set():
                return
            if time.monotonic() >= self._next_attempt:
                try:
                    self._send_spooled()
                except SpoolError as exc:
                    log.error("spool error: %s", exc)
                    self._stop.wait(1.0)
                except Exception:  # the sender must outlive any bug in a transport
                    log.exception("reporter: unexpected error while sending; retrying in 1 s")
                    self._stop.wait(1.0)

    def _spool_queued(self, wait: float = 0.0) -> None:
        """Move queued events to the spool, waiting up to ``wait`` for the first."""
        batch: list[tuple[str, bytes]] = []
        try:
            batch.append(self._queue.get(timeout=wait) if wait else self._queue.get_nowait())
        except queue.Empty:
            return
        while len(batch) < 1000:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        try:
            self.spool.append(batch)
        except SpoolFullError as exc:
            self._count("dropped", len(batch))
            log.error("spool full, %d events dropped: %s", len(batch), exc)
        except SpoolError as exc:
            self._count("dropped", len(batch))
            log.error("spool unusable, %d events dropped: %s", len(batch), exc)

    def _send_spooled(self, deadline: float | None = None) -> None:
        """Send spooled events oldest first until the spool is empty, the API fails or time is up."""
        while deadline is None or time.monotonic() < deadline:
            if self._stop.is_set() and deadline is None:
                return
            records = self.spool.claim(self.settings.batch_size)
            if not records or not self._deliver(records, deadline):
                return

    def _deliver(self, records: list[SpoolRecord], deadline: float | None = None) -> bool:
        """Post one batch and settle its records; False when the API should be retried later."""
        outcome, answer, detail = self._post(records, deadline)
        if outcome == "sent":
            self.spool.ack([r.seq for r in records])
            self._count("sent", len(records))
            self._backoff.reset()
            self.last_error = None
            return True
        if outcome == "retry":
            self.spool.release([r.seq for r in records])
            self._count("retries")
            # the API's Retry-After wins over our own backoff (parse_retry_after caps it at 10 minutes)
            delay = self._backoff.next_delay(parse_retry_after(answer.headers.get("retry-after")) if answer else None)
            self._next_attempt = time.monotonic() + delay
            if self.last_error != detail:
                log.warning("emergency API unavailable (%s); events kept in the spool, next try in %.1fs",
                            detail, delay)
            self.last_error = detail
            return False
        if len(records) > 1 and answer is not None and answer.status not in (401, 403):
            for record in records:  # find the refused events; the others still get through
                if not self._deliver([record], deadline):
                    self.spool.release([r.seq for r in records if r.seq > record.seq])
                    return False
            return True
        self._reject(records, detail)
        return True

    def _post(self, records: list[SpoolRecord], deadline: float | None) -> tuple[str, Answer | None, str]:
        body = b"[" + b",".join(r.body for r in records) + b"]"
        headers = {"Content-Type": "application/json", "X-API-Key": self.settings.api_key,
                   "Accept": "application/json, application/problem+json"}
        timeout = self.settings.timeout_s
        if deadline is not None:
            timeout = max(0.1, min(timeout, deadline - time.monotonic()))
        try:
            answer = self.transport.post(self.settings.api_url + EVENTS_PATH, body, headers, timeout)
        except TransportError as exc:
            return "retry", None, f"unreachable: {exc}"
        if 200 <= answer.status < 300:
            return "sent", answer, ""
        if 300 <= answer.status < 400:
            # not followed: the key goes to the configured API only; the events wait for a fixed api_url
            where = answer.headers.get("location", "(no Location)")
            log.error("the emergency API answered a redirect (HTTP %d) to %s, not followed with the API key; "
                      "set api_url to the API's own address", answer.status, where)
            return "retry", answer, f"HTTP {answer.status} redirect to {where}, not followed"
        detail = f"HTTP {answer.status}: {_problem(answer)}"
        if answer.status in (408, 429) or answer.status >= 500:
            return "retry", answer, detail
        return "reject", answer, detail

    def _reject(self, records: list[SpoolRecord], detail: str) -> None:
        path = self.settings.rejected_file or self.settings.spool_dir / "rejected.jsonl"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as out:
                for record in records:
                    out.write(json.dumps({"rejected_at": time.time(), "problem": detail,
                                          "event": json.loads(record.body)}) + "\n")
        except OSError as exc:
            log.error("cannot write %s (%s); the refused events are dropped", path, exc)
        self.spool.ack([r.seq for r in records])
        self._count("rejected", len(records))
        log.error("emergency API refused %d event(s) for good (%s); written to %s",
                  len(records), detail, path)


def _problem(answer: Answer) -> str:
    """The RFC 7807 title/detail (and field errors) of a refusal, or the start of the body."""
    try:
        problem = json.loads(answer.body)
    except ValueError:
        return answer.body[:300].decode("utf-8", "replace") or "(empty body)"
    if not isinstance(problem, dict):
        return str(problem)[:300]
    parts = [str(problem[k]) for k in ("title", "detail") if problem.get(k)]
    if problem.get("errors"):
        parts.append(json.dumps(problem["errors"])[:500])
    return " - ".join(parts) or json.dumps(problem)[:300]
