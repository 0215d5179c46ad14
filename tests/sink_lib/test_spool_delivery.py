"""Spooled events are delivered by a sink that starts, and by close() once the broker is back."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator

import pytest

from sink_lib import EventSink, SinkSettings
from sink_lib.spool import Spool
from sink_lib.topology import declare, queue_name
from tests.support import wait_for

from .broker_door import BrokerDoor
from .test_sink_rabbitmq import env_of, ids_in, run_python

pytestmark = pytest.mark.rabbitmq


def spool_count(settings: SinkSettings) -> int:
    spool = Spool(settings.spool_dir, 1 << 30)
    try:
        return spool.count()
    finally:
        spool.close()


def spool_left_by_a_killed_process(settings: SinkSettings, count: int) -> list[str]:
    """Run a process that cannot reach the broker, let it spool ``count`` events, kill it; return their ids."""
    code = f"""
        import time
        from sink_lib import EventSink
        sink = EventSink()
        for i in range({count}):
            print(sink.enqueue("custom.tick", {{"i": i}}).id, flush=True)
        assert sink.flush(30)
        print("spooled", flush=True)
        time.sleep(600)
    """
    env = env_of(settings, EVENTSINK_AMQP_URL="amqp://guest:guest@127.0.0.1:1/%2F",
                 EVENTSINK_RECONNECT_MIN_S="60", EVENTSINK_RECONNECT_MAX_S="60")
    proc = run_python(code, env)
    assert proc.stdout is not None
    ids = []
    for line in proc.stdout:
        if line.strip() == "spooled":
            break
        ids.append(line.strip())
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert len(ids) == count and spool_count(settings) == count
    return ids


@pytest.fixture
def door(rabbitmq_url: str) -> Iterator[BrokerDoor]:
    door = BrokerDoor(rabbitmq_url)
    yield door
    door.close()


def test_a_sink_that_never_emits_replays_the_spool_of_a_killed_process(sink_settings: SinkSettings):
    declare(sink_settings, ["alpha"])
    # Given 150 events in the spool of a process killed while the broker was unreachable
    left = spool_left_by_a_killed_process(sink_settings, 150)
    # When a new sink on that spool starts and emits nothing
    sink = EventSink(settings=sink_settings)
    try:
        # Then it delivers them while it runs, oldest first
        wait_for(lambda: spool_count(sink_settings) == 0, timeout=60, what="the spool to be replayed")
        assert sink.stats()["replayed"] == 150
    finally:
        sink.close(10)
    assert ids_in(queue_name(sink_settings.exchange, "alpha"), expect=150) == left


def test_close_delivers_the_spool_once_the_broker_is_back(sink_settings: SinkSettings, door: BrokerDoor):
    declare(sink_settings, ["alpha"])
    # Given a sink that spooled events while the broker was away, and waits long before reconnecting
    settings = sink_settings.model_copy(update={"amqp_url": door.url, "reconnect_min_s": 120.0,
                                                "reconnect_max_s": 120.0})
    sink = EventSink(settings=settings)
    sent = [sink.enqueue("custom.tick", {"i": i}).id for i in range(100)]
    assert sink.flush(30)
    assert sink.stats()["spooled"] == 100
    # When the broker is back and the sink is closed
    door.open()
    left = sink.close(60)
    # Then close() delivered the spool before returning, and says nothing is left
    assert left == 0
    assert sink.stats()["replayed"] == 100 and spool_count(sink_settings) == 0
    assert ids_in(queue_name(sink_settings.exchange, "alpha"), expect=100) == sent


def test_close_says_what_it_left_when_the_broker_is_still_away(
    sink_settings: SinkSettings, door: BrokerDoor, caplog: pytest.LogCaptureFixture
):
    # Given a sink with events in the spool and a broker that stays away
    settings = sink_settings.model_copy(update={"amqp_url": door.url, "reconnect_min_s": 120.0,
                                                "reconnect_max_s": 120.0})
    sink = EventSink(settings=settings)
    for i in range(40):
        sink.enqueue("custom.tick", {"i": i})
    assert sink.flush(30)
    # When it is closed with a long timeout
    result: list[int] = []
    closer = threading.Thread(target=lambda: result.append(sink.close(300)))
    with caplog.at_level(logging.WARNING, logger="sink_lib"):
        closer.start()
        closer.join(120)
    # Then it gives up after one failed reconnect instead of waiting out the timeout, and reports the 40
    assert not closer.is_alive(), "close() waited for a broker that refused the connection"
    assert result == [40]
    assert f"40 event(s) left in the spool {settings.spool_dir}" in caplog.text
    assert sink.stats()["spool_pending"] == 40


async def test_an_async_sink_that_never_emits_replays_the_spool_of_a_killed_process(sink_settings: SinkSettings):
    import asyncio

    from sink_lib import AsyncEventSink

    declare(sink_settings, ["alpha"])
    left = spool_left_by_a_killed_process(sink_settings, 50)
    async with AsyncEventSink(settings=sink_settings) as sink:
        for _ in range(600):  # wait on the condition, up to about a minute
            if spool_count(sink_settings) == 0:
                break
            await asyncio.sleep(0.1)
        assert sink.stats()["replayed"] == 50
    assert ids_in(queue_name(sink_settings.exchange, "alpha"), expect=50) == left
