"""Raw drain rate of the worker runtime (with the discard plugin) against a hand-written pika consumer.

Both drain the same quorum queue, pre-filled with N events of about 1 KB each, in the same run. The
baseline is a pika BlockingConnection consumer with the same prefetch that does nothing but ack every
batch with ``multiple``: the ceiling for a pika consumer on this machine. The runtime additionally
parses every body into an Event, checks its type, de-duplicates ids and updates metrics: what a
plugin gets for free. Rounds alternate baseline and runtime; the best of each is compared. Time runs
from the consumer's start (connection included) to the last ack. CPU seconds of this process over
the same span are reported too: on a shared, loaded machine they are steadier than wall time.

The prefill is published on a confirm-mode channel through pika's asynchronous adapter with a window
of outstanding confirms, so it is fast and every message is known to be in the queue.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pika
import pika.exceptions
from pika.adapters.select_connection import SelectConnection

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import payload_1kb, write_result
from sink_lib.event import build_envelope, encode
from sink_lib.settings import SinkSettings
from sink_lib.topology import declare_exchange, declare_worker, queue_name
from workers.discard import DiscardWorker
from workers.runtime import QueueConsumer, WorkerMetrics, build_plugin, tune_gc

AMQP = "amqp://guest:guest@localhost:5672/%2F"
WORKER = "discard"


def bodies(count: int) -> list[bytes]:
    """Serialised 1 KB events."""
    return [
        encode(build_envelope("storage.file.uploaded", payload_1kb(i), source="/bench"), 1 << 20)
        for i in range(count)
    ]


def prefill(settings: SinkSettings, payloads: list[bytes], window: int = 2000) -> float:
    """Publish every payload to the exchange with publisher confirms (``window`` outstanding)."""
    props = pika.BasicProperties(content_type="application/cloudevents+json", delivery_mode=2)
    state: dict[str, Any] = {"sent": 0, "confirmed": 0, "closed": None}
    started = time.perf_counter()

    def pump(channel: Any) -> None:
        while state["sent"] < len(payloads) and state["sent"] - state["confirmed"] < window:
            channel.basic_publish(settings.exchange, "", payloads[state["sent"]], props)
            state["sent"] += 1

    def on_confirm(frame: Any) -> None:
        if isinstance(frame.method, pika.spec.Basic.Nack):
            raise RuntimeError("the broker refused a prefill message")
        if frame.method.multiple:
            state["confirmed"] = frame.method.delivery_tag
        else:
            state["confirmed"] = max(state["confirmed"], frame.method.delivery_tag)
        if state["confirmed"] >= len(payloads):
            connection.close()
        else:
            pump(channel_holder[0])

    channel_holder: list[Any] = []

    def on_channel(channel: Any) -> None:
        channel_holder.append(channel)
        channel.confirm_delivery(on_confirm)
        pump(channel)

    connection = SelectConnection(
        pika.URLParameters(settings.amqp_url),
        on_open_callback=lambda conn: conn.channel(on_open_callback=on_channel),
        on_close_callback=lambda conn, reason: (state.update(closed=reason), conn.ioloop.stop()),
    )
    connection.ioloop.start()
    if state["confirmed"] < len(payloads):
        raise RuntimeError(
            f"only {state['confirmed']} of {len(payloads)} prefill messages confirmed: {state['closed']!r}"
        )
    return time.perf_counter() - started


def drain_baseline(settings: SinkSettings, count: int, prefetch: int, batch: int) -> float:
    """Consume and ack ``count`` messages in batches with a bare pika consumer; seconds taken."""
    started = time.perf_counter()
    connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=prefetch)
    state = {"seen": 0, "last": 0, "acked": 0}

    def on_message(ch: Any, method: Any, _props: Any, _body: bytes) -> None:
        state["seen"] += 1
        state["last"] = method.delivery_tag
        if state["seen"] - state["acked"] >= batch:
            ch.basic_ack(method.delivery_tag, multiple=True)
            state["acked"] = state["seen"]

    channel.basic_consume(queue_name(settings.exchange, WORKER), on_message)
    while state["acked"] < count:
        connection.process_data_events(time_limit=0.2)
        if state["seen"] > state["acked"] and state["seen"] == count:
            channel.basic_ack(state["last"], multiple=True)
            state["acked"] = state["seen"]
    elapsed = time.perf_counter() - started
    connection.close()
    return elapsed


def drain_runtime(settings: SinkSettings, count: int, batch: int) -> tuple[float, float]:
    """Run the runtime with the discard plugin until ``count`` events were delivered; (seconds, written)."""
    plugin = build_plugin(DiscardWorker, batch_size=batch)
    assert isinstance(plugin, DiscardWorker)
    stop = threading.Event()
    metrics = WorkerMetrics(WORKER)
    worker = QueueConsumer(plugin, settings, metrics=metrics, stop_event=stop)
    started = time.perf_counter()
    thread = threading.Thread(target=worker.run)
    thread.start()
    while metrics.value("eventsink_worker_events_processed_total") < count and thread.is_alive():
        time.sleep(0.01)
    elapsed = time.perf_counter() - started
    stop.set()
    thread.join(30)
    return elapsed, metrics.value("eventsink_worker_events_processed_total")


def cleanup(settings: SinkSettings) -> None:
    """Delete the benchmark's queues and exchanges."""
    connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    channel = connection.channel()
    live = queue_name(settings.exchange, WORKER)
    for queue in (live, f"{live}.dead"):
        channel.queue_delete(queue)
    for exchange in (settings.exchange, f"{settings.exchange}.dead"):
        channel.exchange_delete(exchange)
    connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch", type=int, default=500, help="batch size (runtime default: 500)")
    args = parser.parse_args()
    tune_gc()  # the garbage collector settings of a worker process (run_worker), for both consumers
    settings = SinkSettings(amqp_url=AMQP, exchange=f"bench_runtime_{uuid.uuid4().hex[:8]}")
    prefetch = 2 * args.batch
    payloads = bodies(args.events)
    connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    declare_exchange(connection.channel(), settings)
    declare_worker(connection.channel(), settings, WORKER)
    connection.close()
    baseline_s, runtime_s, prefill_s = [], [], []
    baseline_cpu, runtime_cpu = [], []
    try:
        for round_ in range(args.rounds):
            # alternate which goes first, so a drift in the shared machine's load hits both alike
            for which in ("baseline", "runtime") if round_ % 2 == 0 else ("runtime", "baseline"):
                prefill_s.append(prefill(settings, payloads))
                cpu = time.process_time()
                if which == "baseline":
                    baseline_s.append(drain_baseline(settings, args.events, prefetch, args.batch))
                    baseline_cpu.append(time.process_time() - cpu)
                    continue
                elapsed, written = drain_runtime(settings, args.events, args.batch)
                runtime_cpu.append(time.process_time() - cpu)
                if written < args.events:
                    raise RuntimeError(f"runtime stopped after {written} of {args.events} events")
                runtime_s.append(elapsed)
    finally:
        try:
            cleanup(settings)
        except pika.exceptions.AMQPError as exc:
            print(f"could not delete the queues of exchange {settings.exchange}: {exc!r}", file=sys.stderr)
    base_rate, run_rate = args.events / min(baseline_s), args.events / min(runtime_s)
    result = {
        "events": args.events, "event_bytes": len(payloads[0]), "batch_size": args.batch, "prefetch": prefetch,
        "rounds": args.rounds, "baseline_s": [round(s, 2) for s in baseline_s],
        "runtime_s": [round(s, 2) for s in runtime_s], "baseline_events_per_s": round(base_rate),
        "runtime_events_per_s": round(run_rate), "ratio": round(run_rate / base_rate, 3),
        "prefill_events_per_s": round(args.events / min(prefill_s)),
        "baseline_cpu_us_per_event": round(min(baseline_cpu) / args.events * 1e6, 1),
        "runtime_cpu_us_per_event": round(min(runtime_cpu) / args.events * 1e6, 1),
        "cpu_ratio": round(min(baseline_cpu) / min(runtime_cpu), 3),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    print(f"{'consumer':<28}{'events/s':>12}{'best s':>10}{'CPU us/event':>14}")
    print(f"{'pika, ack only (baseline)':<28}{base_rate:>12,.0f}{min(baseline_s):>10.2f}"
          f"{result['baseline_cpu_us_per_event']:>14}")
    print(f"{'runtime + discard plugin':<28}{run_rate:>12,.0f}{min(runtime_s):>10.2f}"
          f"{result['runtime_cpu_us_per_event']:>14}")
    print(f"ratio runtime/baseline: {result['ratio']:.3f} wall, {result['cpu_ratio']:.3f} CPU   (events of "
          f"{len(payloads[0])} bytes, prefill {result['prefill_events_per_s']:,}/s, "
          f"load {result['load_average_1m']})")
    print(f"written to {write_result('workers_runtime', result)}")


if __name__ == "__main__":
    main()
