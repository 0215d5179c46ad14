"""AsyncEventSink: confirmed publishing, and the spool when the broker is away."""

from __future__ import annotations

import json

import pytest

from sink_lib import AsyncEventSink, SinkSettings
from sink_lib.errors import EventValidationError
from sink_lib.spool import Spool
from sink_lib.topology import declare, queue_name
from tests.support import drain_queue


@pytest.mark.rabbitmq
async def test_publish_returns_after_confirm_and_events_arrive(sink_settings: SinkSettings):
    declare(sink_settings, ["alpha"])
    async with AsyncEventSink(settings=sink_settings) as sink:
        sent = [await sink.publish("storage.file.deleted", {"file_id": f"f{i}", "bytes": i}) for i in range(20)]
        assert sink.stats()["confirmed"] == 20
        with pytest.raises(EventValidationError):
            await sink.publish("storage.file.deleted", {"file_id": "f"})
    got = drain_queue(queue_name(sink_settings.exchange, "alpha"), expect=20)
    assert [json.loads(b)["id"] for _, _, b in got] == [e.id for e in sent]
    assert got[0][1].content_type == "application/cloudevents+json" and got[0][1].delivery_mode == 2


@pytest.mark.rabbitmq
async def test_spooled_events_are_replayed_when_the_broker_is_reachable(sink_settings: SinkSettings):
    declare(sink_settings, ["alpha"])
    away = sink_settings.model_copy(update={"amqp_url": "amqp://guest:guest@127.0.0.1:1/%2F",
                                            "reconnect_min_s": 60.0})
    # Given events emitted while the broker is unreachable
    sink = AsyncEventSink(settings=away)
    await sink.connect()
    sent = [(await sink.publish("custom.tick", {"i": i})).id for i in range(10)]
    assert sink.stats()["spooled"] == 10
    await sink.aclose()
    # When a sink that reaches the broker replays the spool
    async with AsyncEventSink(settings=sink_settings) as replayer:
        assert await replayer.replay() == 10
    # Then they arrive in order and the spool is empty
    got = drain_queue(queue_name(sink_settings.exchange, "alpha"), expect=10)
    assert [json.loads(b)["id"] for _, _, b in got] == sent
    assert Spool(sink_settings.spool_dir, 1 << 20).count() == 0
