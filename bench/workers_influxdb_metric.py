"""Drain rate of the influxdb worker for ``metric.*`` events (line protocol received by the API),
against the baseline of bench/workers_influxdb.py in the same run.

Three drains of ``--events`` events each into the real InfluxDB, each into a fresh database, in two
rounds (orders baseline, metric, mix and mix, metric, baseline):

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
    # two rounds, in the orders baseline, metric, mix and mix, metric, baseline, so that a change of
    # load on the shared machine during the run hits every side alike
    rounds = {"a": ("baseline", "metric", "mix"), "b": ("mix", "metric", "baseline")}
    exchanges = {(kind, r): f"bench_metric_{tag}_{kind}_{r}" for kind in ("mix", "metric") for r in rounds}
    dbs = {(name, r): f"bench_metric_{tag}_{name}_{r}" for name in ("baseline", "metric", "mix") for r in rounds}
    admin = pika.BlockingConnection(pika.URLParameters(AMQP))
    channel = admin.channel()
    procs = []
    log = tempfile.NamedTemporaryFile(prefix="bench-metric-worker-", suffix=".log", delete=False)  # noqa: SIM115
    try:
        for (kind, _r), exchange in exchanges.items():
            settings = SinkSettings(amqp_url=AMQP, exchange=exchange)
            declare_exchange(channel, settings)
            declare_worker(channel, settings, "influxdb")
            if kind == "mix":
                declare_worker(channel, settings, "baseline")
        print(f"pre-filling {n} events of each kind for each round ...", flush=True)
        bodies = {"mix": [sample(i) for i in range(n)], "metric": metric_events(n)}
        for (kind, _r), exchange in exchanges.items():
            for env in bodies[kind]:
                channel.basic_publish(exchange, "", encode(env, 1 << 20), props(env))
        queues = [queue_name(x, "influxdb") for x in exchanges.values()]
        queues += [queue_name(exchanges[("mix", r)], "baseline") for r in rounds]
        while min(depth(channel, q) for q in queues) < n:
            pass
        seconds: dict[str, list[float]] = {"baseline": [], "metric": [], "mix": []}
        rss: list[int] = []
        for r, order in rounds.items():
            for name in order:
                print(f"round {r}: {name} ...", flush=True)
                if name == "baseline":
                    seconds[name].append(run_baseline(queue_name(exchanges[("mix", r)], "baseline"),
                                                      dbs[(name, r)], n)[0])
                    continue
                proc, port = start_worker(exchanges[(name, r)], dbs[(name, r)], log)
                procs.append(proc)
                seconds[name].append(run_worker_drain(proc, port, n, rss)[0])
                stop(proc)
        stored_metric = [sum(row[1] for row in influx_query(dbs[("metric", r)], 'SELECT count("usage_idle") FROM cpu'))
                         for r in rounds]
        rates = {name: round(len(rounds) * n / sum(s)) for name, s in seconds.items()}
        result = {
            "events": n, "seconds": {k: [round(x, 2) for x in v] for k, v in seconds.items()}, "points_per_s": rates,
            "metric_vs_baseline": round(rates["metric"] / rates["baseline"], 3),
            "metric_vs_mix": round(rates["metric"] / rates["mix"], 3),
            "stored_metric": stored_metric,
            "load_average_1m": round(os.getloadavg()[0], 2),
        }
        print(json.dumps(result, indent=2))
        if stored_metric != [n] * len(rounds):
            raise SystemExit(f"metric points stored {stored_metric}, expected {n} per round")
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
