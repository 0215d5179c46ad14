"""Drain rate of the influxdb worker against a hand-written pika -> line protocol consumer.

Both drain a queue pre-filled with the same 100k events (one publish to a fanout exchange bound to
both queues, quorum like every worker queue) into the real InfluxDB, each into its own fresh
database. The worker is ``eventsink worker run influxdb`` in a subprocess (runtime + plugin, default
settings: batches of 5,000, prefetch 10,000); the baseline is a pika BlockingConnection consumer with
the same prefetch that parses JSON, builds line protocol by hand and POSTs 5,000-line batches, acking
each batch with ``multiple``. Time starts when each consumer starts (the worker: when its /metrics
answers, i.e. after Python start-up and imports) and stops when every event is written and acked.

Then, with the worker still running: end-to-end latency at 1,000 events/s. A paced publisher sends
one event per millisecond for LATENCY_S seconds, recording each id's publish instant; a poller queries
InfluxDB every 100 ms for the ids of points newer than the oldest unseen one and records when each id
first shows up. Latency = first seen - published (so it includes up to 100 ms of polling
resolution and the runtime's batch timeout of 1 s, its default). Worker RSS is sampled throughout.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pika
import psutil
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import percentile, write_result
from sink_lib.event import build_envelope, encode
from sink_lib.settings import SinkSettings
from sink_lib.topology import declare_exchange, declare_worker, queue_name

AMQP = os.environ.get("EVENTSINK_TEST_AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")
INFLUX = os.environ.get("EVENTSINK_TEST_INFLUXDB_URL", "http://127.0.0.1:8086")
BATCH = 5000
PREFETCH = 10_000


def sample(i: int) -> dict[str, Any]:
    """A realistic mix: pings, HTTP checks, API calls and uploads."""
    kind = i % 4
    if kind == 0:
        return build_envelope("health.ping", {"target": f"host{i % 7}", "rtt_min_ms": 1.2, "rtt_avg_ms": 2.5,
                                              "rtt_max_ms": 4.0, "loss_pct": 0.0, "ok": True},
                              source="/monitor/us-east", region="us-east")
    if kind == 1:
        return build_envelope("health.http", {"url": f"https://svc{i % 5}.example/health", "ok": True,
                                              "status": 200, "dns_ms": 1.0, "connect_ms": 2.0, "tls_ms": 3.0,
                                              "ttfb_ms": 20.5, "total_ms": 30.25, "bytes": 512},
                              source="/monitor/us-east", region="us-east")
    if kind == 2:
        return build_envelope("traffic.api.called", {"method": "GET", "route": f"/api/files/<id>/r{i % 9}",
                                                     "status": 200 + (i % 3), "duration_ms": 12.5 + i % 50},
                              source="/clowder/web", userid=f"user-{i % 1000}")
    return build_envelope("storage.file.uploaded", {"file_id": f"file-{i}", "dataset_id": f"ds-{i % 100}",
                                                    "bytes": 1000 + i}, source="/clowder/web", userid=f"u{i}")


def props(env: dict[str, Any]) -> pika.BasicProperties:
    return pika.BasicProperties(content_type="application/cloudevents+json", delivery_mode=2,
                                message_id=env["id"], type=env["type"])


def influx_query(db: str, q: str) -> list[list[Any]]:
    resp = requests.get(INFLUX + "/query", params={"db": db, "q": q, "epoch": "ns"}, timeout=30)
    resp.raise_for_status()
    out: list[list[Any]] = []
    for result in resp.json()["results"]:
        for series in result.get("series", []):
            out.extend(series["values"])
    return out


def influx_admin(q: str) -> None:
    requests.post(INFLUX + "/query", data={"q": q}, timeout=60).raise_for_status()


def depth(channel: Any, queue: str) -> int:
    return int(channel.queue_declare(queue, passive=True).method.message_count)


# -- the baseline: a hand-written consumer ---------------------------------------------------------------

TAG_KEYS = ("target", "service", "state", "extractor", "resource_type", "method", "route")


def _esc(text: str) -> str:
    return text.replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def baseline_line(body: bytes) -> str:
    """Line protocol of one event, the straightforward way."""
    ev = json.loads(body)
    data = ev["data"]
    tags = [f"type={ev['type']}", f"source={_esc(ev['source'])}"]
    if ev.get("region"):
        tags.append(f"region={_esc(ev['region'])}")
    fields = [f'id="{ev["id"]}"']
    for key, value in data.items():
        if key in TAG_KEYS:
            tags.append(f"{key}={_esc(str(value))}")
        elif isinstance(value, bool):
            fields.append(f"{key}={'true' if value else 'false'}")
        elif isinstance(value, int):
            fields.append(f"{key}={value}i")
        elif isinstance(value, float):
            fields.append(f"{key}={value!r}")
        elif isinstance(value, str):
            fields.append('{}="{}"'.format(key, value.replace("\\", "\\\\").replace('"', '\\"')))
    moment = datetime.fromisoformat(ev["time"].replace("Z", "+00:00"))
    ns = int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000
    return f"{ev['type'].split('.', 1)[0]},{','.join(sorted(tags))} {','.join(fields)} {ns}"


def run_baseline(queue: str, db: str, n: int) -> tuple[float, float]:
    """Drain ``queue`` into database ``db``; wall seconds and CPU seconds taken."""
    influx_admin(f'CREATE DATABASE "{db}"')
    session = requests.Session()
    started, cpu = time.perf_counter(), time.process_time()
    connection = pika.BlockingConnection(pika.URLParameters(AMQP))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=PREFETCH)
    buffered: list[tuple[int, bytes]] = []
    channel.basic_consume(queue, lambda _c, m, _p, b: buffered.append((m.delivery_tag, b)))
    done = 0
    last_flush = time.monotonic()
    while done < n:
        connection.process_data_events(time_limit=0.05)
        while len(buffered) >= BATCH or (buffered and time.monotonic() - last_flush > 0.5):
            batch, buffered[:] = buffered[:BATCH], buffered[BATCH:]
            body = "\n".join(baseline_line(b) for _, b in batch).encode()
            resp = session.post(INFLUX + "/write", params={"db": db, "precision": "ns"}, data=body, timeout=60)
            if resp.status_code != 204:
                raise RuntimeError(f"baseline write failed: {resp.status_code} {resp.text}")
            channel.basic_ack(batch[-1][0], multiple=True)
            done += len(batch)
            last_flush = time.monotonic()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    connection.close()
    return elapsed, cpu


# -- the worker ------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def processed(port: int) -> float | None:
    try:
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=1).text
    except requests.RequestException:
        return None
    for line in text.splitlines():
        if line.startswith("eventsink_worker_events_processed_total{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


class RssSampler(threading.Thread):
    """Samples a process's RSS every 0.2 s."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.samples: list[int] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.2):
            try:
                self.samples.append(self.proc.memory_info().rss)
            except psutil.Error:
                return


