"""Uptime and latency monitors that report to the emergency API from each region.

``eventsink monitor --config monitor.toml`` runs one; see monitors/README.md.
"""

from __future__ import annotations

from .config import MonitorConfig, MonitorSettings, load_config, parse_config
from .errors import MonitorConfigError, MonitorError, ProbeError, ReporterError
from .monitor import Monitor
from .probes import HttpProbe, LogFollower, NginxLogProbe, PingProbe, ProbeResult, TcpProbe, make_probe
from .reporter import Reporter, ReporterSettings
from .scheduler import Scheduler
from .status import StatusTracker
from .transport import Answer, Transport, TransportError

__all__ = [
    "Answer",
    "HttpProbe",
    "LogFollower",
    "Monitor",
    "MonitorConfig",
    "MonitorConfigError",
    "MonitorError",
    "MonitorSettings",
    "NginxLogProbe",
    "PingProbe",
    "ProbeError",
    "ProbeResult",
    "Reporter",
    "ReporterError",
    "ReporterSettings",
    "Scheduler",
    "StatusTracker",
    "TcpProbe",
    "Transport",
    "TransportError",
    "load_config",
    "make_probe",
    "parse_config",
]
