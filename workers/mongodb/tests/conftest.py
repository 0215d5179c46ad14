"""Fixtures: every backend test runs on mongomock, and again on a real server when one is configured.

Set ``EVENTSINK_TEST_MONGODB_URL`` (e.g. ``mongodb://localhost:27017``) to run the ``real`` variant;
each test then uses a fresh database that is dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import mongomock
import pytest

from workers.mongodb import MongoDBSettings, MongoDBWorker
from workers.mongodb.worker import pymongo_client

REAL_URL = os.environ.get("EVENTSINK_TEST_MONGODB_URL", "")


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


@pytest.fixture(params=["mongomock", "real"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """mongomock always; the real server only when EVENTSINK_TEST_MONGODB_URL is set."""
    database = f"eventsink_test_{uuid.uuid4().hex[:10]}"
    if request.param == "mongomock":
        client: Any = mongomock.MongoClient(tz_aware=True)
        yield Backend("mongomock", "mongodb://mongomock", database, lambda settings: client, client)
        return
    if not REAL_URL:
        pytest.skip("EVENTSINK_TEST_MONGODB_URL is not set: no MongoDB server to test against")
    probe = pymongo_client(MongoDBSettings(url=REAL_URL, server_selection_timeout_ms=5000))
    try:
        yield Backend("real", REAL_URL, database, pymongo_client, probe)
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
