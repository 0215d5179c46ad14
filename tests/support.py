"""Helpers for tests: waiting on conditions, controlling shared services, reading queues."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from typing import Any, NoReturn

import pika

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
RABBITMQ_URL = os.environ.get("EVENTSINK_TEST_AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")
INFLUXDB_URL = os.environ.get("EVENTSINK_TEST_INFLUXDB_URL", "http://127.0.0.1:8086")


def not_here(reason: str) -> NoReturn:
    """A test cannot run on this machine: skip it locally, fail it in CI (``CI=true``), never skip silently."""
    import pytest

    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05, what: str = "") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when a TCP connection to host:port succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def rabbitmq_ready() -> bool:
    """True when the broker accepts an AMQP connection."""
    try:
        conn = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL + "?connection_attempts=1&socket_timeout=2"))
    except Exception:
        return False
    conn.close()
    return True


def rabbitmqctl(*args: str, timeout: float = 120.0) -> None:
    """Run rabbitmqctl; used by the disruptive tests that stop and start the broker's app."""
    if not shutil.which("rabbitmqctl"):
        raise RuntimeError("rabbitmqctl not found")
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=timeout)


def stop_rabbitmq() -> None:
    """Stop the broker application (connections drop, the node stays up)."""
    rabbitmqctl("stop_app")


def start_rabbitmq() -> None:
    """Start the broker application again and wait until it takes connections."""
    rabbitmqctl("start_app")
    wait_for(rabbitmq_ready, timeout=60, interval=0.2, what="RabbitMQ to accept connections")


def drain_queue(queue: str, expect: int | None = None, timeout: float = 30.0) -> list[tuple[Any, Any, bytes]]:
    """Consume every message of ``queue`` (method, properties, body), waiting for ``expect`` of them."""
    conn = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    out: list[tuple[Any, Any, bytes]] = []
    try:
        ch = conn.channel()
        deadline = time.monotonic() + timeout
        while True:
            method, props, body = ch.basic_get(queue, auto_ack=True)
            if method is not None:
                out.append((method, props, body))
                continue
            if expect is None or len(out) >= expect or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    finally:
        conn.close()
    return out


def queue_depth(queue: str) -> int:
    """Messages ready in ``queue``."""
    conn = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    try:
        return int(conn.channel().queue_declare(queue, passive=True).method.message_count)
    finally:
        conn.close()


def stop_group(proc: subprocess.Popen[Any], timeout: float = 20.0) -> None:
    """SIGTERM a process started with ``start_new_session=True`` and its group; SIGKILL if it lingers."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
