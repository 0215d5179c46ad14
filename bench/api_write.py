"""Line protocol ingest of the emergency API (``POST /write``) under gunicorn, against baselines in
the same run.

Three targets, same gunicorn settings, load from ``wrk`` with keep-alive connections posting a fixed
body (``--connections``, default 8):

- ``bare``: a Flask endpoint that reads the body and answers 204 (HTTP + gunicorn cost only);
- ``write``: the API's ``POST /write`` with 1,000-line bodies (Telegraf's default batch), each line a
  Telegraf ``cpu`` point of 10 float fields; every line parsed, turned into a ``metric.cpu`` event and
  confirmed by the real RabbitMQ before the 204;
- ``events``: the API's ``POST /api/v1/events`` with 100-event JSON batches (the JSON path's best case),
  in the same API process.

Reported: lines (events) per second, the ratio write/events in events per second, and the request
ratio write/bare. Runs alternate between the targets (best of ``--rounds``), so a neighbour's load
hits all alike.

    python bench/api_write.py [--duration 5] [--rounds 2]
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.api_ingest import AMQP, cleanup_broker, declare_sink_queue, event
from bench.common import write_result
from bench.http_load import free_port, run_wrk, start, start_drain, stop, stop_drain

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = os.getenv("BENCH_TYPE")
wrk.headers["Authorization"] = "Token " .. os.getenv("BENCH_KEY")
local f = io.open(os.getenv("BENCH_BODY"), "rb")
wrk.body = f:read("*a")
f:close()
"""

BARE_SERVER = """
import sys
from flask import Flask, request
from emergency_api.serving import ApiServer

def factory():
    app = Flask("bare")
    app.add_url_rule("/healthz", "healthz", lambda: "ok")
    def write():
        request.get_data()
        return "", 204
    app.add_url_rule("/write", "write", write, methods=["POST"])
    return app

bind, workers, threads = sys.argv[1:4]
ApiServer(factory, {"bind": bind, "worker_class": "gthread", "workers": int(workers),
                    "threads": int(threads)}, {}).run()
"""

LINES_PER_BODY = 1000
FIELDS = ("usage_user", "usage_system", "usage_idle", "usage_nice", "usage_iowait", "usage_irq", "usage_softirq",
          "usage_steal", "usage_guest", "usage_guest_nice")


def telegraf_cpu_lines(n: int) -> str:
    """``n`` lines as Telegraf's cpu input writes them (distinct timestamps)."""
    return "".join(
        f"cpu,cpu=cpu{i % 4},host=web-{i % 3} " + ",".join(f"{name}={(i * 7 + k) % 100 + 0.25}"
                                                           for k, name in enumerate(FIELDS))
        + f" {1700000000000000000 + i * 1000}\n"
        for i in range(n)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=5, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds; the best of each counts")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    from emergency_api.keys import create_key

    work = Path(tempfile.mkdtemp(prefix="bench-write-"))
    exchange = f"bench_write_{uuid.uuid4().hex[:8]}"
    queue = declare_sink_queue(exchange)
    drains = start_drain(AMQP, queue)
    key = create_key(work / "keys.json", "bench", ["*"])[1]
    script = work / "post.lua"
    script.write_text(LUA)
    lines, batch = work / "lines.txt", work / "batch.json"
    lines.write_text(telegraf_cpu_lines(LINES_PER_BODY))
    batch.write_text(json.dumps([event(i) for i in range(100)]))
    env = {**os.environ, "EVENTSINK_API_KEYS_FILE": str(work / "keys.json"), "EVENTSINK_EXCHANGE": exchange,
           "EVENTSINK_AMQP_URL": AMQP, "EVENTSINK_SPOOL_DIR": str(work / "spool"),
           "EVENTSINK_API_RATE_LIMIT": "100000000/minute"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    results: dict[str, Any] = {}
    procs = []
    try:
        bare_bind, api_bind = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
        procs.append(start([sys.executable, "-c", BARE_SERVER, bare_bind, str(args.workers), str(args.threads)],
                           env, f"http://{bare_bind}/healthz", work / "bare.log"))
        procs.append(start([sys.executable, "-m", "sink_lib.cli", "api", "--bind", api_bind, "--workers",
                            str(args.workers), "--threads", str(args.threads)],
                           env, f"http://{api_bind}/healthz", work / "api.log"))
        targets = [
            ("bare", f"http://{bare_bind}/write?db=x", lines, LINES_PER_BODY, "text/plain"),
            ("write", f"http://{api_bind}/write?db=x", lines, LINES_PER_BODY, "text/plain"),
            ("events", f"http://{api_bind}/api/v1/events", batch, 100, "application/json"),
        ]
        for _name, url, body, _, kind in targets:  # warm-up
            os.environ["BENCH_TYPE"] = kind
            run_wrk(url, key, body, script, 2, args.connections)
        for _ in range(args.rounds):
            for name, url, body, per_request, kind in targets:
                os.environ["BENCH_TYPE"] = kind
                stats = run_wrk(url, key, body, script, args.duration, args.connections)
                stats["lines_per_s"] = stats["requests_per_s"] * per_request
                if name not in results or stats["lines_per_s"] > results[name]["lines_per_s"]:
                    results[name] = stats
    finally:
        for proc in procs:
            stop(proc)
        stop_drain(drains)
        cleanup_broker(exchange, queue)
        shutil.rmtree(work, ignore_errors=True)

    summary = {
        "write_lines_per_s": round(results["write"]["lines_per_s"]),
        "write_vs_events_per_s": round(results["write"]["lines_per_s"] / results["events"]["lines_per_s"], 3),
        "write_vs_bare_requests": round(results["write"]["requests_per_s"] / results["bare"]["requests_per_s"], 3),
    }
    print(f"{'target':<10}{'lines/s':>12}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}")
    for name, row in results.items():
        print(f"{name:<10}{row['lines_per_s']:>12.0f}{row['requests_per_s']:>10.1f}"
              f"{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}")
    print(f"/write: {summary['write_lines_per_s']} lines/s (1000-line bodies); "
          f"vs /api/v1/events 100-event batches: {summary['write_vs_events_per_s']:.2f} (events/s); "
          f"vs a bare endpoint reading the same body: {summary['write_vs_bare_requests']:.3f} (requests/s)")
    path = write_result("api_write", {"settings": vars(args) | {"cpus": os.cpu_count()},
                                      "results": results, "summary": summary})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
