"""Outages and settings: what the runtime sees when MongoDB is away or misbehaves."""

from __future__ import annotations

import socket
from importlib.metadata import entry_points
from typing import Any

import mongomock
import pytest
from pymongo.errors import AutoReconnect, BulkWriteError

from sink_lib.errors import ConfigurationError
from workers.errors import RejectEvents, RetryLater
from workers.mongodb import MongoDBSettings, MongoDBWorker

from .test_worker import event


def closed_port() -> int:
    """A local TCP port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_server_at_start_is_retried_later() -> None:
    # Given the real pymongo client and a URL where no server listens
    settings = MongoDBSettings(url=f"mongodb://127.0.0.1:{closed_port()}/", server_selection_timeout_ms=200)
    worker = MongoDBWorker(settings)

    # When the worker opens, Then it asks to be retried instead of failing for good
    try:
        with pytest.raises(RetryLater) as caught:
            worker.open()
    finally:
        worker.close()
    assert "ServerSelectionTimeoutError" in caught.value.reason


def test_write_before_open_is_retried_later() -> None:
    with pytest.raises(RetryLater):
        MongoDBWorker(MongoDBSettings()).write([event()])


def test_invalid_url_is_a_configuration_error_naming_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="EVENTSINK_MONGODB_URL"):
        MongoDBWorker(MongoDBSettings(url="mongodb://host:notaport/")).open()


def mongomock_worker(**overrides: Any) -> tuple[MongoDBWorker, Any]:
    client: Any = mongomock.MongoClient(tz_aware=True)
    worker = MongoDBWorker(MongoDBSettings(**overrides), client_factory=lambda settings: client)
    worker.open()
    return worker, client.eventsink


def test_network_error_mid_stream_retries_only_unwritten_collections(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given per-family collections, and a server that drops the connection when health events are sent
    worker, db = mongomock_worker(collection_per_family=True)
    original = mongomock.Collection.insert_many

    def flaky(self: Any, documents: Any, *args: Any, **kwargs: Any) -> Any:
        if self.name == "events_health":
            raise AutoReconnect("connection reset by peer")
        return original(self, documents, *args, **kwargs)

    monkeypatch.setattr(mongomock.Collection, "insert_many", flaky)
    stored = event()
    ping = event("health.ping", {"target": "t", "loss_pct": 0, "ok": True})
    later = event("traffic.page.viewed", {"url": "/"})

    # When a batch spans the three families
    with pytest.raises(RetryLater) as caught:
        worker.write([stored, ping, later])

    # Then the storage event is written, and exactly the events not yet written are retried
    assert caught.value.event_ids == {ping.id, later.id}
    assert "AutoReconnect" in caught.value.reason
    assert db.events_storage.count_documents({}) == 1


def test_rejections_before_an_outage_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    worker, _ = mongomock_worker(collection_per_family=True)
    original = mongomock.Collection.insert_many

    def flaky(self: Any, documents: Any, *args: Any, **kwargs: Any) -> Any:
        if self.name == "events_health":
            raise AutoReconnect("primary stepped down")
        return original(self, documents, *args, **kwargs)

    monkeypatch.setattr(mongomock.Collection, "insert_many", flaky)
    bad = event(data={"file_id": "f", "bytes": 2**70})
    ping = event("health.ping", {"target": "t", "loss_pct": 0, "ok": True})

    with pytest.raises(RejectEvents) as caught:
        worker.write([bad, ping])

    assert set(caught.value.reasons) == {bad.id}
    assert caught.value.retry_ids == {ping.id}


def test_write_concern_failure_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a replica set that stored the documents but could not confirm the write concern
    worker, _ = mongomock_worker()

    def unconfirmed(self: Any, documents: Any, *args: Any, **kwargs: Any) -> Any:
        details = {"writeErrors": [], "writeConcernErrors": [{"code": 64, "errmsg": "waiting for replication"}]}
        raise BulkWriteError(details)

    monkeypatch.setattr(mongomock.Collection, "insert_many", unconfirmed)

    with pytest.raises(RetryLater, match="waiting for replication") as caught:
        worker.write([event()])
    assert caught.value.event_ids is None


def test_settings_come_from_eventsink_mongodb_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTSINK_MONGODB_URL", "mongodb://db.example:27018")
    monkeypatch.setenv("EVENTSINK_MONGODB_DATABASE", "analytics")
    monkeypatch.setenv("EVENTSINK_MONGODB_COLLECTION", "ev")
    monkeypatch.setenv("EVENTSINK_MONGODB_COLLECTION_PER_FAMILY", "true")
    monkeypatch.setenv("EVENTSINK_MONGODB_BATCH_SIZE", "50")
    settings = MongoDBSettings()
    assert (settings.url, settings.database, settings.collection) == ("mongodb://db.example:27018", "analytics", "ev")
    assert settings.collection_per_family is True
    assert settings.batch_size == 50


def test_registered_under_the_workers_entry_point_group() -> None:
    (entry,) = entry_points(group="eventsink.workers", name="mongodb")
    plugin = entry.load()
    assert plugin is MongoDBWorker
    assert plugin.name == "mongodb"
    assert plugin.settings_model is MongoDBSettings
