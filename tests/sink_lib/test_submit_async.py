"""EventSink's awaitable submits (used by the API's event-loop worker) and the loop notifier."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from sink_lib import EventSink, SinkSettings
from sink_lib.errors import PublishTimeout
from sink_lib.loopwake import LoopNotifier, LoopTicket
from sink_lib.spool import Spool
from sink_lib.topology import declare, queue_name
from tests.support import drain_queue

from .test_sink_offline import offline_settings, stalled


def test_futures_settled_from_another_thread_wake_the_loop_once_per_batch() -> None:
    loop = asyncio.new_event_loop()
    try:
        wakes = []
        real = loop.call_soon_threadsafe

        def counting(callback, *args):  # type: ignore[no-untyped-def]
            wakes.append(callback)
            return real(callback, *args)

        loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
        notifier = LoopNotifier(loop)
        futures = [loop.create_future() for _ in range(500)]
        # the publisher settles a confirm's worth of requests while the loop is busy elsewhere
        settler = threading.Thread(target=lambda: [notifier.settle(f) for f in futures])
        settler.start()
        settler.join()
        loop.run_until_complete(asyncio.wait_for(asyncio.gather(*futures), 5))
        assert all(f.done() for f in futures)
        assert len(wakes) == 1
        # a later batch wakes it again
        later = loop.create_future()
        threading.Thread(target=notifier.settle, args=(later,)).start()
        loop.run_until_complete(asyncio.wait_for(later, 5))
        assert len(wakes) == 2
    finally:
        loop.close()


def test_a_ticket_resolves_its_future_when_its_last_event_settles() -> None:
    loop = asyncio.new_event_loop()
    try:
        ticket = LoopTicket(3, loop)
        ticket.count_down()
        ticket.count_down(RuntimeError("nacked"))
        loop.run_until_complete(asyncio.sleep(0.01))
        assert not ticket.future.done()
        ticket.count_down()
        loop.run_until_complete(asyncio.wait_for(ticket.future, 5))
        assert isinstance(ticket.error, RuntimeError)
        with pytest.raises(TypeError):
            ticket.wait(1)
    finally:
        loop.close()


@pytest.mark.rabbitmq
def test_submit_async_returns_once_the_broker_confirmed(sink_settings: SinkSettings) -> None:
    declare(sink_settings, ["alpha"])

    async def post(sink: EventSink) -> list[str]:
        batches = [[sink.prepare("custom.tick", {"i": b * 10 + i}) for i in range(10)] for b in range(20)]
        await asyncio.gather(*(sink.submit_async(batch, wait=30) for batch in batches))
        return [e.id for batch in batches for e in batch]

    with EventSink(settings=sink_settings) as sink:
        ids = asyncio.run(post(sink))
        assert sink.stats()["confirmed"] == 200  # every await returned after its confirm
    received = drain_queue(queue_name(sink_settings.exchange, "alpha"), expect=200, timeout=60)
    assert sorted(props.message_id for _, props, _ in received) == sorted(ids)


def test_submit_async_without_a_broker_returns_once_spooled(spool_dir: Path) -> None:
    settings = offline_settings(spool_dir, reconnect_min_s=0.05, reconnect_max_s=0.05)
    with EventSink(settings=settings) as sink:
        events = [sink.prepare("custom.tick", {"i": i}) for i in range(5)]
        asyncio.run(sink.submit_async(events, wait=30))
        assert sink.stats()["spooled"] == 5
    assert Spool(spool_dir, 1 << 20).count() == 5


def test_submit_async_times_out_while_the_events_stay_queued(spool_dir: Path) -> None:
    with EventSink(settings=offline_settings(spool_dir)) as sink:
        stalled(sink)
        event = sink.prepare("custom.tick", {"i": 1})
        with pytest.raises(PublishTimeout, match="1 of 1 event"):
            asyncio.run(sink.submit_async([event], wait=0.2))
        assert sink.stats()["queued"] == 1


def test_spool_submit_async_returns_once_written(spool_dir: Path) -> None:
    with EventSink(settings=offline_settings(spool_dir)) as sink:
        stalled(sink)

        async def post() -> None:
            await asyncio.gather(*(sink.spool_submit_async([sink.prepare("custom.tick", {"i": i})], wait=30)
                                   for i in range(50)))

        asyncio.run(post())
        assert Spool(spool_dir, 1 << 20).count() == 50
        assert sink._group_spool.groups < 50  # concurrent callers shared commits


def test_a_waiting_submit_whose_events_overflow_into_the_spool_returns_at_once(spool_dir: Path) -> None:
    # the queue is full (the publisher is stalled) and the policy spools the overflow: the events are
    # safe on disk, so a caller waiting for them is answered, not left to time out
    with EventSink(settings=offline_settings(spool_dir, max_queue=1, full_policy="spool")) as sink:
        stalled(sink)
        sink.enqueue("custom.tick", {"i": 0})
        sink.submit([sink.prepare("custom.tick", {"i": i}) for i in range(1, 4)], wait=5)
        asyncio.run(sink.submit_async([sink.prepare("custom.tick", {"i": 9})], wait=5))
    assert Spool(spool_dir, 1 << 20).count() >= 4


def test_requests_submitted_in_one_pass_of_the_loop_wake_the_publisher_once_with_all_of_them(
        spool_dir: Path) -> None:
    # the API's worker submits the requests it read in one pass of its loop; the publisher is woken
    # after the last of them, so it takes them all at once (one write to the broker), not one each
    with EventSink(settings=offline_settings(spool_dir)) as sink:
        stalled(sink)
        outbox = sink._outbox
        seen: list[int] = []

        def publisher_wakes() -> None:  # stands in for the publisher: takes and settles what is queued
            with outbox.lock:
                seen.append(len(outbox.items))
                items = outbox.take(len(outbox.items))
                outbox.wake_pending = False
            for item in items:
                item.ticket.count_down()

        outbox.urgent_waker = publisher_wakes

        async def post() -> None:
            await asyncio.gather(*(sink.submit_async([sink.prepare("custom.tick", {"i": i})], wait=5)
                                   for i in range(50)))
            await sink.submit_async([sink.prepare("custom.tick", {"i": 50})], wait=5)  # a later pass

        asyncio.run(post())
        assert seen == [50, 1]