def latency(exchange: str, db: str, seconds: float, rate: int) -> dict[str, Any]:
    """Publish at ``rate``/s for ``seconds``; poll InfluxDB for when each event becomes visible."""
    published: dict[str, float] = {}
    wall: dict[str, int] = {}
    seen: dict[str, float] = {}
    finished = threading.Event()

    def publisher() -> None:
        connection = pika.BlockingConnection(pika.URLParameters(AMQP))
        channel = connection.channel()
        start = time.monotonic()
        for i in range(int(seconds * rate)):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            env = build_envelope("bench.latency", {"seq": i, "service": "bench"}, source="/bench")
            body = encode(env, 1 << 20)
            wall[env["id"]] = time.time_ns()
            published[env["id"]] = time.monotonic()
            channel.basic_publish(exchange, "", body, props(env))
        connection.close()
        finished.set()

    thread = threading.Thread(target=publisher, daemon=True)
    thread.start()
    deadline = time.monotonic() + seconds + 30
    while time.monotonic() < deadline:
        time.sleep(0.1)
        unseen = [wall[i] for i in list(wall) if i not in seen]
        if not unseen:
            if finished.is_set():
                break
            continue
        since = min(unseen) - 2_000_000_000
        now = time.monotonic()
        for _, event_id in influx_query(db, f'SELECT "id" FROM "bench" WHERE time >= {since}'):
            seen.setdefault(event_id, now)
    lat = [seen[i] - published[i] for i in seen if i in published]
    return {
        "events": len(published), "visible": len(lat), "rate_per_s": rate,
        "p50_ms": round(percentile(lat, 50) * 1000, 1), "p99_ms": round(percentile(lat, 99) * 1000, 1),
        "max_ms": round(max(lat) * 1000, 1) if lat else None,
    }


