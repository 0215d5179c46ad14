"""Run ``eventsink api`` as a real gunicorn process for the tests that need one."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import requests

from tests.support import stop_group, wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ApiProcess:
    """``eventsink api`` in its own process group, so the test can kill it and its workers."""

    def __init__(self, env: Mapping[str, str], log: Path, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        full_env = {**os.environ, **env}
        full_env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "sink_lib.cli", "api", "--bind", f"127.0.0.1:{self.port}", *args],
                env=full_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        wait_for(self._up, timeout=30, what=f"the API at {self.url} (log: {log})")

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"eventsink api exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
        try:
            return requests.get(self.url + "/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def kill(self) -> None:
        """SIGKILL the master and every worker at once: nothing gets to flush."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM: gunicorn's graceful shutdown."""
        stop_group(self.proc, timeout=30)
