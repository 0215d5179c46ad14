"""Events/s the amplitude and google_analytics workers deliver to a local endpoint that answers at once.

The endpoint is a keep-alive HTTP/1.1 server in a separate process (so it does not share the GIL),
answering 200 ``{"code": 200}`` (Amplitude) or 204 (GA4) without looking at the body. The events are a
user-activity mix (page views, downloads, resource views, uploads) of 50 users, about 300 bytes each,
with an e-mail and an IP in the data so the default privacy rules have work to do.

1. Plugin path: ``deliver`` (privacy rules, mapping, limits, HTTP) on batches of 500 already-parsed
   events, as the runtime hands them over; baseline: a hand-written sender of the same events that
   only JSON-encodes and posts them in the same request shapes (Amplitude: 500 events a request;
   GA4: per client, 25 events a request), with no privacy rules or checks.
2. Runtime + plugin (when RabbitMQ is up): drain a queue pre-filled with the same events through
   ``Worker`` with each plugin, beside the runtime's raw drain rate with the ``discard`` plugin.

Best of ``--rounds`` runs each. Goal: each worker >= 5,000 events/s; the plugin path is checked on its
own, and with the runtime the ratio to the raw drain rate shows whether the plugin is what limits it.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import write_result
from sink_lib.event import Event, build_envelope, encode
from workers.amplitude import AmplitudeSettings, AmplitudeWorker
from workers.google_analytics import GoogleAnalyticsSettings, GoogleAnalyticsWorker
from workers.plugin import WorkerPlugin
from workers.runtime import tune_gc

AMQP = os.environ.get("EVENTSINK_TEST_AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")
BATCH = 500
GOAL = 5000


def serve(port_file: str) -> None:
    """The endpoint process: answer every POST at once, keeping connections alive."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # one write per response, sent at once: no Nagle / delayed-ACK stalls
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path.endswith("/mp/collect"):
                self.wfile.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
            else:
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: 12\r\n\r\n{\"code\":200}")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    Path(port_file).write_text(str(server.server_address[1]))
    server.serve_forever()


def start_endpoint() -> tuple[subprocess.Popen[bytes], str]:
    """Start the endpoint process; (process, base URL)."""
    port_file = Path(f"/tmp/bench_analytics_{uuid.uuid4().hex[:8]}.port")
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port_file)])
    deadline = time.monotonic() + 20
    while not port_file.exists() or not port_file.read_text():
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("the endpoint process did not start")
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port_file.read_text()}"
    port_file.unlink()
    return proc, url


def envelopes(count: int) -> list[dict[str, Any]]:
    """A user-activity mix of 50 users."""
    out = []
    for i in range(count):
        user = f"user-{i % 50:05d}"
        extra = {"email": f"{user}@example.org", "ip": f"10.0.{i % 50}.{i % 200}"}
        kind = i % 4
        if kind == 0:
            out.append(build_envelope("traffic.page.viewed", {"url": f"https://clowder.example/files/f{i}",
                                                              "resource_id": f"f{i}", **extra},
                                      source="/bench", userid=user))
        elif kind == 1:
            out.append(build_envelope("traffic.resource.downloaded", {"resource_id": f"f{i}",
                                                                      "resource_type": "file", "bytes": i},
                                      source="/bench", userid=user))
        elif kind == 2:
            out.append(build_envelope("activity.resource.viewed", {"resource_type": "dataset",
                                                                   "resource_id": f"d{i % 300}", **extra},
                                      source="/bench", userid=user))
        else:
            out.append(build_envelope("storage.file.uploaded", {"file_id": f"f{i}", "dataset_id": f"d{i % 300}",
                                                                "bytes": 1000 + i}, source="/bench", userid=user))
    return out


def amplitude(url: str, **overrides: Any) -> AmplitudeWorker:
    return AmplitudeWorker(AmplitudeSettings(api_key="bench", server_url=f"{url}/2/httpapi",
                                             privacy_secret="bench-secret", **overrides))


def google_analytics(url: str, **overrides: Any) -> GoogleAnalyticsWorker:
    return GoogleAnalyticsWorker(GoogleAnalyticsSettings(measurement_id="G-BENCH", api_secret="bench",
                                                         endpoint=url, privacy_secret="bench-secret",
                                                         **overrides))


