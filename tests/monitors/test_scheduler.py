"""The scheduler: concurrent probes, intervals, skipped overlaps, timeouts enforced from outside."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from types import SimpleNamespace

import pytest

import monitors.scheduler as scheduler_module
from monitors.probes.base import ProbeResult, utcnow
from monitors.scheduler import Job, Scheduler

from ..support import wait_for


class FakeProbe:
    """Waits on ``gate`` (when given) or sleeps ``seconds``, then succeeds; counts runs started and ended."""

    def __init__(self, name: str, seconds: float, gate: threading.Event | threading.Barrier | None = None) -> None:
        self.name, self.seconds, self.gate, self.runs, self.ended = name, seconds, gate, 0, 0

    def run(self) -> ProbeResult:
        self.runs += 1
        try:
            if isinstance(self.gate, threading.Barrier):
                self.gate.wait()  # raises BrokenBarrierError unless every party arrives together
            elif self.gate is not None:
                self.gate.wait(60)
            else:
                time.sleep(self.seconds)
        finally:
            self.ended += 1
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
    # Given a fast target every 0.1 s and one that hangs (until the test releases it) with a 0.3 s timeout
    release = threading.Event()
    fast, slow = FakeProbe("fast", 0.0), FakeProbe("slow", 0.0, gate=release)
    got = Collector()
    scheduler = Scheduler([Job("fast", fast, 0.1, 1.0), Job("slow", slow, 0.1, 0.3)], got, jitter_s=0.0, grace_s=0.05)
    stop, thread = running(scheduler)
    try:
        # Then the fast target keeps being probed while the slow one is stuck
        wait_for(lambda: len(got.of("fast")) >= 10, timeout=60, what="10 fast results")
        assert slow.ended == 0, "the slow probe was meant to be still hanging"
        timeout_results = wait_for(lambda: got.of("slow"), timeout=60, what="the slow target's timeout")
        assert not timeout_results[0].ok and timeout_results[0].error == "timed out after 0.3s"
        # and the stuck target is not started again while its probe still runs
        assert slow.runs == 1 and scheduler.skipped >= 1
    finally:
        release.set()
        stop.set()
        thread.join(5)
        scheduler.close()
    assert all(r.ok for r in got.of("fast"))


def test_late_result_after_a_timeout_is_dropped() -> None:
    # Given a probe that outlives its 0.1 s timeout (it returns when the test releases it)
    release = threading.Event()
    probe = FakeProbe("late", 0.0, gate=release)
    got = Collector()
    scheduler = Scheduler([Job("late", probe, 10.0, 0.1)], got, jitter_s=0.0, grace_s=0.0)
    stop, thread = running(scheduler)
    try:
        wait_for(lambda: probe.runs == 1 and got.of("late"), timeout=30)
        # When its own result arrives after the timeout was reported
        release.set()
        stop.set()
        thread.join(5)
    finally:
        release.set()
        stop.set()
        scheduler.close(wait=True)  # the probe's own result has been handled (or dropped) by now
    # Then only the timeout is reported
    assert probe.ended == 1
    assert [r.ok for r in got.of("late")] == [False]


def test_run_once_probes_concurrently_and_times_out_stragglers() -> None:
    # Given eight probes that can only finish together (a barrier: run one after another, they fail)
    together = threading.Barrier(8, timeout=20)
    jobs = [Job(f"t{i}", FakeProbe(f"t{i}", 0.0, gate=together), 10, 30.0) for i in range(8)]
    jobs.append(Job("stuck", FakeProbe("stuck", 5.0), 10, 0.5))
    scheduler = Scheduler(jobs, lambda r: None, max_concurrency=16, grace_s=0.05)
    results = scheduler.run_once()
    scheduler.close()
    assert [r.target for r in results] == [j.name for j in jobs]
    assert all(r.ok for r in results[:-1]), [r.error for r in results[:-1]]
    assert results[-1].error == "timed out after 0.5s"


class FakeClock:
    """A monotonic clock the test moves by hand, so periods are checked exactly, not timed."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_periodic_task_runs_on_its_period(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a task every 10 s, and a scheduler reading a clock the test moves
    clock = FakeClock()
    monkeypatch.setattr(scheduler_module, "time", SimpleNamespace(monotonic=clock.monotonic))
    calls: list[float] = []
    scheduler = Scheduler([], lambda r: None, jitter_s=0)
    scheduler.every(10.0, lambda: calls.append(clock.now))
    stop, thread = running(scheduler)

    def move_to(seconds: float) -> None:
        with scheduler._cond:
            clock.now = 1000.0 + seconds
            scheduler._cond.notify()

    try:
        # When the clock reaches 9.9 s, Then the task has not run (given the scheduler time to be wrong)
        wait_for(lambda: scheduler._heap, timeout=10, what="the scheduler to start")
        move_to(9.9)
        time.sleep(0.3)
        assert calls == []
        # When it reaches 10 s, 35 s and 100 s, Then it has run once per whole period elapsed: on time,
        # catching up after a stall without drifting
        for seconds, expected in ((10.0, 1), (35.0, 3), (100.0, 10)):
            move_to(seconds)
            wait_for(lambda expected=expected: len(calls) >= expected, timeout=30, what=f"{expected} runs")
            time.sleep(0.3)
            assert len(calls) == expected, f"at {seconds} s: {len(calls)} runs of a 10 s task"
    finally:
        stop.set()
        thread.join(5)
        scheduler.close()
