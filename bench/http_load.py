"""Helpers of the HTTP ingest benchmarks: servers under gunicorn, wrk runs with CPU time, a bare publisher.

Each measurement returns requests/s, p50/p99 latency and the CPU time the server process tree (gunicorn
master and workers) spent per request, read from /proc through psutil, so a neighbour's load on the
shared machine shows as wall-clock noise but not as CPU cost. Beside it: the broker's CPU per request
(the RabbitMQ node, ``beam.smp``, shares the machine's cores) and the whole machine's busy CPU per
request, which together show what is left for the server when the cores are the limit.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pika
import psutil
import requests

from bench.common import median

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = os.getenv("BENCH_CONTENT_TYPE") or "application/json"
wrk.headers["X-API-Key"] = os.getenv("BENCH_KEY")
local f = io.open(os.getenv("BENCH_BODY"), "rb")
wrk.body = f:read("*a")
f:close()
"""

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(cmd: list[str], env: dict[str, str], probe: str, log: Path, timeout: float = 60.0,
          cwd: str | None = None) -> subprocess.Popen[bytes]:
    """Start a server in its own process group and wait until ``probe`` answers."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                cwd=cwd)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}; see {log}")
        try:
            requests.get(probe, timeout=1)
            return proc
        except requests.RequestException:
            time.sleep(0.1)
    raise SystemExit(f"server at {probe} did not come up; see {log}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a server started by :func:`start` (its whole process group)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _cpu_s(procs: list[psutil.Process]) -> float:
    """User + system CPU seconds of these processes (those gone meanwhile count 0)."""
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its live children."""
    return _cpu_s(_tree(pid))


def tree_context_switches(pid: int) -> int:
    """Context switches (voluntary and involuntary) of every thread of a process tree so far."""
    total = 0
    for proc in _tree(pid):
        for task in Path(f"/proc/{proc.pid}/task").glob("*"):
            try:
                for line in (task / "status").read_text().splitlines():
                    if "ctxt_switches:" in line:
                        total += int(line.split()[1])
            except (OSError, ValueError, IndexError):
                pass
    return total


def broker_cpu_s() -> float:
    """User + system CPU seconds of the local RabbitMQ node(s) (``beam.smp``); 0 when none is visible."""
    return _cpu_s([proc for proc in psutil.process_iter(["name"]) if proc.info["name"] == "beam.smp"])


def machine_busy_s() -> float:
    """CPU seconds the whole machine spent busy (all cores; idle and I/O wait left out)."""
    times = psutil.cpu_times()
    return float(sum(times)) - times.idle - getattr(times, "iowait", 0.0)


def machine_counters() -> tuple[float, float]:
    """(broker CPU s, machine busy CPU s) now: take one before and one after a measurement."""
    return broker_cpu_s(), machine_busy_s()


def per_unit(before: tuple[float, float], count: float) -> dict[str, float]:
    """The broker's and the machine's CPU ms per request (or event) since ``before``."""
    broker, machine = machine_counters()
    count = max(count, 1)
    return {"broker_cpu_ms_per_request": 1000 * (broker - before[0]) / count,
            "machine_cpu_ms_per_request": 1000 * (machine - before[1]) / count}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not match:
        raise ValueError(text)
    return float(match.group(1)) * _UNITS[match.group(2)]


def run_wrk(url: str, key: str, body: Path, script: Path, duration: int, connections: int,
            server_pid: int | None = None, content_type: str = "application/json") -> dict[str, float]:
    """Requests/s, latency percentiles and server CPU ms per request; fails when any response is not 2xx."""
    cpu_before = tree_cpu_s(server_pid) if server_pid else 0.0
    counters = machine_counters()
    switches_before = tree_context_switches(server_pid) if server_pid else 0
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "30s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, check=True,
        env={**os.environ, "BENCH_KEY": key, "BENCH_BODY": str(body), "BENCH_CONTENT_TYPE": content_type},
    ).stdout
    cpu = tree_cpu_s(server_pid) - cpu_before if server_pid else float("nan")
    switches = tree_context_switches(server_pid) - switches_before if server_pid else 0
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit("wrk saw errors:\n" + out)
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    machine = per_unit(counters, total)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    pct = {m.group(1): _ms(m.group(2)) for m in re.finditer(r"^\s+(50|99)%\s+(\S+)", out, re.M)}
    return {"requests_per_s": rps, "p50_ms": pct["50"], "p99_ms": pct["99"],
            "cpu_ms_per_request": 1000 * cpu / max(total, 1), **machine,
            "switches_per_request": switches / max(total, 1)}


