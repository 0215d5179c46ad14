"""``eventsink worker run --log-level`` governs a plugin's own logger, whatever its package is called."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sink_lib.settings import SinkSettings
from tests.support import wait_for

pytestmark = pytest.mark.rabbitmq

ROOT = Path(__file__).resolve().parents[2]
SPEC = "tests.workers.plugins:ChattyWorker"  # logs through the logger "tests.workers.plugins"
INFO_LINE = "INFO tests.workers.plugins: chatty plugin: info line from open()"
WARNING_LINE = "WARNING tests.workers.plugins: chatty plugin: warning line from open()"


def run_until_warning(settings: SinkSettings, log: Path, group_args: list[str], run_args: list[str]) -> str:
    """Run the chatty worker until its warning line is logged (after its info line); return the log."""
    script = shutil.which("eventsink")
    command = [script] if script else [sys.executable, "-m", "sink_lib.cli"]
    env = {**os.environ, "EVENTSINK_AMQP_URL": settings.amqp_url, "EVENTSINK_EXCHANGE": settings.exchange,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    with log.open("wb") as err:
        proc = subprocess.Popen([*command, *group_args, "worker", "run", SPEC, *run_args], env=env, cwd=ROOT,
                                stderr=err)
        try:
            wait_for(lambda: WARNING_LINE in log.read_text() or proc.poll() is not None, 60, what="the warning")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    return log.read_text()


@pytest.mark.parametrize(
    ("group_args", "run_args", "info_shown"),
    [
        ([], [], True),                                   # the default level, info, without -v
        ([], ["--log-level", "info"], True),
        ([], ["--log-level", "warning"], False),
        (["-v"], ["--log-level", "warning"], False),      # --log-level wins over the group's -v
    ],
)
def test_the_plugins_own_logger_follows_log_level(sink_settings: SinkSettings, tmp_path: Path, group_args: list[str],
                                                   run_args: list[str], info_shown: bool) -> None:
    out = run_until_warning(sink_settings, tmp_path / "worker.log", group_args, run_args)
    assert WARNING_LINE in out, out
    assert (INFO_LINE in out) is info_shown, out
