"""A real Prometheus server scrapes the worker; PromQL sees the totals, and no reset across a restart."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from tests.support import IN_CI, wait_for
from workers.prometheus import PrometheusWorker

from .conftest import event

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Prometheus:
    """A private Prometheus server scraping one target every second."""

    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, promql: str) -> float | None:
        """The single value of an instant query, or None when it has no result yet."""
        response = requests.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=5)
        response.raise_for_status()
        result = response.json()["data"]["result"]
        return float(result[0]["value"][1]) if result else None


@pytest.fixture
def target_port() -> int:
    """The port the worker under test listens on."""
    return free_port()


@pytest.fixture
def prometheus(tmp_path: Path, target_port: int) -> Iterator[Prometheus]:
    if not Path(PROMETHEUS).exists():
        if IN_CI:
            pytest.fail("the prometheus binary is required in CI")
        pytest.skip("the prometheus binary is not installed")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: eventsink\n    static_configs: [{{targets: ['127.0.0.1:{target_port}']}}]\n"
    )
    port = free_port()
    process = subprocess.Popen(
        [
            PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "prometheus.log").open("wb"),
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return requests.get(f"{url}/-/ready", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_for(ready, timeout=60, interval=0.2, what="Prometheus to be ready")
        yield Prometheus(url)
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_prometheus_scrapes_exact_totals_across_a_restart(
    prometheus: Prometheus, make_worker: Callable[..., PrometheusWorker], target_port: int
) -> None:
    # Given Prometheus scraping a worker that stored 3 files and deleted 1
    worker = make_worker(port=target_port)
    worker.write([event(data={"file_id": f"f{i}", "bytes": 1000}) for i in range(3)])
    worker.write([event("storage.file.deleted", {"file_id": "f0", "bytes": 1000})])
    wait_for(lambda: prometheus.query("eventsink_files_stored") == 2, timeout=60, interval=0.5, what="first scrape")
    assert prometheus.query("eventsink_bytes_stored") == 2000

    # When the worker restarts on the same state file and port, and stores 2 more files
    worker.close()
    restarted = make_worker(port=target_port)
    restarted.write([event(data={"file_id": f"g{i}", "bytes": 500}) for i in range(2)])

    # Then PromQL sees the exact totals, and no counter reset happened
    wait_for(lambda: prometheus.query("eventsink_files_stored") == 4, timeout=60, interval=0.5, what="new totals")
    query = 'sum(eventsink_events_total{type="storage.file.uploaded"})'
    assert prometheus.query(query) == 5
    assert prometheus.query("eventsink_storage_uploaded_bytes_total") == 4000
    assert prometheus.query("sum(resets(eventsink_events_total[5m]))") == 0
