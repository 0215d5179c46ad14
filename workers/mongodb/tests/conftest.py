"""Fixtures: every backend test runs on mongomock, and again on a server over the wire.

The ``server`` variant uses ``EVENTSINK_TEST_MONGODB_URL`` (e.g. ``mongodb://localhost:27017``) when it
is set. Otherwise, when the ``nx-27017`` command is installed (a MongoDB wire-protocol server backed by
SQLite, a stand-in, not MongoDB), a private one is started for the session; with neither, the variant
is skipped. Each test uses a fresh database that is dropped afterwards.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import mongomock
import pytest

from tests.support import not_here, port_open, wait_for
from workers.mongodb import MongoDBSettings, MongoDBWorker
from workers.mongodb.worker import pymongo_client

REAL_URL = os.environ.get("EVENTSINK_TEST_MONGODB_URL", "")
STAND_IN = shutil.which("nx-27017")
NO_SERVER = "no MongoDB server: set EVENTSINK_TEST_MONGODB_URL, or install nx-27017 for a wire-protocol stand-in"


@pytest.fixture(scope="session")
def mongodb_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a server speaking the MongoDB protocol in another process; skips when there is none."""
    if REAL_URL:
        yield REAL_URL
        return
    if STAND_IN is None:
        not_here(NO_SERVER)
    folder = tmp_path_factory.mktemp("nx27017")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    command = [
        STAND_IN, "--data-dir", str(folder), "--host", "127.0.0.1", "--port", str(port),
        "--log-file", str(folder / "server.log"), "--pid-file", str(folder / "server.pid"),
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: port_open("127.0.0.1", port), 30, 0.1, what="the nx-27017 stand-in to listen")
        yield f"mongodb://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


@dataclass
class Backend:
    """A MongoDB to test against: how workers reach it, and a handle to read what they stored."""

    kind: str
    url: str
    database: str
    client_factory: Callable[[MongoDBSettings], Any]
    client: Any

    @property
    def db(self) -> Any:
        """The test's database, for assertions."""
        return self.client[self.database]


@pytest.fixture(params=["mongomock", "server"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """mongomock always; a server over the wire when there is one (see the module docstring)."""
    database = f"eventsink_test_{uuid.uuid4().hex[:10]}"
    if request.param == "mongomock":
        client: Any = mongomock.MongoClient(tz_aware=True)
        yield Backend("mongomock", "mongodb://mongomock", database, lambda settings: client, client)
        return
    url = request.getfixturevalue("mongodb_url")
    probe = pymongo_client(MongoDBSettings(url=url, server_selection_timeout_ms=5000))
    try:
        yield Backend("server", url, database, pymongo_client, probe)
    finally:
        probe.drop_database(database)
        probe.close()


@pytest.fixture
def make_worker(backend: Backend) -> Iterator[Callable[..., MongoDBWorker]]:
    """Build opened workers on the backend (settings overridable); closes them at the end."""
    opened: list[MongoDBWorker] = []

    def make(**overrides: Any) -> MongoDBWorker:
        settings = MongoDBSettings(url=backend.url, database=backend.database, **overrides)
        worker = MongoDBWorker(settings, client_factory=backend.client_factory)
        worker.open()
        opened.append(worker)
        return worker

    yield make
    for worker in opened:
        worker.close()
