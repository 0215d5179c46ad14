"""The scheduler: concurrent probes, intervals, skipped overlaps, timeouts enforced from outside."""

from __future__ import annotations

import threading
import time
from datetime import datetime

from monitors.probes.base import ProbeResult, utcnow
from monitors.scheduler import Job, Scheduler

from ..support import wait_for


class FakeProbe:
    """Sleeps ``seconds`` then succeeds; counts runs."""

    def __init__(self, name: str, seconds: float) -> None:
        self.name, self.seconds, self.runs = name, seconds, 0

    def run(self) -> ProbeResult:
        self.runs += 1
        time.sleep(self.seconds)
        return ProbeResult(self.name, "fake", True, "health.status", {}, utcnow(), self.seconds * 1000)

    def failed(self, error: str, started: datetime) -> ProbeResult:
        return ProbeResult(self.name, "fake", False, "health.status", {}, started, None, error)


class Collector:
    def __init__(self) -> None:
        self.results: list[ProbeResult] = []
        self.lock = threading.Lock()

    def __call__(self, result: ProbeResult) -> None:
        with self.lock:
            self.results.append(result)

    def of(self, name: str) -> list[ProbeResult]:
        with self.lock:
            return [r for r in self.results if r.target == name]


def running(scheduler: Scheduler) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    thread = threading.Thread(target=scheduler.run, args=(stop,), daemon=True)
    thread.start()
    return stop, thread


def test_a_hanging_probe_does_not_delay_the_others_and_is_reported_failed() -> None:
    # Given a fast target every 0.1 s and one that hangs for 3 s with a 0.3 s timeout
    fast, slow = FakeProbe("fast", 0.0), FakeProbe("slow", 3.0)
    got = Collector()
    scheduler = Scheduler([Job("fast", fast, 0.1, 1.0), Job("slow", slow, 0.1, 0.3)], got, jitter_s=0.0, grace_s=0.05)
    stop, thread = running(scheduler)
    try:
        # Then the fast target keeps its pace while the slow one is stuck
        wait_for(lambda: len(got.of("fast")) >= 10, timeout=5, what="10 fast results")
        timeout_results = wait_for(lambda: got.of("slow"), timeout=5, what="the slow target's timeout")
        assert not timeout_results[0].ok and timeout_results[0].error == "timed out after 0.3s"
        # and the stuck target is not started again while its probe still runs
        assert slow.runs == 1 and scheduler.skipped >= 1
    finally:
        stop.set()
        thread.join(5)
        scheduler.close()
    assert all(r.ok for r in got.of("fast"))


def test_late_result_after_a_timeout_is_dropped() -> None:
    probe = FakeProbe("late", 0.5)
    got = Collector()
    scheduler = Scheduler([Job("late", probe, 10.0, 0.1)], got, jitter_s=0.0, grace_s=0.0)
    stop, thread = running(scheduler)
    try:
        wait_for(lambda: probe.runs == 1 and got.of("late"), timeout=5)
        time.sleep(0.6)  # the probe's own (late) result would arrive in this time
        assert [r.ok for r in got.of("late")] == [False]
    finally:
        stop.set()
        thread.join(5)
        scheduler.close()


def test_run_once_probes_concurrently_and_times_out_stragglers() -> None:
    jobs = [Job(f"t{i}", FakeProbe(f"t{i}", 0.3), 10, 2.0) for i in range(8)]
    jobs.append(Job("stuck", FakeProbe("stuck", 5.0), 10, 0.5))
    scheduler = Scheduler(jobs, lambda r: None, max_concurrency=16, grace_s=0.05)
    start = time.monotonic()
    results = scheduler.run_once()
    elapsed = time.monotonic() - start
    scheduler.close()
    assert [r.target for r in results] == [j.name for j in jobs]
    assert all(r.ok for r in results[:-1]) and results[-1].error == "timed out after 0.5s"
    assert elapsed < 2.0  # eight 0.3 s probes in parallel, not 2.4 s in a row


def test_periodic_task_runs_on_its_period() -> None:
    calls: list[float] = []
    scheduler = Scheduler([Job("idle", FakeProbe("idle", 0), 60, 1)], lambda r: None, jitter_s=0)
    scheduler.every(0.1, lambda: calls.append(time.monotonic()))
    stop, thread = running(scheduler)
    try:
        wait_for(lambda: len(calls) >= 3, timeout=5)
    finally:
        stop.set()
        thread.join(5)
        scheduler.close()
