"""What every probe returns, and the small timing helpers the probes share."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class ProbeResult:
    """One probe of one target: the event it produced and what the status logic needs.

    ``started`` is the moment the probe began (UTC); the event carries it as its ``time``, also when it
    is delivered much later. ``latency_ms`` is the headline latency compared with ``degraded_ms``.
    """

    target: str
    kind: str
    ok: bool
    event_type: str
    data: dict[str, Any]
    started: datetime
    latency_ms: float | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Probe(Protocol):
    """A prober of one target; instances may keep state between runs (the log reader does)."""

    def run(self) -> ProbeResult:
        """Probe the target once, within the target's timeout; never raise for a target failure."""
        ...

    def failed(self, error: str, started: datetime) -> ProbeResult:
        """The result to report when the run could not finish (timed out from outside)."""
        ...


def utcnow() -> datetime:
    """The current time, UTC, aware."""
    return datetime.now(UTC)


def ms(start_ns: int, end_ns: int) -> float:
    """Milliseconds between two perf_counter_ns readings, to the microsecond."""
    return round(max(0, end_ns - start_ns) / 1e6, 3)


class Deadline:
    """Time left for a probe; socket operations use ``remaining()`` as their timeout."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.end = time.monotonic() + timeout_s

    def remaining(self) -> float:
        """Seconds left; raises socket.timeout when none are."""
        left = self.end - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"timed out after {self.timeout_s:g}s")
        return left

    def expired(self) -> bool:
        """True when no time is left."""
        return time.monotonic() >= self.end


def resolve(host: str, port: int | None, family: int = socket.AF_UNSPEC, kind: int = socket.SOCK_STREAM) -> list[Any]:
    """``getaddrinfo`` for one host and port (IPv4/IPv6 in the resolver's order)."""
    return socket.getaddrinfo(host, port, family, kind)


def describe(exc: BaseException) -> str:
    """A short text for a network error ("connection refused", "name not resolved: ...")."""
    if isinstance(exc, socket.gaierror):
        return f"name not resolved: {exc.strerror or exc}"
    if isinstance(exc, TimeoutError | socket.timeout):
        return str(exc) if str(exc) and "timed out after" in str(exc) else "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return f"{type(exc).__name__}: {exc}"
