"""Ingest rate of the emergency API under gunicorn, against a bare Flask endpoint in the same run.

All servers run with the same gunicorn settings (``emergency_api.serving.ApiServer``: workers,
threads, keep-alive) and rate limiting off. The baseline endpoints are a bare Flask app answering
202/204 without reading the body: under ``gthread`` with a listening socket per worker
(``baseline``) and with one shared socket (``baseline_shared``), and under the API's ``eventsink``
worker class (``baseline_loop``, through its WSGI pool); ratios use whichever was fastest. The API
runs under ``--worker-class`` (default ``eventsink``, the API's default), and under ``gthread`` too
(``api_gthread``, the earlier default) for a before/after in the same run. It authenticates the key,
validates every event against the registry and answers once each is confirmed by the real RabbitMQ
(``api``) or, with ``EVENTSINK_API_ACCEPT_ON=spool``, once each is fsync'd in the local spool
(``api_spool``). After each ``api_spool`` run the benchmark waits until that server has delivered its
spool to the broker; the wait is reported (``drain_s``) and counted in a delivered rate, since a 202
from the spool only says the events are safe on this host.

The exchange has one destination's queue bound, declared by the project's topology as a worker's is
(``--queue-type``, default quorum, the topology's default) and drained by two consumer processes that
ack in batches, as a worker would. Load comes from ``wrk`` (apt package ``wrk``: one C thread) with
keep-alive connections posting a fixed body. Scenarios: single-event POSTs, 100-event batches, and
100-line ``POST /api/v1/write``. A fourth contender is a bare confirm-mode pika publisher (no HTTP, no
validation) fed the same event bodies, on one connection per API worker, with as many messages
unconfirmed as the HTTP clients can have waiting (connections x events per request, capped at the
API's own confirm windows): on this machine the broker shares the two cores, so this is what the
broker gives at that concurrency. Contenders alternate round by round, so a neighbour's load hits all
alike; each figure is the median of ``--rounds`` with the spread (min-max) beside it, plus the CPU
time per request from /proc of the server, of the broker and of the whole machine. With the two cores
as the limit, the bare endpoint's machine CPU per request against that plus the broker's CPU for the
API's events bounds the ratio any API costing no more than the bare gthread endpoint could reach here.
A shorter pass runs the API under other worker classes for the single-event case (``sync``, and
``gevent`` when it is installed).

    python bench/api_ingest.py [--duration 5] [--rounds 5] [--connections 32]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pika

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import median, write_result
from bench.http_load import (
    LUA,
    bare_publishers,
    free_port,
    run_wrk,
    start,
    start_drain,
    stop,
    stop_drain,
    wait_for_empty_spool,
)

AMQP = os.environ.get("EVENTSINK_TEST_AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")
CONFIRM_WINDOW = 1000  # the sink's default EVENTSINK_CONFIRM_WINDOW, per worker process
#: contenders whose worker class is fixed; the others run under --worker-class
FIXED_CLASS = {"baseline": "gthread", "baseline_shared": "gthread", "baseline_loop": "eventsink",
               "api_gthread": "gthread"}

BASELINE_SERVER = """
import sys
from flask import Flask
from emergency_api.serving import ApiServer

def factory():
    app = Flask("baseline")
    app.add_url_rule("/api/v1/events", "events", lambda: ("", 202), methods=["POST"])
    app.add_url_rule("/api/v1/write", "write", lambda: ("", 204), methods=["POST"])
    return app

bind, worker_class, workers, threads, reuse_port = sys.argv[1:6]
ApiServer(factory, {"bind": bind, "worker_class": worker_class, "workers": int(workers),
                    "threads": int(threads), "reuse_port": reuse_port == "1"}, {}).run()
