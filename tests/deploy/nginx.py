"""Run Debian's nginx with the shipped front configuration (deploy/nginx) for the integration tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from string import Template

import pytest
import requests

from tests.api.server import free_port
from tests.support import IN_CI, stop_group, wait_for

from .compose import ROOT

TEMPLATE = ROOT / "deploy" / "nginx" / "eventsink.conf.template"


def render(upstream: str, port: int) -> str:
    """The template with its variables filled, as the nginx image's envsubst step does (others stay)."""
    return Template(TEMPLATE.read_text()).safe_substitute(API_UPSTREAM=upstream, PROXY_LISTEN_PORT=str(port))


def nginx_binary() -> str:
    """Path of nginx; skips locally when it is not installed, fails in CI (scripts/services.sh installs it)."""
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if found is None:
        if IN_CI:
            pytest.fail("nginx is required in CI (scripts/services.sh install)")
        pytest.skip("nginx not installed (apt-get install nginx-light)")
    return found


class Nginx:
    """nginx in the foreground with a main config of its own that includes the shipped server block."""

    def __init__(self, upstream: str, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "eventsink.conf").write_text(render(upstream, self.port))
        temp = "\n".join(f"    {kind}_temp_path {workdir}/{kind};"
                         for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        user = "user root;\n" if os.geteuid() == 0 else ""  # workers must reach the temp folders here
        (workdir / "nginx.conf").write_text(
            f"{user}daemon off;\nworker_processes 1;\npid {workdir}/nginx.pid;\n"
            f"error_log {workdir}/error.log info;\nevents {{ worker_connections 1024; }}\n"
            f"http {{\n    access_log {workdir}/access.log;\n{temp}\n    include {workdir}/eventsink.conf;\n}}\n"
        )
        binary = nginx_binary()
        check = subprocess.run([binary, "-t", "-p", str(workdir), "-e", str(workdir / "error.log"),
                                "-c", str(workdir / "nginx.conf")], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        self.proc = subprocess.Popen([binary, "-p", str(workdir), "-e", str(workdir / "error.log"),
                                      "-c", str(workdir / "nginx.conf")], start_new_session=True)
        wait_for(self._up, timeout=30, what=f"nginx at {self.url}")

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"nginx exited: {(self.dir / 'error.log').read_text()[-2000:]}")
        try:
            return requests.get(self.url + "/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> None:
        """Fast shutdown (SIGTERM) of the master and its worker."""
        stop_group(self.proc)
