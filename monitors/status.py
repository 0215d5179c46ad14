"""Up / down / degraded per target, derived from probe results, with the health.status events to send.

A target is "up" after a successful probe, "degraded" after a successful one slower than its
``degraded_ms``, and "down" only after ``down_after`` failures in a row, so one lost probe does not page
anyone. Before the first verdict the state is unknown and nothing is reported. A ``health.status`` event
is produced on every change and, as a heartbeat, every ``heartbeat_s`` for each known state, so uptime
can be computed from the events alone.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from .probes.base import ProbeResult
from .targets import TargetBase


@dataclass(frozen=True)
class StatusChange:
    """A state the tracker reports (a change, or the current state as a heartbeat)."""

    service: str
    state: str
    message: str | None


class StatusTracker:
    """The state machine of one target; thread-safe."""

    def __init__(self, target: TargetBase) -> None:
        self.target = target
        self.state: str | None = None
        self.failures = 0
        self.message: str | None = None
        self._lock = threading.Lock()

    def observe(self, result: ProbeResult) -> StatusChange | None:
        """Feed one result; returns the change it causes, if any."""
        with self._lock:
            if result.ok:
                self.failures = 0
                threshold = self.target.degraded_ms
                slow = threshold is not None and result.latency_ms is not None and result.latency_ms > threshold
                state = "degraded" if slow else "up"
                message = f"{result.latency_ms:.1f} ms > {threshold:g} ms" if slow else None
            else:
                self.failures += 1
                if self.failures < self.target.down_after:
                    return None
                state = "down"
                message = f"{self.failures} failures in a row; last: {result.error}"
            if state == self.state:
                self.message = message
                return None
            self.state, self.message = state, message
            return StatusChange(self.target.name, state, message)

    def heartbeat(self) -> StatusChange | None:
        """The current state as a heartbeat, or None while it is unknown."""
        with self._lock:
            if self.state is None:
                return None
            return StatusChange(self.target.name, self.state, self.message)
