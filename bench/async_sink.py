"""AsyncEventSink.publish against a bare aio-pika confirm-mode publisher, same concurrency, same run.

Both run ``--tasks`` asyncio tasks that each publish one event at a time and wait for its broker
confirm (that is what ``await sink.publish(...)`` promises), to a fanout exchange with one
destination's queue bound (declared by the topology as a worker's is, quorum, and drained by two
consumers). The bare publisher sends a pre-serialised body of the same size with the same properties
and does nothing else: no validation, no envelope, no spool. Rounds alternate; medians with the
spread, and CPU time per event of this process (everything runs in it).

    python bench/async_sink.py [--seconds 5] [--rounds 5] [--tasks 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aio_pika

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.api_ingest import cleanup_broker, declare_sink_queue
from bench.common import median, write_result
from bench.http_load import start_drain, stop_drain
from sink_lib import SinkSettings
from sink_lib.async_sink import AsyncEventSink
from sink_lib.event import build_envelope, encode

AMQP = os.environ.get("EVENTSINK_TEST_AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")
DATA = {"url": "https://clowder.example/", "ok": True, "status": 200, "dns_ms": 1.5, "connect_ms": 3.25,
        "tls_ms": 12.0, "ttfb_ms": 40.5, "total_ms": 61.0, "bytes": 5120}


async def drive(tasks: int, seconds: float, publish_one: Any) -> dict[str, float]:
    """Run ``tasks`` loops of ``publish_one`` for ``seconds``; events/s and CPU microseconds per event."""
    count = 0
    stop_at = time.monotonic() + seconds

    async def loop() -> None:
        nonlocal count
        while time.monotonic() < stop_at:
            await publish_one()
            count += 1

    cpu, started = time.process_time(), time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(tasks)))
    elapsed = time.perf_counter() - started
    return {"events_per_s": count / elapsed, "cpu_us_per_event": 1e6 * (time.process_time() - cpu) / max(count, 1)}


async def run(args: argparse.Namespace, exchange: str, spool_dir: str) -> dict[str, list[dict[str, float]]]:
    settings = SinkSettings(amqp_url=AMQP, exchange=exchange, spool_dir=Path(spool_dir))
    body = encode(build_envelope("health.http", DATA, source="/bench"), 1 << 20)
    runs: dict[str, list[dict[str, float]]] = {"bare_aio_pika": [], "async_sink": []}
    connection = await aio_pika.connect(AMQP)
    channel = await connection.channel(publisher_confirms=True)
    bare_exchange = await channel.get_exchange(exchange)

    async def bare() -> None:
        message = aio_pika.Message(body, content_type="application/cloudevents+json",
                                   delivery_mode=aio_pika.DeliveryMode.PERSISTENT, message_id=uuid.uuid4().hex,
                                   type="health.http", timestamp=int(time.time()))
        await bare_exchange.publish(message, routing_key="")

    async with AsyncEventSink(settings=settings) as sink:
        async def library() -> None:
            await sink.publish("health.http", DATA, source="/bench")

        await drive(args.tasks, 1.0, bare)  # warm-up
        await drive(args.tasks, 1.0, library)
        for _ in range(args.rounds):
            runs["bare_aio_pika"].append(await drive(args.tasks, args.seconds, bare))
            runs["async_sink"].append(await drive(args.tasks, args.seconds, library))
        stats = sink.stats()
    await connection.close()
    if stats.get("spooled"):
        print(f"note: {stats['spooled']} event(s) went to the spool (broker did not confirm in time)")
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=32, help="concurrent publishing tasks")
    args = parser.parse_args()
    exchange = f"bench_async_{uuid.uuid4().hex[:8]}"
    queue = declare_sink_queue(exchange)  # a destination's queue, drained as its worker would
    drains = start_drain(AMQP, queue)
    try:
        with tempfile.TemporaryDirectory() as spool_dir:
            runs = asyncio.run(run(args, exchange, spool_dir))
    finally:
        stop_drain(drains)
        cleanup_broker(exchange, queue)
    result: dict[str, Any] = {"settings": vars(args), "runs": runs}
    for name, rows in runs.items():
        rates = [r["events_per_s"] for r in rows]
        result[name] = {"events_per_s": median(rates), "min": min(rates), "max": max(rates),
                        "cpu_us_per_event": median([r["cpu_us_per_event"] for r in rows])}
        print(f"{name:<14}{result[name]['events_per_s']:>9.0f} events/s ({min(rates):.0f}-{max(rates):.0f}), "
              f"CPU {result[name]['cpu_us_per_event']:.0f} us/event")
    result["ratio"] = result["async_sink"]["events_per_s"] / result["bare_aio_pika"]["events_per_s"]
    print(f"AsyncEventSink / bare aio-pika publisher ({args.tasks} tasks): {result['ratio']:.2f}; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"wrote {write_result('async_sink', result)}")


if __name__ == "__main__":
    main()
