"""Drain rate of the influxdb worker for ``metric.*`` events (line protocol received by the API),
against the baseline of bench/workers_influxdb.py in the same run.

Three drains of ``--events`` events each into the real InfluxDB, each into a fresh database, in the
order baseline, worker on metric events, worker on the built-in mix:

- ``baseline``: the hand-written pika -> line protocol consumer of bench/workers_influxdb.py on its mix
  of built-in events (pings, HTTP checks, API calls, uploads);
- ``metric``: ``eventsink worker run influxdb`` on ``metric.cpu`` events as ``POST /write`` publishes
  them for Telegraf's cpu input (2 tags, 10 float fields each; parsed once here, like the API does);
- ``mix``: the same worker on the baseline's mix (the figure bench/workers_influxdb.py reports).

Reported: points/s of each and the ratios metric/baseline and metric/mix. Every point is checked to
be stored.

    python bench/workers_influxdb_metric.py [--events 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import uuid
from pathlib import Path

import pika

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.api_write import telegraf_cpu_lines
from bench.common import write_result
from bench.workers_influxdb import (
    AMQP,
    cleanup,
    depth,
    influx_query,
    props,
    run_baseline,
    run_worker_drain,
    sample,
    start_worker,
    stop,
)
from sink_lib.event import build_envelope, encode
from sink_lib.lineprotocol import parse
from sink_lib.settings import SinkSettings
from sink_lib.topology import declare_exchange, declare_worker, queue_name


def metric_events(n: int) -> list[dict]:
    """``n`` metric.cpu envelopes, as the API publishes the lines of Telegraf's cpu input."""
    points, errors = parse(telegraf_cpu_lines(n))
    assert not errors and len(points) == n
    return [build_envelope("metric.cpu", point.to_data(), source="/api/telegraf/write") for _, _, point in points]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    n = args.events
    tag = uuid.uuid4().hex[:8]
    exchanges = {"mix": f"bench_metric_{tag}_mix", "metric": f"bench_metric_{tag}_metric"}
    dbs = {name: f"bench_metric_{tag}_{name}" for name in ("baseline", "metric", "mix")}
    admin = pika.BlockingConnection(pika.URLParameters(AMQP))
    channel = admin.channel()
    procs = []
    log = tempfile.NamedTemporaryFile(prefix="bench-metric-worker-", suffix=".log", delete=False)  # noqa: SIM115
    try:
        for name, exchange in exchanges.items():
            settings = SinkSettings(amqp_url=AMQP, exchange=exchange)
            declare_exchange(channel, settings)
            declare_worker(channel, settings, "influxdb")
            if name == "mix":
                declare_worker(channel, settings, "baseline")
        print(f"pre-filling {n} events of each kind ...", flush=True)
        for i in range(n):
            env = sample(i)
            channel.basic_publish(exchanges["mix"], "", encode(env, 1 << 20), props(env))
        for env in metric_events(n):
            channel.basic_publish(exchanges["metric"], "", encode(env, 1 << 20), props(env))
        queues = [queue_name(exchanges["mix"], w) for w in ("influxdb", "baseline")]
        queues.append(queue_name(exchanges["metric"], "influxdb"))
        while min(depth(channel, q) for q in queues) < n:
            pass
        seconds: dict[str, float] = {}
        print("baseline (hand-written consumer, built-in mix) ...", flush=True)
        seconds["baseline"] = run_baseline(queue_name(exchanges["mix"], "baseline"), dbs["baseline"], n)[0]
        rss: list[int] = []
        for name in ("metric", "mix"):
            print(f"worker on {name} events ...", flush=True)
            proc, port = start_worker(exchanges[name], dbs[name], log)
            procs.append(proc)
            seconds[name] = run_worker_drain(proc, port, n, rss)[0]
            stop(proc)
        stored_metric = sum(row[1] for row in influx_query(dbs["metric"], 'SELECT count("usage_idle") FROM cpu'))
        stored_mix = sum(row[1] for row in influx_query(dbs["mix"], 'SELECT count("id") FROM /.*/'))
        rates = {name: round(n / s) for name, s in seconds.items()}
        result = {
            "events": n, "seconds": {k: round(v, 2) for k, v in seconds.items()}, "points_per_s": rates,
            "metric_vs_baseline": round(rates["metric"] / rates["baseline"], 3),
            "metric_vs_mix": round(rates["metric"] / rates["mix"], 3),
            "stored": {"metric": stored_metric, "mix": stored_mix},
            "load_average_1m": round(os.getloadavg()[0], 2),
        }
        print(json.dumps(result, indent=2))
        if stored_metric != n:
            raise SystemExit(f"only {stored_metric} of {n} metric points stored")
        print(f"written to {write_result('workers_influxdb_metric', result)}")
    finally:
        for proc in procs:
            stop(proc)
        log.close()
        if admin.is_open:
            admin.close()
        cleanup(list(exchanges.values()), list(dbs.values()))


if __name__ == "__main__":
    main()
