"""The monitor's http probe and Prometheus' blackbox exporter (Debian's prometheus-blackbox-exporter,
installed by scripts/services.sh) probe the same local targets and must agree: up or down, status code,
body size, certificate expiry, and neither reports a first byte before the server sent it."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from monitors.probes.http import HttpProbe
from monitors.targets import HttpTarget

from ..support import not_here, wait_for
from .targets import CLOCK_LEAD_MS, DelayServer, closed_port

BLACKBOX = shutil.which("prometheus-blackbox-exporter")


@pytest.fixture(scope="module")
def blackbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A blackbox exporter on a free port with one http module (any status code counts as a reply)."""
    if BLACKBOX is None:
        not_here("prometheus-blackbox-exporter is not installed (scripts/services.sh installs it)")
    folder = tmp_path_factory.mktemp("blackbox")
    config = folder / "blackbox.yml"
    config.write_text("modules:\n  http:\n    prober: http\n    timeout: 5s\n"
                      "    http:\n      preferred_ip_protocol: ip4\n      valid_status_codes: [200]\n"
                      "      no_follow_redirects: true\n      tls_config:\n        insecure_skip_verify: true\n")
    port = closed_port()
    process = subprocess.Popen([BLACKBOX, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return requests.get(base + "/metrics", timeout=1).ok
        except requests.RequestException:
            return False

    try:
        wait_for(up, timeout=30, interval=0.1, what="blackbox exporter to listen")
        yield base
    finally:
        process.terminate()
        process.wait(10)


def blackbox_probe(base: str, url: str) -> dict[str, float]:
    """The blackbox exporter's samples for one probe of ``url`` (name{labels} -> value)."""
    query = urllib.parse.urlencode({"target": url, "module": "http"})
    text = requests.get(f"{base}/probe?{query}", timeout=15).text
    return {m[1]: float(m[2]) for m in re.finditer(r"^(\w+(?:\{[^}]*\})?) (\S+)$", text, re.M)}


def our_probe(url: str, **options: object) -> dict:
    return HttpProbe(HttpTarget(name="t", kind="http", url=url, **options)).run().data


@pytest.mark.parametrize(("query", "size"), [("delay_ms=150&size=4000", 4000), ("size=0", 0),
                                             ("delay_ms=50&size=70000&chunked=1", 70000)])
def test_both_see_the_same_healthy_target(http_server: DelayServer, blackbox: str, query: str, size: int) -> None:
    url = f"{http_server.base}/?{query}"
    theirs, ours = blackbox_probe(blackbox, url), our_probe(url)
    assert theirs["probe_success"] == 1 and ours["ok"]
    assert theirs["probe_http_status_code"] == ours["status"] == 200
    assert theirs["probe_http_uncompressed_body_length"] == ours["bytes"] == size
    # the server waits delay_ms before its first byte; neither may report it sooner
    delay_s = float(urllib.parse.parse_qs(query).get("delay_ms", ["0"])[0]) / 1000
    assert theirs['probe_http_duration_seconds{phase="processing"}'] >= delay_s
    assert ours["ttfb_ms"] >= delay_s * 1000 - CLOCK_LEAD_MS


@pytest.mark.parametrize("status", [503, 404, 500])
def test_both_report_a_bad_status_as_down(http_server: DelayServer, blackbox: str, status: int) -> None:
    url = f"{http_server.base}/?status={status}"
    theirs, ours = blackbox_probe(blackbox, url), our_probe(url)
    assert theirs["probe_success"] == 0 and not ours["ok"]
    assert theirs["probe_http_status_code"] == ours["status"] == status


def test_both_report_a_closed_port_as_down(blackbox: str) -> None:
    url = f"http://127.0.0.1:{closed_port()}/"
    theirs, ours = blackbox_probe(blackbox, url), our_probe(url)
    assert theirs["probe_success"] == 0 and not ours["ok"]
    assert ours["status"] is None


def test_both_read_the_same_certificate_expiry(https_server: DelayServer, blackbox: str,
                                               certificate: tuple[Path, Path]) -> None:
    url = f"{https_server.base}/?size=10"
    theirs, ours = blackbox_probe(blackbox, url), our_probe(url, ca_file=certificate[0])
    assert theirs["probe_success"] == 1 and ours["ok"]
    their_days = (theirs["probe_ssl_earliest_cert_expiry"] - time.time()) / 86400
    assert ours["cert_expires_in_days"] == pytest.approx(their_days, abs=0.01)
