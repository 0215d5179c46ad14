"""Throughput of EventSink.emit + flush against a hand-written pika SelectConnection publisher.

Both publish persistent ~1 KB CloudEvents with publisher confirms to a fanout exchange bound to four
durable (quorum) queues. The baseline keeps a window of 1000 outstanding confirms and builds each
message the way a hand-written publisher must (envelope dict, uuid4, timestamp, json.dumps); a second
baseline publishes pre-serialised bodies, the cheapest possible publisher. Runs alternate and the
median of each is reported, so load from the shared machine hits both alike.

Also: emit() latency in the caller (p50/p99) at a steady 5,000 events/s and at full speed, and peak
RSS of a process holding 100k events while the broker is unreachable.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections import deque
from datetime import UTC, datetime
from pathlib import Path

import pika
from pika.adapters.select_connection import SelectConnection

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import median, payload_1kb, percentile, write_result
from sink_lib import EventSink, SinkSettings
from sink_lib.topology import declare, queue_name

URL = "amqp://guest:guest@localhost:5672/%2F"
EXCHANGE = "bench_publish"
WORKERS = ["w1", "w2", "w3", "w4"]


def cpu_s() -> float:
    """CPU seconds (user + system) of this process, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def baseline(n: int, window: int, prebuilt: bool) -> float:
    """Hand-written SelectConnection publisher with ``window`` outstanding confirms; returns seconds."""
    bodies = deque()
    if prebuilt:
        body = json.dumps(_envelope(0)).encode()
        bodies.extend([body] * n)
    state = {"sent": 0, "acked": 0, "t0": 0.0, "t1": 0.0}
    outstanding: set[int] = set()

    def envelope_body(i: int) -> bytes:
        return bodies.popleft() if prebuilt else json.dumps(_envelope(i), separators=(",", ":")).encode()

    def pump(channel) -> None:
        while state["sent"] < n and len(outstanding) < window:
            i = state["sent"]
            body = envelope_body(i)
            props = pika.BasicProperties(content_type="application/cloudevents+json", delivery_mode=2,
                                         message_id=str(i), type="storage.file.uploaded",
                                         timestamp=int(time.time()))
            channel.basic_publish(EXCHANGE, "", body, props)
            state["sent"] += 1
            outstanding.add(state["sent"])

    def on_confirm(frame) -> None:
        tag = frame.method.delivery_tag
        if frame.method.multiple:
            done = [t for t in outstanding if t <= tag]
            outstanding.difference_update(done)
            state["acked"] += len(done)
        elif tag in outstanding:
            outstanding.discard(tag)
            state["acked"] += 1
        if state["acked"] >= n:
            state["t1"] = time.perf_counter()
            conn.close()
            return
        pump(chan["c"])

    chan: dict = {}

    def on_channel(channel) -> None:
        chan["c"] = channel
        channel.confirm_delivery(on_confirm, callback=lambda _f: start(channel))

    def start(channel) -> None:
        state["t0"] = time.perf_counter()
        pump(channel)

    conn = SelectConnection(pika.URLParameters(URL), on_open_callback=lambda c: c.channel(on_open_callback=on_channel),
                            on_close_callback=lambda c, r: c.ioloop.stop())
    conn.ioloop.start()
    return state["t1"] - state["t0"]


def _envelope(i: int) -> dict:
    return {"specversion": "1.0", "id": str(uuid.uuid4()), "source": "/bench", "type": "storage.file.uploaded",
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "datacontenttype": "application/json",
            "data": payload_1kb(i)}


def library(n: int, spool_dir: str) -> tuple[float, list[float]]:
    """EventSink emit x n then flush; returns seconds and per-emit latencies (us)."""
    settings = SinkSettings(amqp_url=URL, exchange=EXCHANGE, spool_dir=spool_dir, source="/bench")
    sink = EventSink(settings=settings)
    sink.enqueue("storage.file.uploaded", payload_1kb(0))  # connect first, like the baseline
    assert sink.flush(30)
    lat = []
    clock = time.perf_counter_ns
    t0 = time.perf_counter()
    for i in range(n):
        a = clock()
        sink.enqueue("storage.file.uploaded", payload_1kb(i))
        lat.append((clock() - a) / 1000)
    assert sink.flush(300), "flush timed out"
    elapsed = time.perf_counter() - t0
    stats = sink.stats()
    sink.close()
    assert stats["confirmed"] == n + 1, stats
    return elapsed, lat


def paced_latency(rate: int, seconds: float, spool_dir: str, prepare_only: bool = False) -> list[float]:
    """emit() latency (us) at a steady ``rate`` per second, the caller sleeping between events.

    With ``prepare_only``, only validation and serialisation (emit without the enqueue, so with no
    publisher thread involved): the floor this machine sets for a call made after a sleep.
    """
    settings = SinkSettings(amqp_url=URL, exchange=EXCHANGE, spool_dir=spool_dir, source="/bench")
    lat = []
    with EventSink(settings=settings) as sink:
        sink.enqueue("storage.file.uploaded", payload_1kb(0))
        sink.flush(30)
        clock = time.perf_counter_ns
        start = time.perf_counter()
        for i in range(int(rate * seconds)):
            # sleep (not spin) until the next slot, as an application doing other work would
            pause = start + i / rate - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            a = clock()
            if prepare_only:
                sink.prepare("storage.file.uploaded", payload_1kb(i))
            else:
                sink.enqueue("storage.file.uploaded", payload_1kb(i))
            lat.append((clock() - a) / 1000)
        sink.flush(60)
    return lat


