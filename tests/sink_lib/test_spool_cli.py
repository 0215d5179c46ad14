"""``eventsink spool status|replay`` and the spool section of ``eventsink status``, through CliRunner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sink_lib.cli import main
from sink_lib.settings import SinkSettings
from sink_lib.spool import Spool
from sink_lib.topology import declare, queue_name

from .test_sink_rabbitmq import ids_in
from .test_spool_delivery import spool_count, spool_left_by_a_killed_process

NOWHERE = "amqp://guest:guest@127.0.0.1:1/%2F"


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def claim_in_a_process_that_exits(folder: Path, count: int) -> int:
    """Claim ``count`` records in a child process that then dies without releasing them; return its pid."""
    code = ("import os; from sink_lib.spool import Spool; "
            f"Spool({str(folder)!r}, 1 << 20).claim({count}); print(os.getpid(), flush=True); os._exit(0)")
    proc = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(Path.cwd())})
    return int(proc.stdout)


def test_status_shows_events_size_oldest_and_claims_of_live_and_dead_processes(spool_dir: Path):
    # Given a spool of 6 events: 2 claimed by a process that died, 1 claimed by this running process
    bodies = [json.dumps({"i": i}).encode() for i in range(6)]
    Spool(spool_dir, 1 << 20).append([(f"e{i}", b) for i, b in enumerate(bodies)])
    mine = Spool(spool_dir, 1 << 20)
    assert len(mine.claim(1)) == 1
    dead_pid = claim_in_a_process_that_exits(spool_dir, 2)
    # When its status is asked for
    result = invoke("spool", "status", "--dir", str(spool_dir), "--json")
    # Then it lists the events, their bytes, the oldest one, and who holds claims
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["directory"] == str(spool_dir)
    (spool,) = report["spools"]
    assert spool["path"] == str(spool_dir / "spool.sqlite3")
    assert spool["events"] == 6 and spool["bytes"] == sum(len(b) for b in bodies)
    assert spool["oldest"].endswith("Z") and spool["oldest_age_s"] >= 0 and spool["disk_bytes"] > 0
    assert spool["claimed_by_live"] == 1 and spool["claimed_by_dead"] == 2
    assert {(c["pid"], c["alive"]) for c in spool["claims"]} == {(os.getpid(), True), (dead_pid, False)}
    text = invoke("spool", "status", "--dir", str(spool_dir)).output
    assert f"{spool_dir / 'spool.sqlite3'}: 6 event(s)" in text
    assert f"1 claimed by live process {os.getpid()}" in text and f"2 claimed by dead process {dead_pid}" in text
    # and reading it changed nothing: the events and the claims are as they were
    again = json.loads(invoke("spool", "status", "--dir", str(spool_dir), "--json").output)["spools"][0]
    assert {k: again[k] for k in ("events", "bytes", "claims")} == {k: spool[k] for k in ("events", "bytes", "claims")}
    mine.close()


def test_status_of_a_folder_without_spool_says_so(tmp_path: Path):
    result = invoke("spool", "status", "--dir", str(tmp_path / "absent"))
    assert result.exit_code == 0 and result.output.strip() == f"no spool in {tmp_path / 'absent'}"
    assert not (tmp_path / "absent").exists()


def test_status_reads_the_folder_of_eventsink_spool_dir(spool_dir: Path):
    Spool(spool_dir, 1 << 20).append([("a", b"{}")])
    result = invoke("spool", "status", "--json", env={"EVENTSINK_SPOOL_DIR": str(spool_dir)})
    assert json.loads(result.output)["spools"][0]["events"] == 1


@pytest.mark.rabbitmq
def test_replay_delivers_the_spool_of_a_killed_process(sink_settings: SinkSettings):
    declare(sink_settings, ["alpha"])
    # Given 120 events left in a spool by a killed process
    left = spool_left_by_a_killed_process(sink_settings, 120)
    # When the spool is replayed from the command line
    env = {"EVENTSINK_AMQP_URL": sink_settings.amqp_url, "EVENTSINK_EXCHANGE": sink_settings.exchange}
    result = invoke("spool", "replay", "--dir", str(sink_settings.spool_dir), "--timeout", "60", env=env)
    # Then they reach the exchange in order, and the spool is empty
    assert result.exit_code == 0, result.output
    assert f"replayed 120 event(s) from {sink_settings.spool_dir / 'spool.sqlite3'}; 0 left" in result.output
    assert ids_in(queue_name(sink_settings.exchange, "alpha"), expect=120) == left
    assert spool_count(sink_settings) == 0


def test_replay_with_the_broker_unreachable_fails_and_keeps_the_events(spool_dir: Path):
    Spool(spool_dir, 1 << 20).append([(f"e{i}", b"{}") for i in range(3)])
    result = CliRunner().invoke(main, ["spool", "replay", "--dir", str(spool_dir), "--timeout", "300"],
                                env={"EVENTSINK_AMQP_URL": NOWHERE})
    assert result.exit_code == 1
    assert "replayed 0 event(s)" in result.output and "3 left" in result.output
    assert "3 event(s) not delivered" in result.output and "127.0.0.1:1" in result.output
    assert Spool(spool_dir, 1 << 20).count() == 3


@pytest.mark.rabbitmq
def test_status_lists_the_local_spool_after_the_queues(sink_settings: SinkSettings):
    Spool(sink_settings.spool_dir, 1 << 20).append([(f"e{i}", b"{}") for i in range(4)])
    env = {"EVENTSINK_AMQP_URL": sink_settings.amqp_url, "EVENTSINK_EXCHANGE": sink_settings.exchange,
           "EVENTSINK_SPOOL_DIR": str(sink_settings.spool_dir)}
    result = invoke("status", "--worker", "alpha", env=env)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[0] == "WORKER"
    assert f"{sink_settings.spool_dir / 'spool.sqlite3'}: 4 event(s)" in result.output


def test_status_shows_the_local_spool_when_the_broker_is_unreachable(spool_dir: Path):
    Spool(spool_dir, 1 << 20).append([("e", b"{}")])
    result = CliRunner().invoke(main, ["status", "--worker", "alpha"],
                                env={"EVENTSINK_AMQP_URL": NOWHERE, "EVENTSINK_SPOOL_DIR": str(spool_dir)})
    assert result.exit_code == 1
    assert f"{spool_dir / 'spool.sqlite3'}: 1 event(s)" in result.output


def test_status_reads_a_spool_that_a_live_process_keeps_writing(spool_dir: Path):
    # Given another process appending to and deleting from the spool as fast as it can (as the API's
    # spool-first mode and its replay do)
    first = Spool(spool_dir, 1 << 26)
    first.append([("first", b"x", "a.b", 0)])
    first.close()
    code = ("import sys, time; from sink_lib.spool import Spool\n"
            f"s = Spool({str(spool_dir)!r}, 1 << 26)\n"
            "end = time.monotonic() + 4; n = 0\n"
            "while time.monotonic() < end:\n"
            "    s.append([(f'id{n}-{i}', b'x' * 200, 'a.b', 0) for i in range(50)]); n += 1\n"
            "    s.ack([r.seq for r in s.claim(40)])\n")
    writer = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(Path.cwd())})
    try:
        # When status is asked again and again meanwhile, it always answers
        from sink_lib.spool_report import inspect_spools

        seen = 0
        while writer.poll() is None:
            reports = inspect_spools(spool_dir)
            seen += 1
        # and the writer was not hurt (it died of SIGBUS when opening the spool dropped its locks)
        assert writer.returncode == 0
        assert seen > 20 and reports
    finally:
        writer.kill()
        writer.wait()
