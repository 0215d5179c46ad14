"""Cost of the prometheus worker's durable state: batches applied per second against in-memory metrics.

The worker applies each batch of 500 events in one fsync'd SQLite transaction (new ids recorded, series
updated) before write() returns. The baseline is what a stateless exporter would do with the same
events: the same mapping into prometheus_client Counter/Gauge objects in memory, no dedupe, nothing
persisted (and totals lost on restart). Runs alternate and the median of each is reported.

Also: the same batches redelivered (every id already applied), the on-disk size per remembered id, and
the time to restart (load the state and serve the first scrape).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from prometheus_client import CollectorRegistry, Counter, Gauge

from bench.common import median, write_result
from sink_lib.event import Event, build_envelope
from workers.prometheus import PrometheusSettings, PrometheusWorker
from workers.prometheus.mapping import METRICS, updates

BATCH = 500


def stream(n: int) -> list[Event]:
    """Uploads, deletes, page views and HTTP checks, as the runtime hands them to write()."""
    out = []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            env = build_envelope("storage.file.uploaded", {"file_id": f"f{i}", "bytes": i}, source="/app")
        elif kind == 1:
            env = build_envelope("storage.file.deleted", {"file_id": f"f{i}", "bytes": i}, source="/app")
        elif kind == 2:
            env = build_envelope("traffic.page.viewed", {"url": "/"}, source=f"/app{i % 3}")
        else:
            data = {"url": f"https://t{i % 5}/", "ok": True, "dns_ms": 1, "connect_ms": 2, "tls_ms": 3,
                    "ttfb_ms": 4, "total_ms": 10, "bytes": 100}
            env = build_envelope("health.http", data, source="/monitor", region="eu")
        out.append(Event.parse(env))
    return out


def baseline(events: list[Event]) -> float:
    """Seconds to apply the events to in-memory prometheus_client metrics."""
    registry = CollectorRegistry()
    metrics: dict[tuple[str, tuple[str, ...]], Counter | Gauge] = {}
    start = time.perf_counter()
    for first in range(0, len(events), BATCH):
        for event in events[first : first + BATCH]:
            for update in updates(event):
                names = tuple(name for name, _ in update.labels)
                key = (update.metric, names)
                metric = metrics.get(key)
                if metric is None:
                    spec = METRICS[update.metric]
                    cls = Counter if spec.kind == "counter" else Gauge
                    metric = metrics[key] = cls(spec.name + "_" + str(len(metrics)), spec.help, names,
                                                registry=registry)
                child = metric.labels(*(value for _, value in update.labels)) if names else metric
                if METRICS[update.metric].mode == "set" and isinstance(child, Gauge):
                    child.set(update.value)
                else:
                    child.inc(update.value) if update.value >= 0 else child.dec(-update.value)  # type: ignore[union-attr]
    return time.perf_counter() - start


def worker_run(events: list[Event], folder: Path) -> tuple[float, float, int, float]:
    """Seconds to write the events, seconds to write them again, state bytes, restart seconds."""
    settings = PrometheusSettings(port=0, address="127.0.0.1", state_file=folder / "state.sqlite3")
    worker = PrometheusWorker(settings)
    worker.open()
    start = time.perf_counter()
    for first in range(0, len(events), BATCH):
        worker.write(events[first : first + BATCH])
    fresh = time.perf_counter() - start
    start = time.perf_counter()
    for first in range(0, len(events), BATCH):
        worker.write(events[first : first + BATCH])
    again = time.perf_counter() - start
    worker.close()
    size = sum(p.stat().st_size for p in folder.iterdir() if p.name.startswith("state.sqlite3"))
    start = time.perf_counter()
    restarted = PrometheusWorker(settings)
    restarted.open()
    requests.get(f"http://127.0.0.1:{restarted.port}/metrics", timeout=10).raise_for_status()
    restart = time.perf_counter() - start
    restarted.close()
    return fresh, again, size, restart


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    events = stream(args.events)
    base: list[float] = []
    fresh: list[float] = []
    again: list[float] = []
    sizes: list[float] = []
    restarts: list[float] = []
    for _ in range(args.runs):
        base.append(baseline(events))
        with tempfile.TemporaryDirectory() as tmp:
            f, a, s, r = worker_run(events, Path(tmp))
        fresh.append(f)
        again.append(a)
        sizes.append(s)
        restarts.append(r)
    n = args.events
    result = {
        "events": n,
        "batch": BATCH,
        "baseline_events_per_s": round(n / median(base)),
        "worker_events_per_s": round(n / median(fresh)),
        "redelivered_events_per_s": round(n / median(again)),
        "ratio_worker_vs_baseline": round(median(base) / median(fresh), 3),
        "state_bytes_per_event_id": round(median(sizes) / n, 1),
        "restart_s": round(median(restarts), 3),
    }
    print(f"prometheus worker, {n} events in batches of {BATCH}, median of {args.runs} runs")
    print(f"  in-memory prometheus_client (baseline) {result['baseline_events_per_s']:>10,} events/s")
    print(f"  worker, durable state                  {result['worker_events_per_s']:>10,} events/s")
    print(f"  worker, batches redelivered            {result['redelivered_events_per_s']:>10,} events/s")
    print(f"  ratio worker / baseline                {result['ratio_worker_vs_baseline']:>10}")
    print(f"  state on disk per remembered id        {result['state_bytes_per_event_id']:>10} bytes")
    print(f"  restart to first scrape                {result['restart_s']:>10} s")
    print(f"  -> {write_result('workers_prometheus', result)}")


if __name__ == "__main__":
    main()
