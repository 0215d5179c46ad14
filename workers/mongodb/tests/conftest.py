"""Fixtures: every backend test runs on mongomock, and again on a server over the wire.

The ``server`` variant uses ``EVENTSINK_TEST_MONGODB_URL`` (e.g. ``mongodb://localhost:27017``) when it
is set. Otherwise, when the ``nx-27017`` command is installed (a MongoDB wire-protocol server backed by
SQLite, a stand-in, not MongoDB), a private one is started for the session; with neither, the variant
is skipped. Each test uses a fresh database that is dropped afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import mongomock
import pytest

from workers.mongodb import MongoDBSettings, MongoDBWorker
from workers.mongodb.worker import pymongo_client


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
