"""Restarts, redeliveries and crashes: the served totals stay exact."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import psutil
import pytest

from workers.errors import RetryLater
from workers.prometheus import PrometheusSettings, PrometheusWorker
from workers.prometheus.mapping import Update, updates

from .conftest import event, scrape, value

MakeWorker = Callable[..., PrometheusWorker]


def mixed_stream(n: int) -> list:
    """Uploads, deletes, page views and health reports."""
    out = []
    for i in range(n):
        out.append(event(data={"file_id": f"f{i}", "bytes": 100 + i}))
        if i % 3 == 0:
            out.append(event("storage.file.deleted", {"file_id": f"f{i}", "bytes": 100 + i}))
        out.append(event("traffic.page.viewed", {"url": "/"}, source=f"/app{i % 2}"))
        out.append(event("health.status", {"service": "web", "state": "up" if i % 2 else "down"}))
    return out


def test_restart_serves_identical_values(make_worker: MakeWorker) -> None:
    # Given a worker that processed a stream
    worker = make_worker()
    stream = mixed_stream(30)
    for start in range(0, len(stream), 7):
        worker.write(stream[start : start + 7])
    before = scrape(worker.port)
    worker.close()

    # When a new worker starts on the same state file
    after = scrape(make_worker().port)

    # Then it serves exactly the same samples
    assert after == before
    assert value(after, "eventsink_files_stored") == 30 - 10


def test_the_same_batch_twice_is_counted_once(make_worker: MakeWorker) -> None:
    worker = make_worker()
    batch = mixed_stream(5)
    worker.write(batch)
    once = scrape(worker.port)

    worker.write(batch)
    worker.write(batch[2:4])

    assert scrape(worker.port) == once


def test_redelivery_after_a_restart_is_counted_once(make_worker: MakeWorker) -> None:
    # Given a batch applied just before the worker stopped (so it was never acked)
    worker = make_worker()
    batch = mixed_stream(4)
    worker.write(batch)
    worker.close()

    # When the restarted worker gets it again, with one new event
    restarted = make_worker()
    restarted.write([*batch, event(data={"file_id": "new", "bytes": 1})])

    # Then only the new event counts
    samples = scrape(restarted.port)
    assert value(samples, "eventsink_events_total", type="storage.file.uploaded", source="/test") == 5


CRASHING_WRITER = textwrap.dedent(
    """
    import os, signal, sys
    from workers.prometheus import PrometheusSettings, PrometheusWorker
    from workers.prometheus.tests.conftest import event

    worker = PrometheusWorker(PrometheusSettings(port=0, address="127.0.0.1", state_file=sys.argv[1]))
    worker.open()
    worker.write([event(data={"file_id": f"f{i}", "bytes": 10}) for i in range(50)])
    os.kill(os.getpid(), signal.SIGKILL)  # right after write() returned: before any ack could be sent
    """
)


def test_a_write_that_returned_survives_kill_9(make_worker: MakeWorker, state_file: Path) -> None:
    # Given a process killed with SIGKILL right after write() returned
    proc = subprocess.run([sys.executable, "-c", CRASHING_WRITER, str(state_file)], capture_output=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()

    # When a worker starts on its state file (the dead process's lock is gone)
    samples = scrape(make_worker().port)

    # Then every event of that batch is counted
    assert value(samples, "eventsink_files_stored") == 50
    assert value(samples, "eventsink_bytes_stored") == 500


def test_a_second_worker_on_the_same_state_file_waits(make_worker: MakeWorker, state_file: Path) -> None:
    make_worker()
    second = PrometheusWorker(PrometheusSettings(port=0, address="127.0.0.1", state_file=state_file))
    with pytest.raises(RetryLater, match="in use"):
        second.open()
    second.close()


def test_a_taken_port_is_retried_later(make_worker: MakeWorker, tmp_path: Path) -> None:
    taken = make_worker().port
    other = PrometheusWorker(PrometheusSettings(port=taken, address="127.0.0.1", state_file=tmp_path / "b.db"))
    with pytest.raises(RetryLater, match="EVENTSINK_PROMETHEUS_PORT"):
        other.open()
    other.close()
    # the state file was released, so a retry on a free port works
    other = PrometheusWorker(PrometheusSettings(port=0, address="127.0.0.1", state_file=tmp_path / "b.db"))
    other.open()
    other.close()


def test_processed_ids_are_bounded_by_count(make_worker: MakeWorker) -> None:
    # Given a worker that remembers at most 3 ids
    worker = make_worker(dedupe_max_ids=3)
    batch = [event() for _ in range(5)]
    worker.write(batch)

    # When the ids are pruned
    worker.state.prune()

    # Then the newest 3 are kept: those are still ignored on redelivery, the oldest would count again
    assert worker.state.remembered_ids() == 3
    worker.write(batch[2:])
    assert value(scrape(worker.port), "eventsink_files_stored") == 5
    worker.write(batch[:1])
    assert value(scrape(worker.port), "eventsink_files_stored") == 6


def test_processed_ids_are_bounded_by_age(make_worker: MakeWorker) -> None:
    worker = make_worker(dedupe_window_s=60)
    worker.write([event() for _ in range(4)])
    worker.state.prune(now=time.time() + 61)
    assert worker.state.remembered_ids() == 0


def test_state_path_comes_from_state_dir_or_state_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EVENTSINK_PROMETHEUS_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("EVENTSINK_PROMETHEUS_PORT", "9200")
    monkeypatch.setenv("EVENTSINK_PROMETHEUS_STORAGE_LABELS", '["source", "space_id"]')
    settings = PrometheusSettings()
    assert settings.state_path == tmp_path / "prometheus-state.sqlite3"
    assert settings.port == 9200
    assert settings.storage_labels == ["source", "space_id"]
    monkeypatch.setenv("EVENTSINK_PROMETHEUS_STATE_FILE", str(tmp_path / "x.db"))
    assert PrometheusSettings().state_path == tmp_path / "x.db"


def test_registered_under_the_workers_entry_point_group() -> None:
    (entry,) = entry_points(group="eventsink.workers", name="prometheus")
    assert entry.load() is PrometheusWorker
    assert PrometheusWorker.settings_model is PrometheusSettings


def test_defaults_need_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PORT", "STATE_DIR", "STATE_FILE"):
        monkeypatch.delenv(f"EVENTSINK_PROMETHEUS_{name}", raising=False)
    settings = PrometheusSettings()
    assert settings.port == 9108
    assert settings.state_path.name == "prometheus-state.sqlite3"
    assert os.fspath(settings.state_path).endswith(os.path.join("eventsink", "prometheus", "prometheus-state.sqlite3"))


def test_a_failed_batch_changes_nothing(make_worker: MakeWorker) -> None:
    # Given a batch whose third event fails while being applied
    worker = make_worker()
    batch = [event(data={"file_id": f"f{i}", "bytes": 10}) for i in range(5)]

    def failing(ev: Any) -> list[Update]:
        if ev.id == batch[2].id:
            raise sqlite3.OperationalError("disk I/O error")
        return updates(ev)

    # When it is applied, Then nothing of it is counted or remembered
    with pytest.raises(sqlite3.OperationalError):
        worker.state.apply(batch, failing)
    assert worker.state.seen([e.id for e in batch]) == set()
    assert value(scrape(worker.port), "eventsink_files_stored") is None

    # And the whole batch counts once when it is retried
    worker.write(batch)
    assert value(scrape(worker.port), "eventsink_files_stored") == 5


def test_state_file_errors_are_retried_later(make_worker: MakeWorker, monkeypatch: pytest.MonkeyPatch) -> None:
    worker = make_worker()

    def full(*args: Any) -> int:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(worker.state, "apply", full)
    with pytest.raises(RetryLater, match="disk is full"):
        worker.write([event()])


def _listening_address(port: int) -> str:
    found = [c.laddr.ip for c in psutil.Process().net_connections(kind="tcp")
             if c.status == psutil.CONN_LISTEN and c.laddr.port == port]
    assert len(found) == 1, found
    return str(found[0])


def test_the_metrics_endpoint_listens_on_loopback_unless_told(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given no address configured: only this host can scrape
    monkeypatch.delenv("EVENTSINK_PROMETHEUS_ADDRESS", raising=False)
    worker = PrometheusWorker(PrometheusSettings(port=0, state_file=tmp_path / "a.db"))
    worker.open()
    try:
        assert _listening_address(worker.port) == "127.0.0.1"
    finally:
        worker.close()
    # When EVENTSINK_PROMETHEUS_ADDRESS says every interface, then it listens there
    monkeypatch.setenv("EVENTSINK_PROMETHEUS_ADDRESS", "0.0.0.0")
    worker = PrometheusWorker(PrometheusSettings(port=0, state_file=tmp_path / "a.db"))
    worker.open()
    try:
        assert _listening_address(worker.port) == "0.0.0.0"
    finally:
        worker.close()
