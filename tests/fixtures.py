"""Shared fixtures: real RabbitMQ and InfluxDB (skipped locally when absent, required in CI)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest
import requests

from sink_lib.settings import SinkSettings

from .support import IN_CI, INFLUXDB_URL, RABBITMQ_URL, not_here, port_open, rabbitmq_ready, wait_for


def _unavailable(what: str) -> None:
    if IN_CI:
        pytest.fail(f"{what} is required in CI but is not reachable")
    pytest.skip(f"{what} not reachable")


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    """URL of the real broker; skips the test locally when it is down, fails it in CI."""
    if not rabbitmq_ready():
        _unavailable(f"RabbitMQ at {RABBITMQ_URL}")
    return RABBITMQ_URL


@pytest.fixture(scope="session")
def influxdb_url() -> str:
    """URL of the real InfluxDB 1.x server; skip locally when absent, fail in CI."""
    try:
        ok = requests.get(INFLUXDB_URL + "/ping", timeout=2).status_code == 204
    except requests.RequestException:
        ok = False
    if not ok:
        _unavailable(f"InfluxDB at {INFLUXDB_URL}")
    return INFLUXDB_URL


@pytest.fixture
def exchange(rabbitmq_url: str) -> Iterator[str]:
    """A fresh exchange name for this test; its exchanges and queues are deleted afterwards."""
    name = f"test_{uuid.uuid4().hex[:10]}"
    yield name
    try:
        conn = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    except Exception:
        return
    try:
        ch = conn.channel()
        # queues of this test all start with the exchange name; delete the usual ones
        for suffix in ("", ".dead"):
            ch.exchange_delete(name + suffix)
        for queue in _queues_named(name):
            ch.queue_delete(queue)
    except Exception:
        pass
    finally:
        try:
            if conn.is_open:
                conn.close()
        except Exception:  # the broker may have been restarted under this connection
            pass


def _queues_named(prefix: str) -> list[str]:
    import subprocess

    try:
        out = subprocess.run(
            ["rabbitmqctl", "list_queues", "name", "-q", "--no-table-headers"],
            capture_output=True, text=True, timeout=30,
        ).stdout
    except Exception:
        return []
    return [line.strip() for line in out.splitlines() if line.strip().startswith(prefix + ".")]


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    """A private spool folder."""
    path = tmp_path / "spool"
    path.mkdir()
    return path


@pytest.fixture
def sink_settings(exchange: str, spool_dir: Path, rabbitmq_url: str) -> SinkSettings:
    """Settings pointing at the real broker, a fresh exchange and a private spool."""
    return SinkSettings(amqp_url=rabbitmq_url, exchange=exchange, spool_dir=spool_dir, exit_timeout_s=5.0)


REAL_MONGODB_URL = os.environ.get("EVENTSINK_TEST_MONGODB_URL", "")
MONGODB_STAND_IN = shutil.which("nx-27017")
NO_MONGODB_SERVER = "no MongoDB server: set EVENTSINK_TEST_MONGODB_URL, or install nx-27017 (dev extra)"


@pytest.fixture(scope="session")
def mongodb_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a server speaking the MongoDB protocol in another process: ``EVENTSINK_TEST_MONGODB_URL``, or
    a private nx-27017 (a wire-protocol stand-in backed by SQLite, from the dev extra) for the session."""
    if REAL_MONGODB_URL:
        yield REAL_MONGODB_URL
        return
    if MONGODB_STAND_IN is None:
        not_here(NO_MONGODB_SERVER)
    folder = tmp_path_factory.mktemp("nx27017")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    command = [
        MONGODB_STAND_IN, "--data-dir", str(folder), "--host", "127.0.0.1", "--port", str(port),
        "--log-file", str(folder / "server.log"), "--pid-file", str(folder / "server.pid"),
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: port_open("127.0.0.1", port), 30, 0.1, what="the nx-27017 stand-in to listen")
        yield f"mongodb://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)

SERVICE_FIXTURES = {"rabbitmq_url": "rabbitmq", "influxdb_url": "influxdb"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test reaching a service through its fixture must carry that service's marker, so that
    ``-m "not rabbitmq and not influxdb"`` (``make test-fast``) really needs no service."""
    unmarked = [
        f"{item.nodeid} uses {fixture} without @pytest.mark.{marker}"
        for item in items
        for fixture, marker in SERVICE_FIXTURES.items()
        if fixture in getattr(item, "fixturenames", ()) and item.get_closest_marker(marker) is None
    ]
    if unmarked:
        raise pytest.UsageError("tests missing their service marker:\n  " + "\n  ".join(unmarked))
