"""``eventsink worker run prometheus`` killed with -9 mid-stream, then restarted: totals stay exact."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from sink_lib.event import build_envelope
from sink_lib.settings import SinkSettings
from sink_lib.topology import dead_queue_name, queue_name
from tests.support import queue_depth, wait_for
from tests.workers.helpers import publish
from workers.prometheus.state import MetricState

from .conftest import Samples, scrape, value

pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class WorkerProcess:
    """Runs ``eventsink worker run prometheus`` processes on one state file and port."""

    def __init__(self, settings: SinkSettings, state_file: Path) -> None:
        self.settings, self.state_file, self.port = settings, state_file, free_port()
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "EVENTSINK_AMQP_URL": self.settings.amqp_url,
            "EVENTSINK_EXCHANGE": self.settings.exchange,
            "EVENTSINK_PROMETHEUS_PORT": str(self.port),
            "EVENTSINK_PROMETHEUS_ADDRESS": "127.0.0.1",
            "EVENTSINK_PROMETHEUS_STATE_FILE": str(self.state_file),
            "EVENTSINK_PROMETHEUS_BATCH_SIZE": "25",
            "EVENTSINK_PROMETHEUS_BATCH_TIMEOUT_S": "0.1",
        }
        command = [shutil.which("eventsink") or sys.executable, "worker", "run", "prometheus"]
        if not shutil.which("eventsink"):
            command[1:1] = ["-m", "sink_lib.cli"]
        proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(proc)
        return proc

    def samples(self) -> Samples | None:
        """What the running worker serves, or None while it is not listening."""
        try:
            return scrape(self.port)
        except requests.RequestException:
            return None

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)


@pytest.fixture
def worker_process(sink_settings: SinkSettings, tmp_path: Path) -> Iterator[WorkerProcess]:
    handle = WorkerProcess(sink_settings, tmp_path / "prometheus.sqlite3")
    yield handle
    handle.cleanup()


def counted_in(state_file: Path) -> float:
    """Events counted in a state file no process holds."""
    state = MetricState(state_file, dedupe_window_s=3600, dedupe_max_ids=10_000)
    state.open()
    try:
        return sum(v for metric, _, v in state.snapshot() if metric == "eventsink_events")
    finally:
        state.close()


def total_events(samples: Samples | None) -> float:
    if not samples:
        return 0
    return sum(v for (name, _), v in samples.items() if name == "eventsink_events_total")


def test_kill_9_mid_stream_then_restart_gives_exact_totals(
    sink_settings: SinkSettings, worker_process: WorkerProcess
) -> None:
    # Given 1,500 storage events queued: 1,000 uploads and 500 deletes
    uploads = [build_envelope("storage.file.uploaded", {"file_id": f"f{i}", "bytes": 1000 + i}, source="/app")
               for i in range(1000)]
    deletes = [build_envelope("storage.file.deleted", {"file_id": f"f{i}", "bytes": 1000 + i}, source="/app")
               for i in range(0, 1000, 2)]
    stream = [e for pair in zip(uploads[::2], uploads[1::2], deletes, strict=True) for e in pair]
    publish(sink_settings, "prometheus", stream)

    # When the worker is killed with SIGKILL while it works through them
    first = worker_process.start()
    wait_for(lambda: total_events(worker_process.samples()) >= 50, 60, 0.01, what="the worker to make progress")
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    counted_at_kill = counted_in(worker_process.state_file)
    assert 0 < counted_at_kill < len(stream), "the worker was not killed mid-stream"

    # And a new worker starts on the same state file
    worker_process.start()
    samples = wait_for(
        lambda: (s := worker_process.samples()) and total_events(s) >= len(stream) and s, 120, 0.2,
        what="every event to be counted",
    )

    # Then every event is counted exactly once, and the stored gauges are exact
    assert total_events(samples) == len(stream)
    assert value(samples, "eventsink_files_stored") == 500
    assert value(samples, "eventsink_bytes_stored") == sum(1000 + i for i in range(1, 1000, 2))
    assert value(samples, "eventsink_storage_uploaded_bytes_total") == sum(1000 + i for i in range(1000))
    wait_for(lambda: queue_depth(queue_name(sink_settings.exchange, "prometheus")) == 0, 30, what="queue drained")
    assert queue_depth(dead_queue_name(sink_settings.exchange, "prometheus")) == 0