"""


def event(i: int) -> dict[str, Any]:
    return {"type": "health.http", "region": "us-east", "data": {
        "url": "https://clowder.example/", "ok": True, "status": 200, "dns_ms": 1.5, "connect_ms": 3.25,
        "tls_ms": 12.0, "ttfb_ms": 40.5, "total_ms": 61.0 + i % 7, "bytes": 5120}}


def lines(count: int) -> str:
    return "".join(f"cpu,host=web{i % 5},region=us-east usage_user={i % 97}.5,usage_system=3.25,"
                   f"procs={i}i 17000000000000{i:05d}\n" for i in range(count))


def declare_sink_queue(exchange: str, queue_type: str = "quorum") -> str:
    """A destination's queue, declared by the project's topology as a worker's would be (quorum by
    default, with its dead-letter queue), bound to the exchange."""
    from sink_lib.settings import SinkSettings
    from sink_lib.topology import declare_exchange, declare_worker

    settings = SinkSettings(amqp_url=AMQP, exchange=exchange, queue_type=queue_type)  # type: ignore[arg-type]
    conn = pika.BlockingConnection(pika.URLParameters(AMQP))
    ch = conn.channel()
    declare_exchange(ch, settings)
    queue = declare_worker(ch, settings, "bench")
    conn.close()
    return queue


def cleanup_broker(exchange: str, queue: str) -> None:
    from sink_lib.topology import dead_exchange_name

    conn = pika.BlockingConnection(pika.URLParameters(AMQP))
    ch = conn.channel()
    for name in (queue, queue + ".dead"):
        ch.queue_delete(name)
    ch.exchange_delete(exchange)
    ch.exchange_delete(dead_exchange_name(exchange))
    conn.close()


def summarise(runs: list[dict[str, float]]) -> dict[str, Any]:
    """Medians of a contender's rounds, with the events/s spread."""
    out: dict[str, Any] = {k: median([r[k] for r in runs]) for k in runs[0]}
    rates = [r["events_per_s"] for r in runs]
    out["events_per_s_min"], out["events_per_s_max"], out["rounds"] = min(rates), max(rates), len(runs)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=5, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds; medians are reported")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--scenarios", default="single,batch100,write100", help="comma-separated subset")
    parser.add_argument("--worker-class", default="eventsink", help="the API's worker class (default: the API's)")
    parser.add_argument("--worker-classes", default="sync,gevent",
                        help="the API under these worker classes too, on single events")
    parser.add_argument("--queue-type", choices=("quorum", "classic"), default="quorum",
                        help="type of the destination queue bound to the exchange (the topology's default: quorum)")
    parser.add_argument("--before", metavar="TREE", help="also run the API from this source tree (api_before), "
                        "e.g. an unpacked older commit, for before/after figures in the same run")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install -y wrk")

    from emergency_api.keys import create_key
    from sink_lib.event import build_envelope, encode

    work = Path(tempfile.mkdtemp(prefix="bench-api-"))
    exchange = f"bench_api_{uuid.uuid4().hex[:8]}"
    queue = declare_sink_queue(exchange, args.queue_type)
    drains = start_drain(AMQP, queue)
    key = create_key(work / "keys.json", "bench", ["*"])[1]
    script = work / "post.lua"
    script.write_text(LUA)
    bodies = {"single": work / "single.json", "batch100": work / "batch.json", "write100": work / "lines.txt"}
    bodies["single"].write_text(json.dumps(event(0)))
    bodies["batch100"].write_text(json.dumps([event(i) for i in range(100)]))
    bodies["write100"].write_text(lines(100))
    health_body = encode(build_envelope("health.http", event(0)["data"], source="/api/bench"), 1 << 20)
    metric_body = encode(build_envelope("metric.cpu", {"measurement": "cpu", "tags": {"host": "web1"}, "fields": {
        "usage_user": 1.5, "usage_system": 3.25, "procs": 1}, "timestamp_ns": 1700000000000000000},
        source="/api/bench/write"), 1 << 20)
    scenarios = {  # name -> (path, events per request, content type, bare publisher body)
        "single": ("/api/v1/events", 1, "application/json", health_body),
        "batch100": ("/api/v1/events", 100, "application/json", health_body),
        "write100": ("/api/v1/write", 100, "text/plain", metric_body),
    }
    chosen = [s for s in args.scenarios.split(",") if s]
    env = {**os.environ, "EVENTSINK_API_KEYS_FILE": str(work / "keys.json"), "EVENTSINK_EXCHANGE": exchange,
           "EVENTSINK_AMQP_URL": AMQP, "EVENTSINK_SPOOL_DIR": str(work / "spool"),
           "EVENTSINK_API_RATE_LIMIT_ENABLED": "false", "EVENTSINK_API_SWAGGER": "false"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    runs: dict[str, list[dict[str, float]]] = {}

    def launch(name: str, worker_class: str, kind: str) -> tuple[Any, str]:
        bind = f"127.0.0.1:{free_port()}"
        worker_class = FIXED_CLASS.get(kind, worker_class)
        if kind.startswith("baseline"):
            cmd = [sys.executable, "-c", BASELINE_SERVER, bind, worker_class, str(args.workers), str(args.threads),
                   "0" if kind == "baseline_shared" else "1"]
        else:
            cmd = [sys.executable, "-m", "sink_lib.cli", "api", "--bind", bind, "--worker-class", worker_class,
                   "--workers", str(args.workers), "--threads", str(args.threads)]
        server_env = {**env, "EVENTSINK_SPOOL_DIR": str(work / f"spool-{name}")}
        if kind == "api_spool":
            server_env["EVENTSINK_API_ACCEPT_ON"] = "spool"
        cwd = None
        if kind == "api_before":
            cwd = server_env["PYTHONPATH"] = str(Path(args.before).resolve())
        proc = start(cmd, server_env, f"http://{bind}/healthz", work / f"{name}.log", cwd=cwd)
        return proc, f"http://{bind}"

    def measure(worker_class: str, kinds: list[str], names: list[str], rounds: int, duration: int,
                publisher: bool, prefix: str = "") -> None:
        """Start the servers, then alternate every contender round by round."""
        procs: list[Any] = []
        try:
            urls = {}
            for kind in kinds:
                proc, url = launch(prefix + kind, worker_class, kind)
                procs.append(proc)
                urls[kind] = (proc.pid, url)
            for label in names:
                path, per_request, content_type, pub_body = scenarios[label]
                window = min(args.connections * per_request, args.workers * CONFIRM_WINDOW)
                for pid, url in urls.values():  # warm-up
                    run_wrk(url + path, key, bodies[label], script, 2, args.connections, pid, content_type)
                for _ in range(rounds):
                    for kind, (pid, url) in urls.items():
                        stats = run_wrk(url + path, key, bodies[label], script, duration, args.connections, pid,
                                        content_type)
                        stats["events_per_s"] = stats["requests_per_s"] * per_request
                        if kind == "api_spool":
                            # its backlog is still going to the broker: wait it out, so the next contender
                            # has the broker to itself, and count the time in a delivered rate
                            drain = wait_for_empty_spool(work / f"spool-{prefix}{kind}")
                            stats["drain_s"] = drain
                            stats["delivered_per_s"] = stats["events_per_s"] * duration / (duration + drain)
                        runs.setdefault(f"{prefix}{kind}.{label}", []).append(stats)
                    if publisher:
                        runs.setdefault(f"publisher.{label}", []).append(
                            bare_publishers(AMQP, exchange, pub_body, duration, window, args.workers))
        finally:
            for proc in procs:
                stop(proc)

    try:
        kinds = ["baseline", "baseline_shared", "baseline_loop", "api", "api_gthread", "api_spool"]
        kinds += ["api_before"] if args.before else []
        measure(args.worker_class, kinds, chosen, args.rounds, args.duration, publisher=True)
        for worker_class in [w for w in args.worker_classes.split(",") if w]:
            if worker_class == "gevent":
                try:
                    import gevent  # noqa: F401
                except ImportError:
                    print("gevent is not installed: its worker class is left out")
                    continue
            try:
                measure(worker_class, ["api"], ["single"], max(1, args.rounds // 2), args.duration,
                        publisher=False, prefix=worker_class + "_")
            except (SystemExit, Exception) as exc:  # a worker class that cannot serve the API is reported
                print(f"worker class {worker_class} failed: {exc}")
    finally:
        stop_drain(drains)
        cleanup_broker(exchange, queue)
        shutil.rmtree(work, ignore_errors=True)

    results = {name: summarise(r) for name, r in runs.items()}
    summary: dict[str, Any] = {}
    for label in chosen:
        # the denominator is the best of the bare endpoint's set-ups (gthread with and without a socket per
        # worker, and the eventsink worker class)
        base = max((results[f"{b}.{label}"] for b in ("baseline", "baseline_shared", "baseline_loop")),
                   key=lambda r: r["events_per_s"])
        api, spool, pub = results[f"api.{label}"], results[f"api_spool.{label}"], results[f"publisher.{label}"]
        per_request = scenarios[label][1]
        # With the cores as the limit, the best ratio an API costing nothing beyond the bare endpoint could
        # reach: the bare request's whole-machine CPU against that plus the broker's CPU for its events.
        # The broker's CPU per event depends on how it is fed: as the API feeds it, and as the bare
        # publisher (same number in flight) does.
        broker_per_request = api["broker_cpu_ms_per_request"]
        bound = base["machine_cpu_ms_per_request"] / (base["machine_cpu_ms_per_request"] + broker_per_request)
        pub_broker = pub["broker_cpu_ms_per_request"] * per_request
        bound_pub = base["machine_cpu_ms_per_request"] / (base["machine_cpu_ms_per_request"] + pub_broker)
        summary[label] = {
            "api_vs_baseline": round(api["events_per_s"] / base["events_per_s"], 3),
            "api_vs_publisher": round(api["events_per_s"] / pub["events_per_s"], 3),
            "publisher_vs_baseline": round(pub["events_per_s"] / base["events_per_s"], 3),
            "api_spool_vs_baseline": round(spool["events_per_s"] / base["events_per_s"], 3),
            "api_gthread_vs_baseline": round(results[f"api_gthread.{label}"]["events_per_s"] / base["events_per_s"], 3),
            "api_vs_api_gthread": round(api["events_per_s"] / results[f"api_gthread.{label}"]["events_per_s"], 3),
            "zero_cost_api_bound": round(bound, 3),
            "zero_cost_api_bound_at_publisher_broker_cost": round(bound_pub, 3),
            "broker_cpu_ms_per_event": round(broker_per_request / per_request, 4),
            "api_events_per_s": round(api["events_per_s"]), "api_p99_ms": api["p99_ms"],
            "api_spool_events_per_s": round(spool["events_per_s"]),
            "api_spool_delivered_per_s": round(spool["delivered_per_s"]), "api_spool_drain_s": spool["drain_s"],
        }
        if f"api_before.{label}" in results:
            before = results[f"api_before.{label}"]
            summary[label]["api_before_vs_baseline"] = round(before["events_per_s"] / base["events_per_s"], 3)
            summary[label]["api_vs_api_before"] = round(api["events_per_s"] / before["events_per_s"], 3)
    print(f"{'contender.scenario':<26}{'events/s':>10}{'(min-max)':>18}{'req/s':>9}{'p50 ms':>8}{'p99 ms':>8}"
          f"{'cpu ms/req':>11}{'broker':>8}{'machine':>8}{'switches':>9}")
    for name, row in results.items():
        spread = f"({row['events_per_s_min']:.0f}-{row['events_per_s_max']:.0f})"
        print(f"{name:<26}{row['events_per_s']:>10.0f}{spread:>18}{row['requests_per_s']:>9.0f}"
              f"{row['p50_ms']:>8.2f}{row['p99_ms']:>8.2f}{row['cpu_ms_per_request']:>11.3f}"
              f"{row['broker_cpu_ms_per_request']:>8.3f}{row['machine_cpu_ms_per_request']:>8.3f}"
              f"{row['switches_per_request']:>9.1f}")
    for label, row in summary.items():
        print(f"{label}: api/baseline {row['api_vs_baseline']:.2f}, api/bare publisher {row['api_vs_publisher']:.2f}, "
              f"api under gthread/baseline {row['api_gthread_vs_baseline']:.2f}, "
              f"bare publisher/baseline {row['publisher_vs_baseline']:.2f}, "
              f"api_spool/baseline {row['api_spool_vs_baseline']:.2f} (delivered {row['api_spool_delivered_per_s']}/s, "
              f"drained in {row['api_spool_drain_s']:.1f} s), "
              f"bound for an API costing nothing {row['zero_cost_api_bound']:.2f} "
              f"(broker {row['broker_cpu_ms_per_event'] * 1000:.0f} us CPU/event; "
              f"{row['zero_cost_api_bound_at_publisher_broker_cost']:.2f} at the bare publisher's broker cost)"
              + (f", before: api_before/baseline {row['api_before_vs_baseline']:.2f}, "
                 f"api/api_before {row['api_vs_api_before']:.2f}" if "api_vs_api_before" in row else ""))
    for worker_class in [w for w in args.worker_classes.split(",") if w]:
        if f"{worker_class}_api.single" in results:
            ratio = results[f"{worker_class}_api.single"]["events_per_s"] / results["api.single"]["events_per_s"]
            summary[f"{worker_class}_vs_{args.worker_class}_api_single"] = round(ratio, 3)
            print(f"{worker_class} / {args.worker_class}, API single events: {ratio:.2f}")
    load = os.getloadavg()
    path = write_result("api_ingest", {"settings": {"workers": args.workers, "threads": args.threads,
                                                    "connections": args.connections, "duration_s": args.duration,
                                                    "rounds": args.rounds, "cpus": os.cpu_count(),
                                                    "loadavg_at_end": load},
                                       "results": results, "summary": summary})
    print(f"load average at the end: {load[0]:.1f}; wrote {path}")


if __name__ == "__main__":
    main()
