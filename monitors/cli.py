"""``eventsink monitor``: run the region's monitor, or one round with ``--once``."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import click

from .config import MonitorSettings, load_config
from .errors import MonitorConfigError, MonitorError
from .monitor import Monitor
from .probes.base import ProbeResult

log = logging.getLogger(__name__)
EXIT_UP, EXIT_DOWN, EXIT_CONFIG = 0, 1, 2


@click.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="TOML file: region, api_url, api_key, [[targets]].")
@click.option("--once", is_flag=True, help="Probe every target once, print the results, exit 0 (all up) or 1.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="Output of --once.")
@click.option("--no-report", is_flag=True, help="With --once: do not send the results to the API.")
def monitor(config_path: Path, once: bool, fmt: str, no_report: bool) -> None:
    """Probe the configured targets and report to the emergency API.

    Runs until SIGTERM or Ctrl-C, then sends what it can within shutdown_timeout_s; undelivered events
    stay in the spool for the next start. Exit status: 0 all up, 1 a target down (--once), 2 bad
    configuration.
    """
    try:
        config = load_config(config_path, MonitorSettings())
        mon = Monitor(config, report=not (once and no_report))
    except MonitorConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
    except MonitorError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
    if once:
        try:
            results = mon.run_once()
        finally:
            mon.close()
        click.echo(render(results, fmt))
        sys.exit(EXIT_UP if all(r.ok for r in results) else EXIT_DOWN)
    stop = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: shutting down", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("monitor of region %s: %d targets", config.region, len(config.targets))
    mon.run(stop)


def render(results: list[ProbeResult], fmt: str) -> str:
    """The results of one round as JSON or as an aligned table."""
    if fmt == "json":
        rows: list[dict[str, Any]] = [
            {"target": r.target, "kind": r.kind, "ok": r.ok, "latency_ms": r.latency_ms, "error": r.error,
             "type": r.event_type, "time": r.started.isoformat(), "data": r.data} for r in results
        ]
        return json.dumps(rows, indent=2)
    table = [("TARGET", "KIND", "STATE", "LATENCY_MS", "DETAIL")]
    for r in results:
        latency = "" if r.latency_ms is None else f"{r.latency_ms:.3f}"
        table.append((r.target, r.kind, "up" if r.ok else "down", latency, r.error or _detail(r)))
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True)) + "  " + row[4]
                     for row in table).rstrip()


def _detail(result: ProbeResult) -> str:
    d = result.data
    if result.kind == "http":
        return f"status {d['status']}, {d['bytes']} bytes, ttfb {d['ttfb_ms']} ms"
    if result.kind == "ping":
        return f"loss {d['loss_pct']}%"
    if result.kind == "nginx_log":
        return f"{d['requests']} requests, {d['active']} clients in {d['window_s']} s"
    return ""
