"""Helpers of the runtime tests: making events, publishing them, running a worker in a thread."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import pika

from sink_lib.event import build_envelope
from sink_lib.settings import SinkSettings
from sink_lib.topology import declare_exchange, declare_worker
from workers.plugin import WorkerPlugin
from workers.runtime import QueueConsumer, WorkerMetrics


def make_event(type_: str = "storage.file.uploaded", **data: Any) -> dict[str, Any]:
    """A valid envelope with a fresh id."""
    payload = data or {"file_id": f"f-{uuid.uuid4().hex[:8]}", "bytes": 10}
    return build_envelope(type_, payload, source="/tests/workers")


def body_of(envelope: dict[str, Any]) -> bytes:
    """The envelope as a message body."""
    return json.dumps(envelope).encode()


def publish(settings: SinkSettings, worker: str, bodies: Iterable[bytes | dict[str, Any]]) -> None:
    """Declare the worker's queues, then publish ``bodies`` to the exchange with confirms."""
    connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    try:
        channel = connection.channel()
        declare_exchange(channel, settings)
        declare_worker(channel, settings, worker)
        channel.confirm_delivery()
        for body in bodies:
            if isinstance(body, dict):
                props = pika.BasicProperties(
                    content_type="application/cloudevents+json", delivery_mode=2,
                    message_id=body.get("id"), type=body.get("type"),
                )
                raw = body_of(body)
            else:
                props, raw = pika.BasicProperties(delivery_mode=2), body
            channel.basic_publish(settings.exchange, "", raw, props)
    finally:
        connection.close()


class RunningWorker:
    """A QueueConsumer running in a background thread; ``stop()`` stops it gracefully and re-raises its error."""

    def __init__(self, plugin: WorkerPlugin, settings: SinkSettings, **kwargs: Any) -> None:
        self.plugin = plugin
        self.metrics = WorkerMetrics(plugin.name)
        self.stop_event = threading.Event()
        self.worker = QueueConsumer(plugin, settings, metrics=self.metrics, stop_event=self.stop_event, **kwargs)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=f"worker-{plugin.name}", daemon=True)

    def _run(self) -> None:
        try:
            self.worker.run()
        except BaseException as exc:
            self.error = exc

    def metric(self, name: str, **labels: str) -> float:
        """A sample of the worker's metrics."""
        return self.metrics.value(name, **labels)

    def stop(self, timeout: float = 30.0) -> None:
        """Ask for a graceful stop and wait for it."""
        self.stop_event.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "worker did not stop"
        if self.error is not None:
            raise self.error


@contextmanager
def running(plugin: WorkerPlugin, settings: SinkSettings, **kwargs: Any) -> Iterator[RunningWorker]:
    """Run a worker for the block's duration."""
    handle = RunningWorker(plugin, settings, **kwargs)
    handle.thread.start()
    try:
        yield handle
    finally:
        handle.stop()