def bare_publisher(amqp: str, exchange: str, body: bytes, seconds: float, window: int) -> dict[str, float]:
    """Events/s of one pipelined confirm-mode pika publisher keeping ``window`` messages unconfirmed.

    It publishes the same body, with the same persistent properties, as the sink does, and counts
    only confirmed messages; CPU is this process's own (the publisher runs in it). p50/p99 are the
    broker's confirm latencies (publish to ack) at that concurrency: the floor of any confirm-mode
    API's latency on this broker.
    """
    from collections import deque

    from pika.adapters.select_connection import SelectConnection

    props = pika.BasicProperties(content_type="application/cloudevents+json", delivery_mode=2,
                                 message_id="bench", type="health.http", timestamp=int(time.time()))
    state: dict[str, Any] = {"sent": 0, "confirmed": 0, "stop_at": 0.0, "closing": False}
    holder: list[Any] = []
    sent_at: deque[tuple[int, float]] = deque()
    latencies: list[float] = []

    def pump() -> None:
        if time.monotonic() >= state["stop_at"]:
            if state["confirmed"] >= state["sent"] and not state["closing"]:
                state["closing"] = True
                connection.close()
            return
        while state["sent"] - state["confirmed"] < window:
            holder[0].basic_publish(exchange, "", body, props)
            state["sent"] += 1
            sent_at.append((state["sent"], time.perf_counter()))

    def on_confirm(frame: Any) -> None:
        if isinstance(frame.method, pika.spec.Basic.Nack):
            raise RuntimeError("the broker refused a message")
        state["confirmed"] = max(state["confirmed"], frame.method.delivery_tag)
        now = time.perf_counter()
        while sent_at and sent_at[0][0] <= state["confirmed"]:
            latencies.append(now - sent_at.popleft()[1])
        pump()

    def on_channel(channel: Any) -> None:
        holder.append(channel)
        state["stop_at"] = time.monotonic() + seconds
        state["started"] = time.perf_counter()
        state["cpu"] = time.process_time()
        channel.confirm_delivery(on_confirm, callback=lambda _frame: pump())

    counters = machine_counters()
    connection = SelectConnection(
        pika.URLParameters(amqp),
        on_open_callback=lambda conn: conn.channel(on_open_callback=on_channel),
        on_close_callback=lambda conn, reason: conn.ioloop.stop(),
    )
    connection.ioloop.start()
    elapsed = time.perf_counter() - state["started"]
    cpu = time.process_time() - state["cpu"]
    latencies.sort()
    return {"events_per_s": state["confirmed"] / elapsed, "requests_per_s": float("nan"),
            "p50_ms": 1000 * latencies[len(latencies) // 2] if latencies else float("nan"),
            "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)] if latencies else float("nan"),
            "cpu_ms_per_request": 1000 * cpu / max(state["confirmed"], 1), **per_unit(counters, state["confirmed"]),
            "switches_per_request": float("nan")}


def _one_publisher(args: tuple[str, str, bytes, float, int]) -> dict[str, float]:
    return bare_publisher(*args)


def bare_publishers(amqp: str, exchange: str, body: bytes, seconds: float, window: int,
                    connections: int) -> dict[str, float]:
    """:func:`bare_publisher` on ``connections`` connections at once (one process each), ``window`` split
    over them: the shape of the API, whose every worker process publishes on its own connection."""
    if connections <= 1:
        return bare_publisher(amqp, exchange, body, seconds, window)
    import multiprocessing

    share = max(1, window // connections)
    counters = machine_counters()
    with multiprocessing.get_context("fork").Pool(connections) as pool:
        parts = pool.map(_one_publisher, [(amqp, exchange, body, seconds, share)] * connections)
    rate = sum(p["events_per_s"] for p in parts)
    return {"events_per_s": rate, "requests_per_s": float("nan"),
            "p50_ms": median([p["p50_ms"] for p in parts]), "p99_ms": max(p["p99_ms"] for p in parts),
            "cpu_ms_per_request": sum(p["cpu_ms_per_request"] * p["events_per_s"] for p in parts) / max(rate, 1.0),
            **per_unit(counters, rate * seconds), "switches_per_request": float("nan")}


def wait_for_empty_spool(directory: Path, timeout: float = 600.0) -> float:
    """Seconds until every spool file in ``directory`` holds no event (the server delivered them all)."""
    from sink_lib.spool_report import inspect_spools

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if sum(r.events for r in inspect_spools(directory)) == 0:
            return time.monotonic() - started
        time.sleep(0.2)
    raise SystemExit(f"the spool in {directory} did not drain in {timeout:.0f}s")


def _drain(amqp: str, queue: str) -> None:
    """Consume ``queue`` and ack in batches, as a destination's worker would, until terminated."""
    conn = pika.BlockingConnection(pika.URLParameters(amqp))
    channel = conn.channel()
    channel.basic_qos(prefetch_count=2000)
    state = {"last": 0, "unacked": 0}
    signal.signal(signal.SIGTERM, lambda *_: conn.add_callback_threadsafe(conn.close))

    def on_message(ch: Any, method: Any, _props: Any, _body: bytes) -> None:
        state["last"], state["unacked"] = method.delivery_tag, state["unacked"] + 1
        if state["unacked"] >= 200:
            ch.basic_ack(state["last"], multiple=True)
            state["unacked"] = 0

    channel.basic_consume(queue, on_message)
    try:
        while conn.is_open:
            conn.process_data_events(0.1)
            if state["unacked"]:
                channel.basic_ack(state["last"], multiple=True)
                state["unacked"] = 0
    except (pika.exceptions.AMQPError, OSError):
        pass


def start_drain(amqp: str, queue: str, consumers: int = 2) -> list[Any]:
    """``consumers`` processes draining ``queue`` (each on its own connection); stop with :func:`stop_drain`."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=_drain, args=(amqp, queue), daemon=True) for _ in range(consumers)]
    for proc in procs:
        proc.start()
    return procs


def stop_drain(procs: list[Any]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.join(10)
