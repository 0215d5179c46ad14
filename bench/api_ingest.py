"""Ingest rate of the emergency API under gunicorn, against a bare Flask endpoint in the same run.

Both servers run with the same gunicorn settings (``emergency_api.serving.ApiServer``: worker class,
workers, threads, keep-alive). The baseline endpoint answers 202 without reading the body; the API
authenticates the key, applies the rate limit (set high enough never to trigger), validates every
event against the registry and waits until each is confirmed by the real RabbitMQ before answering.

Load comes from ``wrk`` (apt package ``wrk``: one C thread, so the generator takes little of the two
cores) with keep-alive connections posting a fixed body. Scenarios: single-event POSTs and 100-event
batches; accepted events/s, p50/p99 latency, ratio API/baseline. The broker's own ceiling (one
pipelined confirm-mode pika publisher, no HTTP) is measured first: no API can ingest faster. Both
servers run at once and the runs alternate between them (best of ``--rounds`` each), so a
neighbour's load hits both alike. A second, shorter pass runs the single-event case with gunicorn's
``sync`` worker class (one request at a time per process, no keep-alive), to compare.

    python bench/api_ingest.py [--duration 10] [--connections 32]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import pika
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import write_result

AMQP = os.environ.get("EVENTSINK_TEST_AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")
ROOT = Path(__file__).resolve().parent.parent

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = os.getenv("BENCH_KEY")
local f = io.open(os.getenv("BENCH_BODY"), "rb")
wrk.body = f:read("*a")
f:close()
"""

BASELINE_SERVER = """
import sys
from flask import Flask
from emergency_api.serving import ApiServer

def factory():
    app = Flask("baseline")
    app.add_url_rule("/api/v1/events", "events", lambda: ("", 202), methods=["POST"])
    return app

bind, worker_class, workers, threads = sys.argv[1:5]
ApiServer(factory, {"bind": bind, "worker_class": worker_class, "workers": int(workers),
                    "threads": int(threads)}, {}).run()
"""


def event(i: int) -> dict[str, Any]:
    return {"type": "health.http", "region": "us-east", "data": {
        "url": "https://clowder.example/", "ok": True, "status": 200, "dns_ms": 1.5, "connect_ms": 3.25,
        "tls_ms": 12.0, "ttfb_ms": 40.5, "total_ms": 61.0 + i % 7, "bytes": 5120}}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise SystemExit(f"server at {url} did not come up")


def start(cmd: list[str], env: dict[str, str], probe: str, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    wait_up(probe, proc)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not match:
        raise ValueError(text)
    return float(match.group(1)) * _UNITS[match.group(2)]


def run_wrk(url: str, key: str, body: Path, script: Path, duration: int, connections: int) -> dict[str, float]:
    """Requests/s and latency percentiles; fails when any response is not 2xx."""
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "30s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, env={**os.environ, "BENCH_KEY": key, "BENCH_BODY": str(body)},
        check=True,
    ).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit("wrk saw errors:\n" + out)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    pct = {m.group(1): _ms(m.group(2)) for m in re.finditer(r"^\s+(50|99)%\s+(\S+)", out, re.M)}
    return {"requests_per_s": rps, "p50_ms": pct["50"], "p99_ms": pct["99"]}


def broker_ceiling(exchange: str, body: bytes, count: int, window: int = 1000) -> float:
    """Events/s one pipelined confirm-mode pika publisher gets through the broker (no HTTP, no sink)."""
    from pika.adapters.select_connection import SelectConnection

    props = pika.BasicProperties(content_type="application/cloudevents+json", delivery_mode=2)
    state = {"sent": 0, "confirmed": 0}
    holder: list[Any] = []

    def pump() -> None:
        while state["sent"] < count and state["sent"] - state["confirmed"] < window:
            holder[0].basic_publish(exchange, "", body, props)
            state["sent"] += 1

    def on_confirm(frame: Any) -> None:
        if isinstance(frame.method, pika.spec.Basic.Nack):
            raise RuntimeError("the broker refused a message")
        state["confirmed"] = max(state["confirmed"], frame.method.delivery_tag)
        if state["confirmed"] >= count:
            connection.close()
        else:
            pump()

    def on_channel(channel: Any) -> None:
        holder.append(channel)
        channel.confirm_delivery(on_confirm)
        pump()

    started = time.perf_counter()
    connection = SelectConnection(
        pika.URLParameters(AMQP),
        on_open_callback=lambda conn: conn.channel(on_open_callback=on_channel),
        on_close_callback=lambda conn, reason: conn.ioloop.stop(),
    )
    connection.ioloop.start()
    if state["confirmed"] < count:
        raise SystemExit(f"only {state['confirmed']} of {count} messages confirmed")
    return count / (time.perf_counter() - started)


def declare_sink_queue(exchange: str) -> str:
    """A bound queue, as a destination would have (length-capped so the run does not fill memory)."""
    conn = pika.BlockingConnection(pika.URLParameters(AMQP))
    ch = conn.channel()
    ch.exchange_declare(exchange, "fanout", durable=True)
    queue = exchange + ".bench"
    ch.queue_declare(queue, durable=True, arguments={"x-max-length": 20000, "x-overflow": "drop-head"})
    ch.queue_bind(queue, exchange)
    conn.close()
    return queue


