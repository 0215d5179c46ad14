"""The spool keeps what replay publishes with (AMQP type and timestamp), so replay does not parse bodies."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from sink_lib import EventSink, SinkSettings
from sink_lib.prepared import replay_headers
from sink_lib.spool import Spool, SpoolRecord
from sink_lib.topology import declare, queue_name
from tests.support import drain_queue

OLD_SCHEMA = """
CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, body BLOB NOT NULL,
                     size INTEGER NOT NULL, created REAL NOT NULL, owner TEXT, claimed_at REAL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO meta (key, value) VALUES ('bytes', 0);
"""


def test_an_event_spooled_by_the_sink_keeps_its_type_and_timestamp(spool_dir: Path):
    # Given a sink whose broker cannot be reached
    settings = SinkSettings(amqp_url="amqp://guest:guest@127.0.0.1:1/%2F", exchange="offline", spool_dir=spool_dir,
                            reconnect_min_s=30.0, reconnect_max_s=30.0)
    with EventSink(settings=settings) as sink:
        event = sink.enqueue("storage.file.deleted", {"file_id": "f1", "bytes": 1})
        assert sink.flush(timeout=30)
    # When the spool is read back
    spool = Spool(spool_dir, settings.spool_max_bytes)
    try:
        [record] = spool.claim(10)
    finally:
        spool.close()
    # Then the record carries the type and timestamp the event was published with
    assert (record.id, record.type, record.timestamp) == (event.id, "storage.file.deleted", event.timestamp)
    assert replay_headers(record) == ("storage.file.deleted", event.timestamp)


def test_a_spool_written_by_an_older_version_is_upgraded_and_its_records_read_back(tmp_path: Path):
    # Given a spool file of the older layout (id and body only) holding one event
    body = json.dumps({"specversion": "1.0", "id": "e1", "type": "health.status", "source": "/t",
                       "time": "2026-01-02T03:04:05Z", "data": {}}).encode()
    db = sqlite3.connect(tmp_path / "spool.sqlite3")
    db.executescript(OLD_SCHEMA)
    db.execute("INSERT INTO events (id, body, size, created) VALUES ('e1', ?, ?, 0)", (body, len(body)))
    db.commit()
    db.close()
    # When it is opened, written to and read
    spool = Spool(tmp_path, 1 << 20)
    try:
        spool.append([("e2", b"{}", "health.ping", 7)])
        old, new = spool.claim(10)
    finally:
        spool.close()
    # Then the old record's headers come from its body (2026-01-02T03:04:05Z is 1767323045), the new one's as stored
    assert (old.type, old.timestamp) == (None, None)
    assert replay_headers(old) == ("health.status", 1767323045)
    assert replay_headers(new) == ("health.ping", 7)


def test_a_record_whose_body_is_not_an_envelope_is_still_replayable():
    assert replay_headers(SpoolRecord(1, "x", b"not json"))[0] == ""


@pytest.mark.rabbitmq
def test_replayed_events_carry_the_stored_type_and_timestamp(sink_settings: SinkSettings):
    # Given a spooled record whose stored headers differ from what its body would give
    declare(sink_settings, ["alpha"])
    body = json.dumps({"specversion": "1.0", "id": "e1", "type": "health.status", "source": "/t",
                       "time": "2026-01-02T03:04:05Z", "data": {}}).encode()
    spool = Spool(sink_settings.spool_dir, sink_settings.spool_max_bytes)
    spool.append([("e1", body, "health.status", 1767323999)])
    spool.close()
    # When a sink starts (it replays the spool)
    with EventSink(settings=sink_settings) as sink:
        assert sink.flush(timeout=30)
        [(_, props, got)] = drain_queue(queue_name(sink_settings.exchange, "alpha"), expect=1)
    # Then the message went out with the stored properties, body unchanged
    assert (props.message_id, props.type, props.timestamp, got) == ("e1", "health.status", 1767323999, body)
