"""Runs each target's probe on its own interval, concurrently, with jitter and a hard timeout.

One scheduler thread keeps a heap of due times and hands probes to a thread pool, so a slow target
never delays another. A run still going at its next due time is skipped (counted), never stacked. A run
that has not finished ``grace_s`` after its timeout is reported as failed by the scheduler itself and
its late result is dropped; this covers steps a socket timeout cannot bound (``getaddrinfo``).
Runs are spread on a fixed grid per target (no drift) plus a random 0..``jitter_s`` delay.
"""

from __future__ import annotations

import heapq
import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .probes.base import Probe, ProbeResult, utcnow

log = logging.getLogger(__name__)
GRACE_S = 0.25


@dataclass
class Job:
    """One target's probe and schedule."""

    name: str
    probe: Probe
    interval_s: float
    timeout_s: float
    running: int = 0  # run number in flight (0: none)
    settled: set[int] = field(default_factory=set)  # runs whose result one side (probe or deadline) sent
    runs: int = 0


class Scheduler:
    """Schedules jobs; ``on_result`` is called (from pool threads) once per run."""

    def __init__(
        self,
        jobs: list[Job],
        on_result: Callable[[ProbeResult], None],
        *,
        max_concurrency: int = 64,
        jitter_s: float = 1.0,
        grace_s: float = GRACE_S,
    ) -> None:
        self.jobs = jobs
        self.on_result = on_result
        self.jitter_s = jitter_s
        self.grace_s = grace_s
        self.skipped = 0
        self.timed_out = 0
        self._pool = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="probe")
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, str, int, int]] = []  # (due, tie, what, job index, run)
        self._tie = 0
        self._timers: list[tuple[float, Callable[[], None]]] = []

    def every(self, period_s: float, fn: Callable[[], None]) -> None:
        """Also call ``fn`` (quick, in the scheduler thread) every ``period_s``."""
        self._timers.append((period_s, fn))

    def _push(self, due: float, what: str, index: int, run: int = 0) -> None:
        self._tie += 1
        heapq.heappush(self._heap, (due, self._tie, what, index, run))
        self._cond.notify()

    def run(self, stop: threading.Event) -> None:
        """Probe until ``stop`` is set; every target starts within its first interval."""
        start = time.monotonic()
        with self._cond:
            for index, job in enumerate(self.jobs):
                first = random.uniform(0, min(job.interval_s, self.jitter_s))
                self._push(start + first, "run", index)
            for index, (period, _) in enumerate(self._timers):
                self._push(start + period, "timer", index)
        while not stop.is_set():
            with self._cond:
                now = time.monotonic()
                if not self._heap or self._heap[0][0] > now:
                    wait = self._heap[0][0] - now if self._heap else 1.0
                    self._cond.wait(min(wait, 0.5))
                    continue
                due, _, what, index, run = heapq.heappop(self._heap)
                if what == "run":
                    self._due(index, due)
                elif what == "deadline":
                    self._deadline(index, run)
                else:
                    period, fn = self._timers[index]
                    self._push(due + period, "timer", index)
            if what == "timer":
                try:
                    fn()
                except Exception:
                    log.exception("periodic task failed")

    def _due(self, index: int, due: float) -> None:
        job = self.jobs[index]
        self._push(due + job.interval_s + random.uniform(0, self.jitter_s), "run", index)
        if job.running:
            self.skipped += 1
            log.warning("%s: previous probe still running; this run is skipped", job.name)
            return
        job.runs += 1
        job.running = job.runs
        self._pool.submit(self._execute, index, job.runs)

    def _execute(self, index: int, run: int) -> None:
        job = self.jobs[index]
        started = utcnow()
        with self._cond:
            self._push(time.monotonic() + job.timeout_s + self.grace_s, "deadline", index, run)
        try:
            result = job.probe.run()
        except Exception as exc:  # a bug in a probe must not stop the target's schedule
            log.exception("%s: probe crashed", job.name)
            result = job.probe.failed(f"probe error: {type(exc).__name__}: {exc}", started)
        with self._cond:
            job.running = 0
            late = run in job.settled
            if late:
                job.settled.discard(run)
            else:
                job.settled.add(run)
        if late:
            log.info("%s: result arrived after the timeout was reported; dropped", job.name)
            return
        self.on_result(result)

    def _deadline(self, index: int, run: int) -> None:
        job = self.jobs[index]
        if run in job.settled:  # the probe finished in time
            job.settled.discard(run)
            return
        job.settled.add(run)
        self.timed_out += 1
        result = job.probe.failed(f"timed out after {job.timeout_s:g}s", utcnow())
        self._pool.submit(self.on_result, result)

    def run_once(self) -> list[ProbeResult]:
        """Probe every target once, concurrently; results in target order (timeouts included)."""
        start, started = time.monotonic(), utcnow()
        futures = [self._pool.submit(_guarded, job) for job in self.jobs]
        results = []
        for job, future in zip(self.jobs, futures, strict=True):
            try:
                left = start + job.timeout_s + self.grace_s - time.monotonic()
                results.append(future.result(timeout=max(0.0, left)))
            except TimeoutError:
                results.append(job.probe.failed(f"timed out after {job.timeout_s:g}s", started))
        return results

    def close(self, wait: bool = False) -> None:
        """Stop the pool (running probes finish on their own timeouts unless ``wait``)."""
        self._pool.shutdown(wait=wait, cancel_futures=True)


def _guarded(job: Job) -> ProbeResult:
    started = utcnow()
    try:
        return job.probe.run()
    except Exception as exc:
        log.exception("%s: probe crashed", job.name)
        return job.probe.failed(f"probe error: {type(exc).__name__}: {exc}", started)