def cleanup_broker(exchange: str, queue: str) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(AMQP))
    ch = conn.channel()
    ch.queue_delete(queue)
    ch.exchange_delete(exchange)
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=5, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the best of each counts")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install -y wrk")

    from emergency_api.keys import create_key

    work = Path(tempfile.mkdtemp(prefix="bench-api-"))
    exchange = f"bench_api_{uuid.uuid4().hex[:8]}"
    queue = declare_sink_queue(exchange)
    key = create_key(work / "keys.json", "bench", ["*"])[1]
    script = work / "post.lua"
    script.write_text(LUA)
    single, batch = work / "single.json", work / "batch.json"
    single.write_text(json.dumps(event(0)))
    batch.write_text(json.dumps([event(i) for i in range(100)]))
    env = {**os.environ, "EVENTSINK_API_KEYS_FILE": str(work / "keys.json"), "EVENTSINK_EXCHANGE": exchange,
           "EVENTSINK_AMQP_URL": AMQP, "EVENTSINK_SPOOL_DIR": str(work / "spool"),
           "EVENTSINK_API_RATE_LIMIT": "100000000/minute"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    results: dict[str, Any] = {}

    def launch(name: str, worker_class: str, api: bool) -> tuple[subprocess.Popen[bytes], str]:
        bind = f"127.0.0.1:{free_port()}"
        if api:
            cmd = [sys.executable, "-m", "sink_lib.cli", "api", "--bind", bind, "--worker-class", worker_class,
                   "--workers", str(args.workers), "--threads", str(args.threads)]
        else:
            cmd = [sys.executable, "-c", BASELINE_SERVER, bind, worker_class, str(args.workers), str(args.threads)]
        proc = start(cmd, env, f"http://{bind}/healthz", work / f"{name}.log")
        return proc, f"http://{bind}/api/v1/events"

    def measure(worker_class: str, scenarios: list[tuple[str, Path, int]], rounds: int, duration: int,
                prefix: str = "") -> None:
        """Start both servers, then alternate baseline and API runs; keep each one's best round."""
        procs = []
        try:
            base_proc, base_url = launch(prefix + "baseline", worker_class, api=False)
            procs.append(base_proc)
            api_proc, api_url = launch(prefix + "api", worker_class, api=True)
            procs.append(api_proc)
            for label, body, per_request in scenarios:
                for url in (base_url, api_url):
                    run_wrk(url, key, body, script, 2, args.connections)  # warm-up
                for _ in range(rounds):
                    for name, url in ((prefix + "baseline", base_url), (prefix + "api", api_url)):
                        stats = run_wrk(url, key, body, script, duration, args.connections)
                        stats["events_per_s"] = stats["requests_per_s"] * per_request
                        best = results.get(f"{name}.{label}")
                        if best is None or stats["events_per_s"] > best["events_per_s"]:
                            results[f"{name}.{label}"] = stats
        finally:
            for proc in procs:
                stop(proc)

    try:
        # what the broker itself takes from one pipelined confirm-mode publisher: the ceiling of ingest
        from sink_lib.event import build_envelope, encode

        body_bytes = encode(build_envelope("health.http", event(0)["data"], source="/bench"), 1 << 20)
        results["broker_ceiling.pika_publisher"] = {"events_per_s": broker_ceiling(exchange, body_bytes, 20000),
                                                    "requests_per_s": 0.0, "p50_ms": float("nan"),
                                                    "p99_ms": float("nan")}
        measure("gthread", [("single", single, 1), ("batch100", batch, 100)], args.rounds, args.duration)
        measure("sync", [("single", single, 1), ("batch100", batch, 100)], 1, max(3, args.duration // 2),
                prefix="sync_")
    finally:
        cleanup_broker(exchange, queue)
        shutil.rmtree(work, ignore_errors=True)

    ratio_single = results["api.single"]["events_per_s"] / results["baseline.single"]["events_per_s"]
    ratio_batch = results["api.batch100"]["events_per_s"] / results["baseline.batch100"]["events_per_s"]
    summary = {
        "single_ratio": round(ratio_single, 3), "single_goal": 0.7, "single_ok": ratio_single >= 0.7,
        "batch_events_per_s": round(results["api.batch100"]["events_per_s"]), "batch_goal": 20000,
        "batch_ok": results["api.batch100"]["events_per_s"] >= 20000,
        "batch_ratio": round(ratio_batch, 3),
        "batch_vs_broker_ceiling": round(results["api.batch100"]["events_per_s"]
                                         / results["broker_ceiling.pika_publisher"]["events_per_s"], 3),
        "sync_vs_gthread_single": round(results["sync_api.single"]["events_per_s"]
                                        / results["api.single"]["events_per_s"], 3),
        "sync_vs_gthread_batch": round(results["sync_api.batch100"]["events_per_s"]
                                       / results["api.batch100"]["events_per_s"], 3),
    }
    print(f"{'scenario':<24}{'events/s':>12}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}")
    for name, row in results.items():
        print(f"{name:<24}{row['events_per_s']:>12.0f}{row['requests_per_s']:>10.0f}"
              f"{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}")
    print(f"single-event ratio api/baseline (gthread): {ratio_single:.2f} (goal >= 0.7)")
    print(f"100-event batches: {results['api.batch100']['events_per_s']:.0f} events/s (goal >= 20000), "
          f"ratio {ratio_batch:.2f}")
    print(f"broker ceiling (one pika confirm publisher, window 1000): "
          f"{results['broker_ceiling.pika_publisher']['events_per_s']:.0f} events/s; API batches reach "
          f"{summary['batch_vs_broker_ceiling']:.2f} of it")
    print(f"sync worker / gthread worker, API: single events {summary['sync_vs_gthread_single']:.2f}, "
          f"100-event batches {summary['sync_vs_gthread_batch']:.2f}")
    path = write_result("api_ingest", {"settings": {"workers": args.workers, "threads": args.threads,
                                                    "connections": args.connections, "duration_s": args.duration,
                                                    "rounds": args.rounds,
                                                    "cpus": os.cpu_count()},
                                       "results": results, "summary": summary})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