def purge() -> None:
    conn = pika.BlockingConnection(pika.URLParameters(URL))
    ch = conn.channel()
    for w in WORKERS:
        ch.queue_purge(queue_name(EXCHANGE, w))
    conn.close()


def rss_offline(n: int) -> dict:
    """Peak RSS of a process that emits n 1 KB events while RabbitMQ is unreachable (closed port)."""
    code = f"""
import resource, sys, tempfile, time
sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})
from bench.common import payload_1kb
from sink_lib import EventSink, SinkSettings
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
s = EventSink(settings=SinkSettings(amqp_url="amqp://guest:guest@127.0.0.1:1/%2F", exchange="x",
              spool_dir=tempfile.mkdtemp(), max_queue=200000, reconnect_min_s=60, reconnect_max_s=60))
t = time.perf_counter()
for i in range({n}):
    s.enqueue("storage.file.uploaded", payload_1kb(i))
emit_s = time.perf_counter() - t
ok = s.flush(120)
flush_s = time.perf_counter() - t
st = s.stats()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(before, peak, emit_s, flush_s, ok, st["spooled"], st["spool_pending"])
s.close(1)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    before, peak, emit_s, flush_s, ok, spooled, _pending = out.stdout.split()
    return {"events": n, "rss_before_mb": int(before) / 1024, "peak_rss_mb": int(peak) / 1024,
            "emit_s": float(emit_s), "emit_plus_spool_s": float(flush_s), "all_spooled": ok == "True",
            "spooled": int(spooled)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=50_000, help="events per run")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    spool_dir = tempfile.mkdtemp()
    declare(SinkSettings(amqp_url=URL, exchange=EXCHANGE), WORKERS)
    base, pre, lib = [], [], []
    cpu_base, cpu_pre, cpu_lib = [], [], []
    lat_full: list[float] = []
    for _ in range(args.rounds):
        purge()
        c = cpu_s()
        base.append(args.n / baseline(args.n, 1000, prebuilt=False))
        cpu_base.append((cpu_s() - c) / args.n * 1e6)
        purge()
        c = cpu_s()
        pre.append(args.n / baseline(args.n, 1000, prebuilt=True))
        cpu_pre.append((cpu_s() - c) / args.n * 1e6)
        purge()
        c = cpu_s()
        seconds, lat = library(args.n, spool_dir)
        cpu_lib.append((cpu_s() - c) / args.n * 1e6)
        lib.append(args.n / seconds)
        lat_full.extend(lat)
    purge()
    lat_paced = paced_latency(5000, 5.0, spool_dir)
    purge()
    lat_floor = paced_latency(5000, 5.0, spool_dir, prepare_only=True)
    rss = rss_offline(100_000)
    result = {
        "events_per_run": args.n, "rounds": args.rounds, "queues": len(WORKERS), "event_bytes": 1000,
        "baseline_eps": median(base), "baseline_prebuilt_eps": median(pre), "library_eps": median(lib),
        "ratio_vs_baseline": median(lib) / median(base),
        "ratio_vs_prebuilt_baseline": median(lib) / median(pre),
        "cpu_us_per_event": {"baseline": median(cpu_base), "baseline_prebuilt": median(cpu_pre),
                             "library": median(cpu_lib)},
        "cpu_ratio_vs_baseline": median(cpu_base) / median(cpu_lib),
        "emit_us_full_speed": {"p50": percentile(lat_full, 50), "p99": percentile(lat_full, 99)},
        "emit_us_at_5000_per_s": {"p50": percentile(lat_paced, 50), "p99": percentile(lat_paced, 99)},
        "prepare_only_us_at_5000_per_s": {"p50": percentile(lat_floor, 50), "p99": percentile(lat_floor, 99)},
        "offline_100k": rss,
        "runs": {"baseline": base, "baseline_prebuilt": pre, "library": lib},
    }
    path = write_result("sink_publish", result)
    print(f"publish 1 KB events, confirmed, fanout to {len(WORKERS)} quorum queues (median of {args.rounds})")
    print(f"  hand-written pika publisher (window 1000): {median(base):9.0f} events/s")
    print(f"  same, pre-serialised bodies:               {median(pre):9.0f} events/s")
    print(f"  EventSink emit + flush:                    {median(lib):9.0f} events/s")
    print(f"  ratio vs baseline: {result['ratio_vs_baseline']:.2f}  (vs pre-serialised: "
          f"{result['ratio_vs_prebuilt_baseline']:.2f})")
    cpu = result["cpu_us_per_event"]
    print(f"  CPU per event (all threads): baseline {cpu['baseline']:.1f} us, pre-serialised "
          f"{cpu['baseline_prebuilt']:.1f} us, EventSink {cpu['library']:.1f} us "
          f"(baseline/EventSink = {result['cpu_ratio_vs_baseline']:.2f})")
    print(f"  emit() latency full speed: p50 {result['emit_us_full_speed']['p50']:.1f} us, "
          f"p99 {result['emit_us_full_speed']['p99']:.1f} us")
    print(f"  emit() latency at 5,000/s: p50 {result['emit_us_at_5000_per_s']['p50']:.1f} us, "
          f"p99 {result['emit_us_at_5000_per_s']['p99']:.1f} us  (floor, validation + serialisation alone: "
          f"p50 {result['prepare_only_us_at_5000_per_s']['p50']:.1f} us, "
          f"p99 {result['prepare_only_us_at_5000_per_s']['p99']:.1f} us)")
    print(f"  100k events, broker down: peak RSS {rss['peak_rss_mb']:.0f} MB, all spooled: {rss['all_spooled']} "
          f"in {rss['emit_plus_spool_s']:.1f} s")
    print(f"  -> {path}")


if __name__ == "__main__":
    main()
