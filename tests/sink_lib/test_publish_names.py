"""enqueue() returns at once, publish() waits for the confirm; emit() stays one release as a deprecated alias."""

from __future__ import annotations

import json

import pytest

from sink_lib import AsyncEventSink, EventSink, SinkSettings
from sink_lib.spool import Spool
from sink_lib.topology import declare, queue_name
from tests.support import drain_queue


@pytest.mark.rabbitmq
def test_publish_returns_once_the_broker_confirmed_the_event(sink_settings: SinkSettings):
    # Given a bound queue
    declare(sink_settings, ["alpha"])
    with EventSink(settings=sink_settings) as sink:
        # When an event is published (not merely enqueued)
        event = sink.publish("storage.file.deleted", {"file_id": "f1", "bytes": 3})
        # Then the confirm is already counted when publish() returns
        assert sink.stats()["confirmed"] == 1
    got = drain_queue(queue_name(sink_settings.exchange, "alpha"), expect=1)
    assert json.loads(got[0][2])["id"] == event.id


@pytest.mark.rabbitmq
def test_enqueue_and_the_deprecated_emit_both_deliver(sink_settings: SinkSettings):
    declare(sink_settings, ["alpha"])
    with EventSink(settings=sink_settings) as sink:
        first = sink.enqueue("storage.file.deleted", {"file_id": "f1", "bytes": 1})
        with pytest.warns(DeprecationWarning, match="enqueue"):
            second = sink.emit("storage.file.deleted", {"file_id": "f2", "bytes": 2}, userid="u1")
        assert sink.flush(timeout=30)
    got = drain_queue(queue_name(sink_settings.exchange, "alpha"), expect=2)
    bodies = [json.loads(body) for _, _, body in got]
    assert [b["id"] for b in bodies] == [first.id, second.id]
    assert bodies[1]["userid"] == "u1"


async def test_async_emit_is_a_deprecated_alias_of_publish(spool_dir):
    # Given an async sink that cannot reach any broker (so publish() spools)
    settings = SinkSettings(amqp_url="amqp://guest:guest@127.0.0.1:1/%2F", exchange="offline", spool_dir=spool_dir)
    sink = AsyncEventSink(settings=settings, confirm_timeout_s=1.0)
    try:
        # When the old name is called
        with pytest.warns(DeprecationWarning, match="publish"):
            event = await sink.emit("storage.file.deleted", {"file_id": "f1", "bytes": 1})
    finally:
        await sink.aclose()
    # Then it did what publish() does: the event is safe in the spool when the call returns
    spool = Spool(spool_dir, settings.spool_max_bytes)
    try:
        assert [r.id for r in spool.claim(10)] == [event.id]
    finally:
        spool.close()


def test_a_misspelt_keyword_is_refused_not_dropped(spool_dir):
    settings = SinkSettings(amqp_url="amqp://guest:guest@127.0.0.1:1/%2F", exchange="offline", spool_dir=spool_dir,
                            reconnect_min_s=30.0, reconnect_max_s=30.0)
    with EventSink(settings=settings) as sink, pytest.raises(TypeError, match="user_id"):
        sink.enqueue("storage.file.deleted", {"file_id": "f1", "bytes": 1}, user_id="u1")  # type: ignore[call-arg]