def start_worker(exchange: str, db: str, log: Any) -> tuple[subprocess.Popen[bytes], int]:
    """``eventsink worker run influxdb`` on ``exchange`` into ``db``; returns once its /metrics answers."""
    port = free_port()
    env = {**os.environ, "EVENTSINK_AMQP_URL": AMQP, "EVENTSINK_EXCHANGE": exchange,
           "EVENTSINK_INFLUXDB_URL": INFLUX, "EVENTSINK_INFLUXDB_DATABASE": db,
           "EVENTSINK_INFLUXDB_METRICS_PORT": str(port)}
    cli = [sys.executable, "-c", "from sink_lib.cli import main; main()", "worker", "run", "influxdb"]
    proc = subprocess.Popen(cli, env=env, stdout=log, stderr=log)
    while processed(port) is None:
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited; see {log.name}")
        time.sleep(0.02)
    return proc, port


def run_worker_drain(proc: subprocess.Popen[bytes], port: int, n: int, rss: list[int]) -> tuple[float, float]:
    """Wall and CPU seconds until the running worker has written ``n`` events (from its /metrics answering)."""
    started = time.perf_counter()
    ps = psutil.Process(proc.pid)
    cpu_before = sum(ps.cpu_times()[:2])
    sampler = RssSampler(proc.pid)
    sampler.start()
    while (processed(port) or 0) < n:
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    cpu = sum(ps.cpu_times()[:2]) - cpu_before
    sampler.stop.set()
    sampler.join()
    rss.extend(sampler.samples)
    return elapsed, cpu