def plugin_rate(plugin: WorkerPlugin, events: list[Event]) -> float:
    """Events/s of ``deliver`` over batches of BATCH."""
    plugin.open()
    try:
        started = time.perf_counter()
        for start in range(0, len(events), BATCH):
            plugin.deliver(events[start:start + BATCH])
        return len(events) / (time.perf_counter() - started)
    finally:
        plugin.close()


def baseline_rate(kind: str, url: str, events: list[Event]) -> float:
    """Events/s of a bare sender: JSON-encode and post, same request shapes, no rules or checks."""
    session = requests.Session()
    headers = {"Content-Type": "application/json"}
    started = time.perf_counter()
    for start in range(0, len(events), BATCH):
        batch = events[start:start + BATCH]
        if kind == "amplitude":
            body: dict[str, Any] = {"api_key": "bench", "events": [
                {"event_type": e.type, "user_id": e.userid, "time": int(e.time.timestamp() * 1000),
                 "insert_id": e.id, "event_properties": e.data} for e in batch]}
            session.post(f"{url}/2/httpapi", data=json.dumps(body), headers=headers).raise_for_status()
            continue
        groups: dict[str | None, list[Event]] = defaultdict(list)
        for e in batch:
            groups[e.userid].append(e)
        for user, members in groups.items():
            for at in range(0, len(members), 25):
                body = {"client_id": str(user), "events": [
                    {"name": e.type.replace(".", "_"), "params": e.data} for e in members[at:at + 25]]}
                session.post(f"{url}/mp/collect", params={"measurement_id": "G", "api_secret": "s"},
                             data=json.dumps(body), headers=headers).raise_for_status()
    session.close()
    return len(events) / (time.perf_counter() - started)


def drain(name: str, plugin: WorkerPlugin, payloads: list[bytes]) -> float:
    """Events/s of the runtime with ``plugin`` draining a fresh queue pre-filled with ``payloads``."""
    import pika

    from bench.workers_runtime import prefill
    from sink_lib.settings import SinkSettings
    from sink_lib.topology import declare_exchange, declare_worker, queue_name
    from workers.runtime import Worker, WorkerMetrics

    settings = SinkSettings(amqp_url=AMQP, exchange=f"bench_analytics_{uuid.uuid4().hex[:8]}")
    connection = pika.BlockingConnection(pika.URLParameters(AMQP))
    declare_exchange(connection.channel(), settings)
    declare_worker(connection.channel(), settings, name)
    try:
        prefill(settings, payloads)
        metrics = WorkerMetrics(name)
        stop = threading.Event()
        worker = Worker(plugin, settings, metrics=metrics, stop_event=stop)
        started = time.perf_counter()
        thread = threading.Thread(target=worker.run)
        thread.start()
        while metrics.value("eventsink_worker_events_processed_total") < len(payloads) and thread.is_alive():
            time.sleep(0.01)
        rate = metrics.value("eventsink_worker_events_processed_total") / (time.perf_counter() - started)
        stop.set()
        thread.join(30)
        return rate
    finally:
        channel = connection.channel()
        live = queue_name(settings.exchange, name)
        for queue in (live, f"{live}.dead"):
            channel.queue_delete(queue)
        for exchange in (settings.exchange, f"{settings.exchange}.dead"):
            channel.exchange_delete(exchange)
        connection.close()


def runtime_rates(url: str, raw: list[dict[str, Any]], rounds: int) -> dict[str, float] | None:
    """Drain rate of the runtime with discard, amplitude and google_analytics; None without RabbitMQ."""
    import pika

    from workers.discard import DiscardWorker

    payloads = [encode(e, 1 << 20) for e in raw]
    makers = {"discard": lambda: DiscardWorker(DiscardWorker.settings_model(batch_size=BATCH)),
              "amplitude": lambda: amplitude(url, batch_size=BATCH),
              "google_analytics": lambda: google_analytics(url, batch_size=BATCH)}
    rates: dict[str, float] = {}
    try:
        for name, make in [item for _ in range(rounds) for item in makers.items()]:
            rates[name] = max(drain(name, make(), payloads), rates.get(name, 0.0))
    except pika.exceptions.AMQPError as exc:  # RabbitMQ absent or restarted: the rates would mislead
        print(f"runtime rates skipped: {exc!r}")
        return None
    return rates


