"""The monitor as a whole: every probe kind produces events the registry accepts, with the envelope fields."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitors.config import parse_config
from monitors.monitor import Monitor
from monitors.types import TYPES, monitor_registry
from sink_lib.errors import EventValidationError
from sink_lib.event import parse_time

from ..support import wait_for
from .fake_api import KEY, FakeApi
from .targets import DelayServer, closed_port


def test_one_round_of_every_kind_yields_valid_events(
    tmp_path: Path, http_server: DelayServer, fake_api: FakeApi
) -> None:
    log = tmp_path / "access.log"
    log.write_text("")
    raw = {
        "region": "ap-south", "api_url": fake_api.url, "api_key": KEY, "spool_dir": str(tmp_path / "spool"),
        "targets": [
            {"name": "web", "kind": "http", "url": f"{http_server.base}/?size=10"},
            {"name": "lo", "kind": "ping", "host": "127.0.0.1", "count": 1},
            {"name": "db", "kind": "tcp", "host": "127.0.0.1", "port": closed_port(), "down_after": 1},
            {"name": "nginx", "kind": "nginx_log", "path": str(log)},
        ],
    }
    monitor = Monitor(parse_config(raw))
    monitor.reporter.start()  # type: ignore[union-attr]
    results = monitor.run_once()
    monitor.close()
    assert [r.kind for r in results] == ["http", "ping", "tcp", "nginx_log"]
    wait_for(lambda: len(fake_api.events) >= 6, timeout=5)
    registry = monitor_registry()
    for event in fake_api.events:
        registry.validate(event["type"], event["data"], strict=True)
        assert event["region"] == "ap-south" and event["source"] == "/monitor/ap-south"
        parse_time(event["time"])
    assert monitor.invalid == 0
    kinds = sorted(e["type"] for e in fake_api.events if e["type"] != "health.status")
    assert kinds == ["health.connections", "health.http", "health.ping", "health.tcp"]
    down = [e["data"] for e in fake_api.events if e["type"] == "health.status" and e["data"]["service"] == "db"]
    assert down and down[0]["state"] == "down"


def test_health_tcp_is_validated_strictly() -> None:
    registry = monitor_registry()
    assert registry.model("health.tcp") is TYPES["health.tcp"]
    bad = {"target": "h:1", "ok": "yes", "dns_ms": 0.1, "connect_ms": 0.2}
    with pytest.raises(EventValidationError, match=r"data\.ok"):
        registry.validate("health.tcp", bad)


def test_public_names_are_pinned() -> None:
    import monitors

    assert monitors.__all__ == sorted(monitors.__all__)
    assert set(monitors.__all__) == {
        "Answer", "HttpProbe", "LogFollower", "Monitor", "MonitorConfig", "MonitorConfigError", "MonitorError",
        "MonitorSettings", "NginxLogProbe", "PingProbe", "ProbeError", "ProbeResult", "Reporter",
        "ReporterError", "ReporterSettings", "Scheduler", "StatusTracker", "TcpProbe", "Transport",
        "TransportError", "load_config",
        "make_probe", "parse_config",
    }
    assert all(hasattr(monitors, name) for name in monitors.__all__)
