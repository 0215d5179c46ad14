"""Probes by target kind: ``make_probe(target)`` returns the prober of a configured target."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .base import Probe, ProbeResult
from .http import HttpProbe
from .nginx_log import LogFollower, NginxLogProbe
from .ping import PingProbe
from .tcp import TcpProbe

PROBES: dict[str, Callable[[Any], Probe]] = {
    "http": HttpProbe,
    "ping": PingProbe,
    "tcp": TcpProbe,
    "nginx_log": NginxLogProbe,
}


def make_probe(target: Any) -> Probe:
    """The probe for ``target`` (chosen by its ``kind``)."""
    return PROBES[target.kind](target)


__all__ = ["PROBES", "HttpProbe", "LogFollower", "NginxLogProbe", "PingProbe", "Probe", "ProbeResult",
           "TcpProbe", "make_probe"]