def alternating_rates(url: str, events: list[Event], rounds: int) -> tuple[dict[str, float], dict[str, float]]:
    """Best plugin and bare-sender rates of each kind, the two measured in alternation (each round
    swaps which goes first), so load from elsewhere on the machine hits both alike."""
    makers = {"amplitude": lambda: amplitude(url), "google_analytics": lambda: google_analytics(url)}
    plugin: dict[str, float] = {}
    baseline: dict[str, float] = {}
    for round_ in range(rounds):
        for kind, make in makers.items():
            runs = [("plugin", lambda make=make: plugin_rate(make(), events)),
                    ("baseline", lambda kind=kind: baseline_rate(kind, url, events))]
            for which, run in runs if round_ % 2 == 0 else runs[::-1]:
                best = plugin if which == "plugin" else baseline
                best[kind] = max(best.get(kind, 0.0), run())
    return plugin, baseline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=2, help="best of this many runs of each path")
    parser.add_argument("--no-runtime", action="store_true", help="measure the plugin path only")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    tune_gc()  # the garbage collector settings of a worker process (run_worker), for every path
    raw = envelopes(args.events)
    events = [Event.parse(e) for e in raw]
    proc, url = start_endpoint()
    try:
        plugin, baseline = alternating_rates(url, events, args.rounds)
        runtime = None if args.no_runtime else runtime_rates(url, raw, args.rounds)
    finally:
        proc.terminate()
        proc.wait(10)
    result: dict[str, Any] = {"events": args.events, "rounds": args.rounds, "batch_size": BATCH,
                              "goal_events_per_s": GOAL, "load_average_1m": os.getloadavg()[0],
                              "event_bytes": round(sum(len(encode(e, 1 << 20)) for e in raw[:100]) / 100)}
    print(f"{'path':<44}{'events/s':>12}{'ratio':>10}")
    for kind in plugin:
        ratio = plugin[kind] / baseline[kind]
        result[f"{kind}_plugin_events_per_s"] = round(plugin[kind])
        result[f"{kind}_bare_sender_events_per_s"] = round(baseline[kind])
        result[f"{kind}_plugin_vs_bare_sender"] = round(ratio, 3)
        print(f"{'bare sender, ' + kind + ' shapes (baseline)':<44}{baseline[kind]:>12,.0f}")
        print(f"{kind + ' deliver()':<44}{plugin[kind]:>12,.0f}{ratio:>10.3f}")
    if runtime:
        base = runtime["discard"]
        result["runtime_discard_events_per_s"] = round(base)
        print(f"{'runtime + discard (raw drain, baseline)':<44}{base:>12,.0f}")
        for kind in ("amplitude", "google_analytics"):
            result[f"runtime_{kind}_events_per_s"] = round(runtime[kind])
            result[f"runtime_{kind}_vs_discard"] = round(runtime[kind] / base, 3)
            print(f"{'runtime + ' + kind:<44}{runtime[kind]:>12,.0f}{runtime[kind] / base:>10.3f}")
    # the plugin must not be what limits the worker: its own path >= GOAL, and with the runtime it keeps
    # (nearly) the runtime's raw drain rate, whatever the machine's load makes of that
    worst = min(plugin.values())
    result["goal_met_plugin_path"] = worst >= GOAL
    print(f"plugin paths >= {GOAL:,} events/s: {'met' if worst >= GOAL else 'NOT met'} (worst {worst:,.0f})")
    if runtime:
        worst_runtime = min(runtime["amplitude"], runtime["google_analytics"])
        result["goal_met_with_runtime"] = worst_runtime >= GOAL
        print(f"with the runtime >= {GOAL:,} events/s: {'met' if worst_runtime >= GOAL else 'NOT met'} "
              f"(worst {worst_runtime:,.0f}; runtime's raw drain {runtime['discard']:,.0f}; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    print(f"written to {write_result('workers_analytics', result)}")


if __name__ == "__main__":
    main()