def record(walls: list[float], cpus: list[float], measured: tuple[float, float]) -> None:
    walls.append(measured[0])
    cpus.append(measured[1])


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    args = parser.parse_args()
    n = args.events
    tag = uuid.uuid4().hex[:8]
    # two rounds, run in the order baseline A, worker A, worker B, baseline B, so that a change of
    # load on the shared machine during the run hits both sides alike
    exchanges = {r: f"bench_influx_{tag}_{r}" for r in "ab"}
    dbs = {f"{who}_{r}": f"bench_{who}_{tag}_{r}" for who in ("worker", "baseline") for r in "ab"}
    admin = pika.BlockingConnection(pika.URLParameters(AMQP))
    channel = admin.channel()
    procs: list[subprocess.Popen[bytes]] = []
    log = tempfile.NamedTemporaryFile(prefix="bench-influx-worker-", suffix=".log", delete=False)  # noqa: SIM115
    try:
        for exchange in exchanges.values():
            settings = SinkSettings(amqp_url=AMQP, exchange=exchange)
            declare_exchange(channel, settings)
            declare_worker(channel, settings, "influxdb")
            declare_worker(channel, settings, "baseline")
        print(f"pre-filling {n} events into the worker and baseline queues of two rounds ...", flush=True)
        for i in range(n):
            env = sample(i)
            body, properties = encode(env, 1 << 20), props(env)
            for exchange in exchanges.values():
                channel.basic_publish(exchange, "", body, properties)
        queues = [queue_name(x, w) for x in exchanges.values() for w in ("influxdb", "baseline")]
        while min(depth(channel, q) for q in queues) < n:
            time.sleep(0.2)

        base_s: list[float] = []
        worker_s: list[float] = []
        base_cpu: list[float] = []
        worker_cpu: list[float] = []
        rss: list[int] = []
        loads = [os.getloadavg()[0]]
        print("round a: baseline, then worker ...", flush=True)
        record(base_s, base_cpu, run_baseline(queue_name(exchanges["a"], "baseline"), dbs["baseline_a"], n))
        proc, port = start_worker(exchanges["a"], dbs["worker_a"], log)
        procs.append(proc)
        record(worker_s, worker_cpu, run_worker_drain(proc, port, n, rss))
        stop(proc)
        print("round b: worker, then baseline ...", flush=True)
        proc, port = start_worker(exchanges["b"], dbs["worker_b"], log)
        procs.append(proc)
        record(worker_s, worker_cpu, run_worker_drain(proc, port, n, rss))
        record(base_s, base_cpu, run_baseline(queue_name(exchanges["b"], "baseline"), dbs["baseline_b"], n))
        channel.queue_delete(queue_name(exchanges["b"], "baseline"))
        loads.append(os.getloadavg()[0])
        drain_rss = max(rss, default=0)
        stored = [int(sum(row[1] for row in influx_query(dbs[f"worker_{r}"], 'SELECT count("id") FROM /.*/')))
                  for r in "ab"]

        print(f"latency at 1,000 events/s for {args.latency_seconds:.0f} s ...", flush=True)
        sampler = RssSampler(proc.pid)
        sampler.start()
        lat = latency(exchanges["b"], dbs["worker_b"], args.latency_seconds, 1000)
        sampler.stop.set()
        sampler.join()

        base_total, worker_total = sum(base_s), sum(worker_s)
        result = {
            "events": n,
            "baseline_s": [round(x, 2) for x in base_s],
            "worker_s": [round(x, 2) for x in worker_s],
            "baseline_events_per_s": round(2 * n / base_total),
            "worker_events_per_s": round(2 * n / worker_total),
            "ratio": round(base_total / worker_total, 3),
            "ratio_per_round": [round(b / w, 3) for b, w in zip(base_s, worker_s, strict=True)],
            "goal_ratio": 0.8,
            "baseline_cpu_s": [round(x, 2) for x in base_cpu],
            "worker_cpu_s": [round(x, 2) for x in worker_cpu],
            "cpu_ratio": round(sum(base_cpu) / sum(worker_cpu), 3),
            "load_average_1m": [round(x, 2) for x in loads],
            "worker_points_stored": stored,
            "worker_rss_mb_peak_drain": round(drain_rss / 2**20, 1),
            "worker_rss_mb_peak_latency_run": round(max(sampler.samples, default=0) / 2**20, 1),
            "latency_1000_per_s": lat,
        }
        print()
        print(f"{'':28}{'round a s':>10}{'round b s':>10}{'events/s':>10}")
        print(f"{'baseline (pika + requests)':28}{base_s[0]:>10.2f}{base_s[1]:>10.2f}"
              f"{result['baseline_events_per_s']:>10,}")
        print(f"{'influxdb worker':28}{worker_s[0]:>10.2f}{worker_s[1]:>10.2f}{result['worker_events_per_s']:>10,}")
        print(f"ratio worker/baseline: {result['ratio']:.2f} (goal >= 0.8; per round {result['ratio_per_round']}); "
              f"points stored {stored}")
        print(f"CPU seconds per round: baseline {result['baseline_cpu_s']}, worker {result['worker_cpu_s']}; "
              f"CPU ratio {result['cpu_ratio']:.2f}; 1-min load average during the run {result['load_average_1m']}")
        print(f"worker RSS peak: {result['worker_rss_mb_peak_drain']} MB draining {n:,} events, "
              f"{result['worker_rss_mb_peak_latency_run']} MB at 1,000/s")
        print(f"end-to-end latency at 1,000/s: p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms "
              f"({lat['visible']}/{lat['events']} visible)")
        print(f"written to {write_result('workers_influxdb', result)}")
    finally:
        for proc in procs:
            stop(proc)
        log.close()
        try:
            if admin.is_open:
                admin.close()
        except pika.exceptions.AMQPError:
            pass  # the broker went away; cleanup() reconnects
        cleanup(list(exchanges.values()), list(dbs.values()))


def cleanup(exchanges: list[str], dbs: list[str]) -> None:
    """Delete the run's queues, exchanges and databases (on a fresh connection: the broker may have restarted)."""
    for attempt in range(30):
        try:
            connection = pika.BlockingConnection(pika.URLParameters(AMQP))
            channel = connection.channel()
            for exchange in exchanges:
                for worker in ("influxdb", "baseline"):
                    channel.queue_delete(queue_name(exchange, worker))
                    channel.queue_delete(queue_name(exchange, worker) + ".dead")
                channel.exchange_delete(exchange)
                channel.exchange_delete(exchange + ".dead")
            connection.close()
            break
        except pika.exceptions.AMQPError:
            if attempt == 29:
                print(f"could not delete the queues of {exchanges}: delete them by hand", file=sys.stderr)
            time.sleep(2)
    for db in dbs:
        try:
            influx_admin(f'DROP DATABASE "{db}"')
        except requests.RequestException:
            print(f"could not drop database {db}: drop it by hand", file=sys.stderr)

if __name__ == "__main__":
    main()
