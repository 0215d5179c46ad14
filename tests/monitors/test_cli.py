"""``eventsink monitor``: --once output and exit codes, configuration errors, reporting."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from sink_lib.cli import main

from ..support import wait_for
from .fake_api import KEY, FakeApi
from .targets import CLOCK_LEAD_MS, DelayServer, closed_port


def config(tmp_path: Path, targets: str, api_url: str = "http://127.0.0.1:9") -> Path:
    path = tmp_path / "monitor.toml"
    path.write_text(f'region = "eu"\napi_url = "{api_url}"\napi_key = "{KEY}"\nspool_dir = "spool"\n'
                    f"shutdown_timeout_s = 2\n{targets}")
    return path


def http_target(name: str, url: str) -> str:
    return f'[[targets]]\nname = "{name}"\nkind = "http"\nurl = "{url}"\ntimeout_s = 2\n'


def test_once_all_up_prints_json_and_exits_0(tmp_path: Path, http_server: DelayServer) -> None:
    path = config(tmp_path, http_target("web", f"{http_server.base}/?delay_ms=30&size=123"))
    result = CliRunner().invoke(main, ["monitor", "--config", str(path), "--once", "--format", "json", "--no-report"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["target"], r["ok"], r["data"]["bytes"]) for r in rows] == [("web", True, 123)]
    assert rows[0]["data"]["ttfb_ms"] >= 30 - CLOCK_LEAD_MS


def test_once_with_a_target_down_exits_1_and_says_why(tmp_path: Path, http_server: DelayServer) -> None:
    targets = http_target("web", f"{http_server.base}/") + http_target("dead", f"http://127.0.0.1:{closed_port()}/")
    result = CliRunner().invoke(main, ["monitor", "--config", str(config(tmp_path, targets)), "--once", "--no-report"])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].split() == ["TARGET", "KIND", "STATE", "LATENCY_MS", "DETAIL"]
    assert lines[1].split()[:3] == ["web", "http", "up"]
    assert lines[2].split()[:3] == ["dead", "http", "down"] and "connection refused" in lines[2]


def test_bad_configuration_exits_2_naming_the_key(tmp_path: Path) -> None:
    path = config(tmp_path, '[[targets]]\nname = "x"\nkind = "http"\nurl = "nope"\n')
    result = CliRunner().invoke(main, ["monitor", "--config", str(path), "--once"])
    assert result.exit_code == 2
    assert "targets[0].url: must be an http:// or https:// URL" in result.output


def test_missing_api_key_is_a_configuration_error_when_reporting(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text('region = "eu"\n[[targets]]\nname = "x"\nkind = "tcp"\nhost = "127.0.0.1"\nport = 1\n')
    no_key = {"EVENTSINK_MONITOR_API_KEY": ""}
    result = CliRunner().invoke(main, ["monitor", "--config", str(path), "--once"], env=no_key)
    assert result.exit_code == 2 and "api_key: missing" in result.output
    quiet = CliRunner().invoke(main, ["monitor", "--config", str(path), "--once", "--no-report"])
    assert quiet.exit_code == 1


def test_once_reports_results_and_state_to_the_api(tmp_path: Path, http_server: DelayServer, fake_api: FakeApi) -> None:
    path = config(tmp_path, http_target("web", f"{http_server.base}/"), api_url=fake_api.url)
    result = CliRunner().invoke(main, ["monitor", "--config", str(path), "--once"])
    assert result.exit_code == 0, result.output
    wait_for(lambda: len(fake_api.events) == 2, timeout=5)
    types = sorted(e["type"] for e in fake_api.events)
    assert types == ["health.http", "health.status"]
    assert all(e["region"] == "eu" and e["subject"] == "web" for e in fake_api.events)


def test_sigterm_with_the_api_hanging_exits_in_time_and_keeps_events_for_the_next_start(
    tmp_path: Path, http_server: DelayServer
) -> None:
    import signal
    import subprocess
    import sys

    from monitors.reporter import Reporter, ReporterSettings

    # Given a monitor whose API takes each request and never answers (until the test releases it)
    api = FakeApi()
    api.mode = "hang"
    try:
        path = config(tmp_path, http_target("web", f"{http_server.base}/").replace("timeout_s = 2", "interval_s = 0.2"),
                      api_url=api.url)
        path.write_text(path.read_text().replace("shutdown_timeout_s = 2", "shutdown_timeout_s = 1\njitter_s = 0"))
        process = subprocess.Popen([sys.executable, "-m", "sink_lib.cli", "monitor", "--config", str(path)],
                                   stderr=subprocess.PIPE, text=True)
        spool = tmp_path / "spool" / "monitor.sqlite3"
        try:
            wait_for(lambda: spool.exists() and api.requests >= 1, timeout=30, what="a report stuck on the API")
        finally:
            # When it is stopped
            process.send_signal(signal.SIGTERM)
            # Then it exits while the API still hangs (waiting for the answer would take minutes),
            _, err = process.communicate(timeout=60)
        assert not api.release.is_set()
        # cleanly, saying what it kept
        assert process.returncode == 0, err
        assert "stay in the spool" in err
        # and the next start delivers them
        api.mode = "ok"
        api.release.set()
        reporter = Reporter(ReporterSettings(api_url=api.url, api_key=KEY, spool_dir=tmp_path / "spool"))
        kept = reporter.stats()["spooled"]
        assert kept >= 1
        assert reporter.flush(timeout=10)
        reporter.close(timeout=1)
        accepted = api.events
        assert len(accepted) == kept and all(e["type"].startswith("health.") for e in accepted)
    finally:
        api.close()
