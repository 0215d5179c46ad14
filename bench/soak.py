"""Soak: steady load through the emergency API and sink_lib into the workers; memory must stay flat.

Starts the API under gunicorn, the influxdb and prometheus workers (subprocesses, their own exchange,
database and spool), posts batches to the API and emits through sink_lib at a steady rate, samples the
RSS of every process every 10 s, and reports first/last/peak RSS and the growth over the second half
(after warm-up). Usage: python bench/soak.py --minutes 10 [--rate 200]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import write_result  # noqa: E402
from sink_lib import EventSink, SinkSettings  # noqa: E402
from sink_lib.topology import declare  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tree_rss_mb(proc: psutil.Process) -> float:
    """RSS of a process and its children (gunicorn master + workers), in MB."""
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total / 2**20


def _cleanup(exchange: str) -> None:
    """Drop the soak's queues, exchanges and InfluxDB database."""
    import pika

    from sink_lib.topology import dead_exchange_name, dead_queue_name, queue_name

    conn = pika.BlockingConnection(pika.URLParameters("amqp://guest:guest@localhost:5672/%2F"))
    ch = conn.channel()
    for worker in ("influxdb", "prometheus"):
        ch.queue_delete(queue_name(exchange, worker))
        ch.queue_delete(dead_queue_name(exchange, worker))
    ch.exchange_delete(exchange)
    ch.exchange_delete(dead_exchange_name(exchange))
    conn.close()
    with contextlib.suppress(OSError):
        urllib.request.urlopen(urllib.request.Request(
            "http://127.0.0.1:8086/query", data=f"q=DROP DATABASE {exchange}".encode(), method="POST"), timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=200, help="events per second in all (half API, half sink_lib)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="eventsink-soak-"))
    exchange = f"soak_{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = {**os.environ, "EVENTSINK_EXCHANGE": exchange, "EVENTSINK_SPOOL_DIR": str(work / "spool"),
           "EVENTSINK_API_KEYS_FILE": str(work / "keys.json"), "EVENTSINK_INFLUXDB_DATABASE": exchange,
           "EVENTSINK_PROMETHEUS_PORT": str(free_port()), "EVENTSINK_PROMETHEUS_STATE_DIR": str(work / "prom"),
           "EVENTSINK_API_RATE_LIMIT": "1000000/minute"}
    settings = SinkSettings(exchange=exchange, spool_dir=work / "spool-producer")
    declare(settings, ["influxdb", "prometheus"])
    key = subprocess.run(["eventsink", "keys", "create", "--name", "soak", "--scope", "*"], env=env,
                         capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    procs = {
        "api": subprocess.Popen(["eventsink", "api", "--bind", f"127.0.0.1:{port}"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        "worker-influxdb": subprocess.Popen(["eventsink", "worker", "run", "influxdb", "--log-level", "warning"],
                                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        "worker-prometheus": subprocess.Popen(["eventsink", "worker", "run", "prometheus", "--log-level", "warning"],
                                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    }
    url = f"http://127.0.0.1:{port}/api/v1/events"
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    stop = threading.Event()
    counts = {"api_posted": 0, "api_errors": 0, "emitted": 0}

    def post_loop() -> None:
        per_batch = 20
        interval = per_batch / (args.rate / 2)
        while not stop.is_set():
            batch = [{"type": "health.http", "data": {"url": "https://x/", "ok": True, "status": 200, "dns_ms": 1,
                      "connect_ms": 1, "tls_ms": 1, "ttfb_ms": 5, "total_ms": 6, "bytes": 10}, "region": "soak"}
                     for _ in range(per_batch)]
            req = urllib.request.Request(url, data=json.dumps(batch).encode(), method="POST",
                                         headers={"Content-Type": "application/json", "X-API-Key": key})
            try:
                urllib.request.urlopen(req, timeout=10).read()
                counts["api_posted"] += per_batch
            except OSError:
                counts["api_errors"] += 1
            stop.wait(interval)

    def emit_loop() -> None:
        with EventSink(settings=settings) as sink:
            i = 0
            while not stop.is_set():
                sink.enqueue("storage.file.uploaded", {"file_id": f"f{i}", "bytes": 1000})
                counts["emitted"] += 1
                i += 1
                stop.wait(2 / args.rate)

    threads = [threading.Thread(target=post_loop), threading.Thread(target=emit_loop)]
    for t in threads:
        t.start()
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in procs}
    started = time.monotonic()
    try:
        while time.monotonic() - started < args.minutes * 60:
            now = time.monotonic() - started
            for name, proc in procs.items():
                samples[name].append((now, tree_rss_mb(psutil.Process(proc.pid))))
            time.sleep(10)
    finally:
        stop.set()
        for t in threads:
            t.join()
        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            proc.wait(30)
    _cleanup(exchange)
    report = {}
    for name, series in samples.items():
        half = [rss for t, rss in series if t >= args.minutes * 30]
        report[name] = {"first_mb": series[0][1], "last_mb": series[-1][1], "peak_mb": max(r for _, r in series),
                        "second_half_growth_mb": (half[-1] - half[0]) if len(half) > 1 else 0.0,
                        "samples": len(series)}
    result = {"minutes": args.minutes, "rate_per_s": args.rate, **counts, "rss": report}
    path = write_result("soak", result)
    print(f"soak {args.minutes} min at {args.rate} events/s: {counts}")
    for name, r in report.items():
        print(f"  {name:18s} RSS first {r['first_mb']:.0f} MB, last {r['last_mb']:.0f} MB, peak {r['peak_mb']:.0f} MB,"
              f" growth over the 2nd half {r['second_half_growth_mb']:+.1f} MB")
    print(f"  -> {path}")


if __name__ == "__main__":
    main()
