"""A small real EventSink deployment for the dashboard tests: workers, API, Prometheus, and its data.

:func:`start_stack` declares a fresh exchange's topology, starts ``eventsink worker run`` for the
influxdb, prometheus and mongodb workers, ``eventsink api``, and a Prometheus scraping all of them and
RabbitMQ's prometheus plugin (only this exchange's queues are kept). :func:`produce` then sends the
event stream of :mod:`tests.grafana.events` the way production does: the application through sink_lib,
the monitors of three regions through the API, and a producer that publishes garbage.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pika
import requests

from tests.support import RABBITMQ_URL, stop_group, wait_for

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
RABBITMQ_METRICS_PORT = 15692
#: Workers whose queues the test declares; amplitude gets no process, so its queue backs up.
QUEUES = ("influxdb", "prometheus", "mongodb", "amplitude")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Process:
    """A child process in its own process group, with its output in a log file."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def check(self) -> None:
        """Fail with the log's tail when the process has exited."""
        if self.proc.poll() is not None:
            tail = self.log.read_text(errors="replace")[-3000:]
            raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{tail}")

    def stop(self) -> None:
        """SIGTERM the group, SIGKILL it when it does not stop in time."""
        stop_group(self.proc)


@dataclass
class Stack:
    """What the queries run against, and what the test needs to know about it."""

    exchange: str
    database: str
    influxdb_url: str
    prometheus_url: str
    api_url: str
    api_key: str
    env: dict[str, str]
    processes: list[Process] = field(default_factory=list)

    def check(self) -> None:
        """Fail when any component died."""
        for process in self.processes:
            process.check()

    def influxql(self, query: str) -> list[dict[str, Any]]:
        """The series of one InfluxQL query on the test database (fails on an error)."""
        response = requests.get(f"{self.influxdb_url}/query", params={"db": self.database, "q": query}, timeout=10)
        response.raise_for_status()
        (result,) = response.json()["results"]
        assert "error" not in result, f"{query}: {result['error']}"
        return list(result.get("series", []))

    def promql(self, expr: str, *, instant: bool, window_s: int = 600) -> list[dict[str, Any]]:
        """The result of a PromQL query: instant at now, or a range over the last ``window_s`` seconds."""
        if instant:
            response = requests.get(f"{self.prometheus_url}/api/v1/query", params={"query": expr}, timeout=10)
        else:
            end = requests.get(f"{self.prometheus_url}/api/v1/query", params={"query": "time()"}, timeout=10)
            now = float(end.json()["data"]["result"][1])
            params = {"query": expr, "start": str(now - window_s), "end": str(now), "step": "2s"}
            response = requests.get(f"{self.prometheus_url}/api/v1/query_range", params=params, timeout=10)
        body = response.json()
        assert body.get("status") == "success", f"{expr}: {body.get('error')}"
        return list(body["data"]["result"])


def _spawn(name: str, args: list[str], env: Mapping[str, str], logs: Path) -> Process:
    log = logs / f"{name}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    return Process(name, proc, log)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "sink_lib.cli", *args]


def _http_ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


def _prometheus_config(exchange: str, ports: Mapping[str, int]) -> str:
    targets = "\n".join(
        f"  - job_name: {job}\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]"
        for job, port in ports.items()
    )
    queue_regex = exchange + r"[.].+"
    return (
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"{targets}\n"
        "  - job_name: rabbitmq\n"
        "    metrics_path: /metrics/per-object\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{RABBITMQ_METRICS_PORT}']}}]\n"
        "    metric_relabel_configs:\n"
        f"      - {{source_labels: [queue], regex: '{queue_regex}', action: keep}}\n"
    )


