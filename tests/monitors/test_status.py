"""The up/down/degraded state machine."""

from __future__ import annotations

from monitors.probes.base import ProbeResult, utcnow
from monitors.status import StatusTracker
from monitors.targets import TcpTarget


def result(ok: bool, latency: float | None = 1.0, error: str | None = None) -> ProbeResult:
    return ProbeResult("db", "tcp", ok, "health.tcp", {}, utcnow(), latency if ok else None,
                       None if ok else error or "connection refused")


def tracker(**options: object) -> StatusTracker:
    return StatusTracker(TcpTarget(name="db", kind="tcp", host="h", port=1, **options))


def test_down_only_after_n_consecutive_failures_then_up_on_recovery() -> None:
    states = tracker(down_after=3)
    first = states.observe(result(True))
    assert first is not None and first.state == "up"
    assert states.observe(result(False)) is None
    assert states.observe(result(False)) is None
    down = states.observe(result(False))
    assert down is not None and down.state == "down" and "3 failures in a row" in (down.message or "")
    assert states.observe(result(False)) is None  # still down: no new event
    up = states.observe(result(True))
    assert up is not None and up.state == "up"


def test_a_success_resets_the_failure_count() -> None:
    states = tracker(down_after=2)
    states.observe(result(True))
    assert states.observe(result(False)) is None
    assert states.observe(result(True)) is None  # up again, no change
    assert states.observe(result(False)) is None
    assert states.observe(result(False)).state == "down"  # type: ignore[union-attr]


def test_slow_success_is_degraded() -> None:
    states = tracker(degraded_ms=100)
    assert states.observe(result(True, latency=50)).state == "up"  # type: ignore[union-attr]
    degraded = states.observe(result(True, latency=150))
    assert degraded is not None and degraded.state == "degraded" and "150.0 ms > 100 ms" in (degraded.message or "")
    assert states.observe(result(True, latency=20)).state == "up"  # type: ignore[union-attr]


def test_heartbeat_repeats_the_known_state_only() -> None:
    states = tracker(down_after=1)
    assert states.heartbeat() is None
    states.observe(result(False))
    beat = states.heartbeat()
    assert beat is not None and (beat.service, beat.state) == ("db", "down")
