"""``eventsink worker run mongodb`` killed with -9 mid-batch: nothing lost, nothing stored twice.

Server only (``EVENTSINK_TEST_MONGODB_URL``, or the nx-27017 stand-in: see conftest): the worker runs
in its own process, and a mongomock database lives in that process's memory, so it would vanish with
the kill and prove nothing.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sink_lib.event import build_envelope
from sink_lib.settings import SinkSettings
from sink_lib.topology import dead_queue_name, queue_name
from tests.support import queue_depth, wait_for
from tests.workers.helpers import publish
from workers.mongodb import MongoDBSettings
from workers.mongodb.worker import pymongo_client

pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def database(mongodb_url: str) -> Iterator[Any]:
    """A fresh database on the server, dropped afterwards."""
    name = f"eventsink_test_{uuid.uuid4().hex[:10]}"
    client = pymongo_client(MongoDBSettings(url=mongodb_url, server_selection_timeout_ms=5000))
    try:
        yield client[name]
    finally:
        client.drop_database(name)
        client.close()


def start_worker(settings: SinkSettings, url: str, database: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "EVENTSINK_AMQP_URL": settings.amqp_url,
        "EVENTSINK_EXCHANGE": settings.exchange,
        "EVENTSINK_MONGODB_URL": url,
        "EVENTSINK_MONGODB_DATABASE": database,
        "EVENTSINK_MONGODB_BATCH_SIZE": "50",
        "EVENTSINK_MONGODB_BATCH_TIMEOUT_S": "0.1",
    }
    script = shutil.which("eventsink")
    command = [script] if script else [sys.executable, "-m", "sink_lib.cli"]
    return subprocess.Popen([*command, "worker", "run", "mongodb"], env=env, cwd=ROOT, stderr=subprocess.DEVNULL)


def test_kill_9_mid_batch_loses_nothing_and_stores_each_event_once(
    sink_settings: SinkSettings, mongodb_url: str, database: Any
) -> None:
    # Given 5,000 events queued
    events = [build_envelope("traffic.page.viewed", {"url": f"/p{i}"}, source="/app") for i in range(5000)]
    publish(sink_settings, "mongodb", events)

    # When the worker is killed with SIGKILL while storing them, and a new one starts
    first = start_worker(sink_settings, mongodb_url, database.name)
    second = None
    try:
        wait_for(lambda: database.events.estimated_document_count() >= 50, 60, 0.01, what="first documents")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert database.events.count_documents({}) < len(events), "the worker was not killed mid-stream"
        second = start_worker(sink_settings, mongodb_url, database.name)

        # Then every event ends up stored exactly once, and nothing was dead-lettered
        wait_for(lambda: database.events.count_documents({}) >= len(events), 120, 0.2, what="all events stored")
        wait_for(lambda: queue_depth(queue_name(sink_settings.exchange, "mongodb")) == 0, 30, what="queue drained")
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)
    assert sorted(d["_id"] for d in database.events.find({}, {"_id": 1})) == sorted(e["id"] for e in events)
    assert queue_depth(dead_queue_name(sink_settings.exchange, "mongodb")) == 0
