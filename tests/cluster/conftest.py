"""Fixtures of the cluster tests: the 3-node RabbitMQ cluster of scripts/cluster.sh (started when absent).

Skipped locally only when rabbitmq-server is not installed; in CI (CI=true) a cluster that cannot be
started fails the tests.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest

from tests.support import IN_CI, port_open

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "cluster.sh"
NODES = (1, 2, 3)


def amqp_port(node: int) -> int:
    """AMQP port of node N (scripts/cluster.sh: 568N)."""
    return 5680 + node


def node_url(node: int) -> str:
    """URL of one node of the cluster."""
    return f"amqp://guest:guest@127.0.0.1:{amqp_port(node)}/%2F"


def node_of(label: str | None) -> int:
    """Node number of a ``host:port`` label as clients report it."""
    assert label is not None, "client reports no node"
    return int(label.rsplit(":", 1)[1]) - 5680


class Cluster:
    """Control of the test cluster's nodes through scripts/cluster.sh."""

    urls = ",".join(node_url(n) for n in NODES)

    def run(self, *args: str) -> str:
        done = subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"cluster.sh {' '.join(args)} failed: {done.stdout}{done.stderr}")
        return done.stdout

    def up(self, node: int) -> bool:
        return port_open("127.0.0.1", amqp_port(node))

    def node_stop(self, node: int) -> None:
        self.run("node-stop", str(node))

    def node_start(self, node: int) -> None:
        self.run("node-start", str(node))

    def heal(self) -> None:
        """Start every stopped node."""
        for node in NODES:
            if not self.up(node):
                self.node_start(node)

    def connection(self) -> pika.BlockingConnection:
        """A connection to any running node."""
        for node in NODES:
            if self.up(node):
                return pika.BlockingConnection(pika.URLParameters(node_url(node) + "?connection_attempts=2"))
        raise RuntimeError("no cluster node is up")


@pytest.fixture(scope="session")
def rabbit_cluster() -> Iterator[Cluster]:
    """The running 3-node cluster; started with scripts/cluster.sh when absent (and then stopped after)."""
    cluster = Cluster()
    started = False
    if not all(cluster.up(n) for n in NODES):
        if not shutil.which("rabbitmq-server") and not Path("/usr/lib/rabbitmq/bin/rabbitmq-server").exists():
            if IN_CI:
                pytest.fail("rabbitmq-server is required in CI for the cluster tests")
            pytest.skip("rabbitmq-server is not installed")
        if any(cluster.up(n) for n in NODES):
            cluster.heal()
        else:
            cluster.run("start")
            started = True
    yield cluster
    if started:
        cluster.run("stop")


@pytest.fixture
def cluster(rabbit_cluster: Cluster) -> Iterator[Cluster]:
    """The cluster with all three nodes up, and up again after the test."""
    rabbit_cluster.heal()
    yield rabbit_cluster
    rabbit_cluster.heal()


@pytest.fixture
def cluster_exchange(cluster: Cluster) -> Iterator[str]:
    """A fresh exchange name on the cluster; its exchanges and queues are deleted afterwards."""
    name = f"ctest_{uuid.uuid4().hex[:10]}"
    yield name
    try:
        connection = cluster.connection()
    except Exception:
        return
    try:
        channel = connection.channel()
        for suffix in ("", ".dead"):
            channel.exchange_delete(name + suffix)
        for worker in ("w", "influxdb"):
            channel.queue_delete(f"{name}.{worker}")
            channel.queue_delete(f"{name}.{worker}.dead")
    except Exception:
        pass
    finally:
        if connection.is_open:
            connection.close()


def drain_ids(cluster: Cluster, queue: str) -> list[str]:
    """message_id of every message in ``queue`` (consumed and acknowledged, so the queue ends empty)."""
    connection = cluster.connection()
    ids: list[str] = []
    try:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=1000)
        left = int(channel.queue_declare(queue, passive=True).method.message_count)
        for method, props, _body in channel.consume(queue, inactivity_timeout=10):
            if method is None:
                break
            ids.append(props.message_id)
            left -= 1
            if left <= 0 or len(ids) % 500 == 0:
                channel.basic_ack(method.delivery_tag, multiple=True)
            if left <= 0:
                break
        channel.cancel()
        return ids
    finally:
        connection.close()


def queue_depth(cluster: Cluster, queue: str) -> int:
    """Messages ready in ``queue``."""
    connection = cluster.connection()
    try:
        return int(connection.channel().queue_declare(queue, passive=True).method.message_count)
    finally:
        connection.close()
