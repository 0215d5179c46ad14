"""``eventsink worker run`` as a real process: SIGTERM mid-batch and kill -9 mid-batch."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sink_lib.settings import SinkSettings
from sink_lib.topology import dead_queue_name, queue_name
from tests.support import drain_queue, queue_depth, wait_for

from .helpers import make_event, publish
from .plugins import read_store

pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SPEC = "tests.workers.plugins:FileStoreWorker"


def _command() -> list[str]:
    script = shutil.which("eventsink")
    return [script] if script else [sys.executable, "-m", "sink_lib.cli"]


class Workers:
    """Starts ``eventsink worker run`` processes of the SQLite test plugin and cleans them up."""

    def __init__(self, settings: SinkSettings, store: Path) -> None:
        self.settings, self.store = settings, store
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str, stderr: Path | None = None, **plugin_env: object) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "EVENTSINK_AMQP_URL": self.settings.amqp_url,
            "EVENTSINK_EXCHANGE": self.settings.exchange,
            "EVENTSINK_FILESTORE_PATH": str(self.store),
            **{f"EVENTSINK_FILESTORE_{k.upper()}": str(v) for k, v in plugin_env.items()},
        }
        err = stderr.open("wb") if stderr else subprocess.PIPE
        proc = subprocess.Popen([*_command(), "worker", "run", SPEC, *args], env=env, cwd=ROOT, stderr=err)
        self.procs.append(proc)
        return proc

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
            if proc.stderr:
                proc.stderr.close()


@pytest.fixture
def workers(sink_settings: SinkSettings, tmp_path: Path) -> Iterator[Workers]:
    handle = Workers(sink_settings, tmp_path / "store.sqlite3")
    yield handle
    handle.cleanup()


def test_sigterm_mid_batch_acks_nothing_unwritten(sink_settings: SinkSettings, workers: Workers) -> None:
    # Given 60 events and a worker whose writes take a while
    events = [make_event() for _ in range(60)]
    publish(sink_settings, "filestore", events)
    proc = workers.start(batch_size=20, batch_timeout_s=0.2, delay_s=1.5)
    wait_for(lambda: read_store(workers.store)[1] >= 1, 30, what="the first write to start")
    # When it receives SIGTERM in the middle of that write
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    # Then the batch in flight was finished, and every event not written is back in the queue
    stored = set(read_store(workers.store)[0])
    assert len(stored) >= 20
    left = {props.message_id for _, props, _ in drain_queue(queue_name(sink_settings.exchange, "filestore"))}
    everything = {e["id"] for e in events}
    assert everything - stored <= left
    assert stored | left == everything
    assert queue_depth(dead_queue_name(sink_settings.exchange, "filestore")) == 0


def test_kill_9_mid_batch_redelivers_to_the_next_worker(sink_settings: SinkSettings, workers: Workers) -> None:
    # Given a worker killed with SIGKILL while writing its second batch
    events = [make_event() for _ in range(100)]
    publish(sink_settings, "filestore", events)
    first = workers.start(batch_size=20, batch_timeout_s=0.2, delay_s=1.0)
    wait_for(lambda: read_store(workers.store)[1] >= 2, 30, what="the second write to start")
    first.kill()
    first.wait(10)
    written_before = len(read_store(workers.store)[0])
    assert written_before < 100
    # When another worker starts
    second = workers.start(batch_size=50, batch_timeout_s=0.2)
    # Then it gets every event the first one had not acked: nothing is lost, and each is stored once
    wait_for(lambda: len(read_store(workers.store)[0]) == 100, 60, what="all 100 events stored")
    second.send_signal(signal.SIGTERM)
    assert second.wait(30) == 0
    ids = read_store(workers.store)[0]
    assert sorted(ids) == sorted(e["id"] for e in events)
    assert queue_depth(queue_name(sink_settings.exchange, "filestore")) == 0
    assert queue_depth(dead_queue_name(sink_settings.exchange, "filestore")) == 0


def test_unknown_worker_exits_with_the_installed_names(sink_settings: SinkSettings) -> None:
    result = subprocess.run(
        [*_command(), "worker", "run", "nosuch"], capture_output=True, text=True, timeout=60,
        env={**os.environ, "EVENTSINK_EXCHANGE": sink_settings.exchange},
    )
    assert result.returncode == 1
    assert "unknown worker 'nosuch'" in result.stderr and "discard" in result.stderr


def test_dry_run_logs_and_returns_everything(sink_settings: SinkSettings, workers: Workers, tmp_path: Path) -> None:
    # Given 10 events, When `worker run --dry-run` consumes them and is stopped
    events = [make_event() for _ in range(10)]
    publish(sink_settings, "filestore", events)
    log = tmp_path / "stderr.log"
    proc = workers.start("--dry-run", stderr=log, batch_size=10)
    wait_for(lambda: "dry run: batch of 10" in log.read_text(), 30, what="the dry-run batch logged")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(30) == 0
    # Then it logged each event, wrote nothing (not even opened the store), and every event is back
    text = log.read_text()
    assert all(e["id"] in text for e in events)
    assert not workers.store.exists()
    assert wait_for(lambda: queue_depth(queue_name(sink_settings.exchange, "filestore")) == 10, 30)


def test_second_signal_exits_at_once_and_loses_nothing(
    sink_settings: SinkSettings, workers: Workers, tmp_path: Path
) -> None:
    # Given a worker stuck in a very slow write
    events = [make_event() for _ in range(10)]
    publish(sink_settings, "filestore", events)
    log = tmp_path / "stderr.log"
    proc = workers.start(stderr=log, batch_size=10, batch_timeout_s=0.1, delay_s=60)
    wait_for(lambda: read_store(workers.store)[1] >= 1, 30, what="the slow write to start")
    # When the operator presses Ctrl-C twice (the second once the first was handled)
    proc.send_signal(signal.SIGINT)
    wait_for(lambda: "received SIGINT" in log.read_text(), 30, what="the first signal handled")
    proc.send_signal(signal.SIGINT)
    # Then it exits without waiting for the write, and every event is back in the queue
    assert proc.wait(20) == 128 + signal.SIGINT
    assert not read_store(workers.store)[0]
    assert wait_for(lambda: queue_depth(queue_name(sink_settings.exchange, "filestore")) == 10, 30)
