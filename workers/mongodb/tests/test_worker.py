"""The mongodb worker against mongomock, and against a real server when one is configured."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from sink_lib.event import Event, build_envelope
from workers.errors import RejectEvents
from workers.mongodb import MongoDBWorker

from .conftest import Backend

MakeWorker = Callable[..., MongoDBWorker]


def event(type_: str = "storage.file.uploaded", data: dict[str, Any] | None = None, **attrs: Any) -> Event:
    """A parsed event as the runtime hands it to write()."""
    payload = {"file_id": "f1", "bytes": 10} if data is None else data
    return Event.parse(build_envelope(type_, payload, source="/test", **attrs))


def test_each_event_is_one_document_keyed_by_its_id(backend: Backend, make_worker: MakeWorker) -> None:
    # Given an event with every optional attribute
    moment = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    ev = event(time=moment, subject="file/f1", userid="u1", region="us-east")
    worker = make_worker()

    # When it is written
    worker.write([ev])

    # Then one document holds the envelope, time as a UTC datetime (BSON keeps milliseconds)
    doc = backend.db.events.find_one({"_id": ev.id})
    assert doc["type"] == "storage.file.uploaded"
    assert doc["family"] == "storage"
    assert (doc["source"], doc["subject"], doc["userid"], doc["region"]) == ("/test", "file/f1", "u1", "us-east")
    assert doc["data"] == {"file_id": "f1", "bytes": 10}
    assert doc["time"] == moment.replace(microsecond=123000)
    assert doc["time"].utcoffset().total_seconds() == 0
    assert backend.db.events.count_documents({}) == 1


def test_absent_attributes_are_left_out_but_data_is_kept_as_sent(backend: Backend, make_worker: MakeWorker) -> None:
    ev = event(data={"file_id": "f", "bytes": 1, "note": None, "tags": ["a", {"b": None}]})
    make_worker().write([ev])
    doc = backend.db.events.find_one({"_id": ev.id})
    assert not {"subject", "userid", "region"} & set(doc)
    assert doc["data"] == {"file_id": "f", "bytes": 1, "note": None, "tags": ["a", {"b": None}]}


def test_redelivered_events_are_stored_once(backend: Backend, make_worker: MakeWorker) -> None:
    # Given a batch that was written, and a worker restarted after it
    batch = [event(data={"file_id": f"f{i}", "bytes": i}) for i in range(5)]
    make_worker().write(batch)

    # When the same events come again, mixed with new ones
    new = [event(data={"file_id": "g", "bytes": 1}), event(data={"file_id": "h", "bytes": 2})]
    make_worker().write([batch[0], *new, *batch[1:]])

    # Then nothing is rejected and every event is stored exactly once
    assert sorted(d["_id"] for d in backend.db.events.find()) == sorted(e.id for e in [*batch, *new])


def test_open_creates_the_time_and_type_indexes_idempotently(backend: Backend, make_worker: MakeWorker) -> None:
    make_worker()
    make_worker()  # a second start must not fail or add indexes
    keys = [list(dict(info["key"])) for info in backend.db.events.index_information().values()]
    assert sorted(keys) == [["_id"], ["time"], ["type", "time"]]


def test_per_family_collections(backend: Backend, make_worker: MakeWorker) -> None:
    # Given per-family collections
    worker = make_worker(collection_per_family=True)
    stored = event()
    status = event("health.status", {"service": "web", "state": "up"})
    custom = event("billing.invoice.paid", {"amount": 3})

    # When events of three families are written
    worker.write([stored, status, custom])

    # Then each lands in <collection>_<family>, with indexes, also for a family the worker did not know
    assert backend.db.events_storage.find_one({"_id": stored.id})["type"] == "storage.file.uploaded"
    assert backend.db.events_health.find_one({"_id": status.id})["data"]["state"] == "up"
    assert backend.db.events_billing.find_one({"_id": custom.id})["family"] == "billing"
    assert "events" not in backend.db.list_collection_names()
    for name in ("events_storage", "events_health", "events_billing", "events_traffic"):
        keys = [list(dict(i["key"])) for i in backend.db[name].index_information().values()]
        assert ["type", "time"] in keys, name


def test_refused_document_rejects_only_that_event(backend: Backend, make_worker: MakeWorker) -> None:
    # Given an operator's unique index on the file id (a duplicate key that is NOT the event id)
    worker = make_worker()
    backend.db.events.create_index("data.file_id", unique=True)
    first, clash, other = (event(data={"file_id": f, "bytes": 1}) for f in ("same", "same", "other"))

    # When a batch holds two different events with the same file id
    with pytest.raises(RejectEvents) as caught:
        worker.write([first, clash, other])

    # Then only the clashing event is rejected, with MongoDB's reason; the others are stored
    assert set(caught.value.reasons) == {clash.id}
    assert "11000" in caught.value.reasons[clash.id]
    assert not caught.value.retry_ids
    assert {d["_id"] for d in backend.db.events.find()} == {first.id, other.id}


def test_documents_mongodb_cannot_store_are_rejected(backend: Backend, make_worker: MakeWorker) -> None:
    # Given an integer beyond 64 bits, a document over 16 MiB, and a normal event
    huge_int = event(data={"file_id": "f", "bytes": 2**70})
    too_big = event("traffic.page.viewed", {"url": "x" * (17 * 1024 * 1024)})
    fine = event()

    with pytest.raises(RejectEvents) as caught:
        make_worker().write([huge_int, too_big, fine])

    assert set(caught.value.reasons) == {huge_int.id, too_big.id}
    assert "BSON" in caught.value.reasons[huge_int.id]
    assert "16777216" in caught.value.reasons[too_big.id]
    assert [d["_id"] for d in backend.db.events.find()] == [fine.id]
