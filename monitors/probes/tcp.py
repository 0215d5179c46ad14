"""The tcp probe: how long a TCP connection to host:port takes to open (reported as ``health.tcp``)."""

from __future__ import annotations

import socket
import time
from datetime import datetime
from typing import Any

from ..targets import TcpTarget
from .base import Deadline, ProbeResult, describe, ms, resolve, utcnow


class TcpProbe:
    """Resolves the host and opens (then closes) one connection, timing both steps."""

    def __init__(self, target: TcpTarget) -> None:
        self.target = target

    def run(self) -> ProbeResult:
        """Connect once and build the health.tcp result."""
        started = utcnow()
        deadline = Deadline(self.target.timeout_s)
        dns_ms = connect_ms = 0.0
        error = None
        t0 = time.perf_counter_ns()
        try:
            infos = resolve(self.target.host, self.target.port)
            t1 = time.perf_counter_ns()
            dns_ms = ms(t0, t1)
            family, kind, proto, _, address = infos[0]
            with socket.socket(family, kind, proto) as sock:
                sock.settimeout(deadline.remaining())
                sock.connect(address)
                connect_ms = ms(t1, time.perf_counter_ns())
        except OSError as exc:
            error = describe(exc)
        data = self._data(error is None, error, dns_ms, connect_ms)
        return ProbeResult(self.target.name, "tcp", error is None, "health.tcp", data, started,
                           connect_ms if error is None else None, error)

    def failed(self, error: str, started: datetime) -> ProbeResult:
        """A failed health.tcp result."""
        return ProbeResult(self.target.name, "tcp", False, "health.tcp",
                           self._data(False, error, 0.0, 0.0), started, None, error)

    def _data(self, ok: bool, error: str | None, dns_ms: float, connect_ms: float) -> dict[str, Any]:
        return {"target": f"{self.target.host}:{self.target.port}", "ok": ok, "error": error,
                "dns_ms": dns_ms, "connect_ms": connect_ms}