@contextmanager
def start_stack(influxdb_url: str, work: Path) -> Iterator[Stack]:
    """Start every component on free ports; stop them and drop the test database afterwards."""
    exchange = f"test_grafana_{uuid.uuid4().hex[:8]}"
    database = f"eventsink_test_{uuid.uuid4().hex[:8]}"
    logs = work / "logs"
    logs.mkdir(parents=True)
    ports = {name: free_port() for name in ("api", "influxdb", "prometheus", "prometheus_metrics", "mongodb")}
    keys_file = work / "api_keys.json"
    env = {
        "EVENTSINK_AMQP_URL": RABBITMQ_URL,
        "EVENTSINK_EXCHANGE": exchange,
        "EVENTSINK_SPOOL_DIR": str(work / "spool"),
        "EVENTSINK_API_KEYS_FILE": str(keys_file),
        "EVENTSINK_API_RATE_LIMIT_ENABLED": "false",
        "EVENTSINK_INFLUXDB_URL": influxdb_url,
        "EVENTSINK_INFLUXDB_DATABASE": database,
        "EVENTSINK_INFLUXDB_METRICS_PORT": str(ports["influxdb"]),
        "EVENTSINK_INFLUXDB_BATCH_TIMEOUT_S": "0.2",
        "EVENTSINK_PROMETHEUS_PORT": str(ports["prometheus"]),
        "EVENTSINK_PROMETHEUS_METRICS_PORT": str(ports["prometheus_metrics"]),
        "EVENTSINK_PROMETHEUS_STATE_DIR": str(work / "prometheus-state"),
        "EVENTSINK_PROMETHEUS_BATCH_TIMEOUT_S": "0.2",
        # a MongoDB that is not there: the worker runs, serves /metrics and reports its destination down
        "EVENTSINK_MONGODB_URL": f"mongodb://127.0.0.1:{free_port()}/",
        "EVENTSINK_MONGODB_SERVER_SELECTION_TIMEOUT_MS": "300",
        "EVENTSINK_MONGODB_METRICS_PORT": str(ports["mongodb"]),
    }
    with ExitStack() as cleanup:
        subprocess.run(_cli("topology", "declare", *(f"--worker={q}" for q in QUEUES)),
                       env={**os.environ, **env}, check=True, capture_output=True, timeout=60)
        cleanup.callback(_delete_topology, exchange)
        key = subprocess.run(_cli("keys", "create", "--name", "monitors", "--scope", "*"),
                             env={**os.environ, **env}, check=True, capture_output=True, text=True,
                             timeout=60).stdout.strip().splitlines()[-1]

        processes = [
            _spawn(f"worker-{name}", _cli("worker", "run", name), env, logs)
            for name in ("influxdb", "prometheus", "mongodb")
        ]
        # With the folder set before start, the API's unlabelled metrics (spool size, broker connected)
        # are shared by its gunicorn workers too; `eventsink api` creating it later misses them.
        api_env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(work / "api-metrics")}
        (work / "api-metrics").mkdir()
        processes.append(_spawn("api", _cli("api", "--bind", f"127.0.0.1:{ports['api']}", "--workers", "1"),
                                api_env, logs))
        config = work / "prometheus.yml"
        config.write_text(_prometheus_config(exchange, {
            "api": ports["api"], "worker-influxdb": ports["influxdb"], "worker-mongodb": ports["mongodb"],
            "worker-prometheus": ports["prometheus_metrics"], "prometheus-worker": ports["prometheus"],
        }))
        prometheus_port = free_port()
        processes.append(_spawn("prometheus", [
            PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={work / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prometheus_port}",
        ], {}, logs))
        for process in processes:
            cleanup.callback(process.stop)
        cleanup.callback(_drop_database, influxdb_url, database)

        stack = Stack(exchange, database, influxdb_url, f"http://127.0.0.1:{prometheus_port}",
                      f"http://127.0.0.1:{ports['api']}", key, env, processes)

        def all_up() -> bool:
            stack.check()
            if not _http_ok(f"{stack.prometheus_url}/-/ready"):
                return False
            targets = requests.get(f"{stack.prometheus_url}/api/v1/targets", timeout=5).json()
            active = targets["data"]["activeTargets"]
            return len(active) == 6 and all(t["health"] == "up" for t in active)

        wait_for(all_up, timeout=90, interval=0.5, what=f"every component scraped by Prometheus (logs: {logs})")
        yield stack


def _delete_topology(exchange: str) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    try:
        channel = conn.channel()
        for queue in QUEUES:
            channel.queue_delete(f"{exchange}.{queue}")
            channel.queue_delete(f"{exchange}.{queue}.dead")
        channel.exchange_delete(exchange)
        channel.exchange_delete(f"{exchange}.dead")
    finally:
        conn.close()


def _drop_database(influxdb_url: str, database: str) -> None:
    requests.post(f"{influxdb_url}/query", params={"q": f'DROP DATABASE "{database}"'}, timeout=10)
