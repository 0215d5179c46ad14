"""What a 202 promises under concurrency, against the real RabbitMQ: every 202'd event was confirmed by
the broker (or, with ``accept_on="spool"``, is fsync'd in the spool); refused events get 503."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pika
import pytest

from emergency_api import ApiSettings, create_app
from emergency_api.keys import create_key
from sink_lib import EventSink, SinkSettings
from sink_lib.spool import Spool
from tests.support import RABBITMQ_URL, drain_queue

from .test_gunicorn import bind_queue

pytestmark = pytest.mark.rabbitmq


def make_client(tmp_path: Path, sink_settings: SinkSettings, **api: object):
    key = create_key(tmp_path / "keys.json", "app", ["*"])[1]
    sink = EventSink(settings=sink_settings)
    settings = ApiSettings(keys_file=tmp_path / "keys.json", rate_limit_enabled=False, swagger=False, **api)
    return create_app(settings, sink=sink).test_client(), key, sink


def post_concurrently(client, key: str, bodies: list[object]) -> list[tuple[int, dict]]:
    """POST each body from its own thread at once; (status, JSON answer) in order."""
    answers: list[tuple[int, dict]] = [(0, {})] * len(bodies)
    start = threading.Barrier(len(bodies))

    def post(i: int) -> None:
        start.wait()
        response = client.post("/api/v1/events", json=bodies[i], headers={"X-API-Key": key})
        answers[i] = (response.status_code, response.get_json() or {})

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return answers


def status_event(i: int) -> dict:
    return {"type": "health.status", "data": {"service": f"s{i}", "state": "down"}}


def test_every_202_of_concurrent_requests_is_a_confirmed_event(tmp_path: Path, sink_settings: SinkSettings):
    queue = bind_queue(sink_settings.exchange)
    client, key, sink = make_client(tmp_path, sink_settings)
    try:
        bodies: list[object] = [status_event(i) if i % 2 else [status_event(i), status_event(i + 100)]
                                for i in range(24)]
        answers = post_concurrently(client, key, bodies)
        assert [status for status, _ in answers] == [202] * 24
        ids = [i for _, answer in answers for i in answer["ids"]]
        assert len(ids) == 36
        assert sink.stats()["confirmed"] >= 36  # confirmed before the answers were sent
    finally:
        sink.close(timeout=5)
    delivered = {json.loads(body)["id"] for _, _, body in drain_queue(queue, expect=36, timeout=60)}
    assert set(ids) <= delivered


def test_events_the_broker_nacks_get_503_never_202(tmp_path: Path, sink_settings: SinkSettings):
    # a full queue that rejects publishes: the broker nacks every event sent to the exchange
    conn = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    ch = conn.channel()
    ch.exchange_declare(sink_settings.exchange, "fanout", durable=True)
    queue = f"{sink_settings.exchange}.full"
    ch.queue_declare(queue, durable=True, arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
    ch.queue_bind(queue, sink_settings.exchange)
    ch.basic_publish(sink_settings.exchange, "", b"{}")
    conn.close()
    client, key, sink = make_client(tmp_path, sink_settings, publish_timeout_s=2.0)
    try:
        answers = post_concurrently(client, key, [status_event(i) for i in range(6)])
        assert [status for status, _ in answers] == [503] * 6
        assert sink.stats()["nacked"] > 0
        assert sink.stats()["confirmed"] == 0
    finally:
        sink.close(timeout=1)


def test_spool_first_202_means_fsyncd_and_the_events_are_then_published(
    tmp_path: Path, sink_settings: SinkSettings
):
    queue = bind_queue(sink_settings.exchange)
    client, key, sink = make_client(tmp_path, sink_settings, accept_on="spool")
    try:
        answers = post_concurrently(client, key, [[status_event(i), status_event(i + 50)] for i in range(10)])
        assert [status for status, _ in answers] == [202] * 10
        ids = {i for _, answer in answers for i in answer["ids"]}
        assert sink.stats()["spooled"] == 20
        delivered = {json.loads(body)["id"] for _, _, body in drain_queue(queue, expect=20, timeout=60)}
        assert ids == delivered  # replayed from the spool by the publisher
    finally:
        sink.close(timeout=5)


def test_spool_first_with_a_full_spool_answers_503(tmp_path: Path, sink_settings: SinkSettings):
    small = sink_settings.model_copy(update={"spool_max_bytes": 600, "amqp_url": "amqp://guest:guest@127.0.0.1:1/"})
    client, key, sink = make_client(tmp_path, small, accept_on="spool")
    try:
        first = client.post("/api/v1/events", json=status_event(1), headers={"X-API-Key": key})
        assert first.status_code == 202
        big = client.post("/api/v1/events", json=[status_event(i) for i in range(20)], headers={"X-API-Key": key})
        assert big.status_code == 503
        assert big.headers["Retry-After"]
        stored = {r.id for r in Spool(small.spool_dir, 1 << 30).claim(100)}
        assert stored == set(first.get_json()["ids"])
    finally:
        sink.close(timeout=1)


class CuttableProxy:
    """A TCP proxy to RabbitMQ that the test can cut, as a broker crash or network loss would."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.cut_done = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.cut_done.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.cut_done.is_set():
                client.close()
                return
            server = socket.create_connection(self.upstream)
            self.sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, dest: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                dest.sendall(chunk)
        except OSError:
            pass
        for s in (source, dest):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Drop every connection and refuse new ones from now on."""
        self.cut_done.set()
        self.listener.close()
        for s in self.sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
                s.close()


def test_losing_the_broker_while_requests_wait_never_gives_a_false_202(tmp_path: Path, sink_settings: SinkSettings):
    queue = bind_queue(sink_settings.exchange)
    parsed = urlsplit(RABBITMQ_URL)
    proxy = CuttableProxy((parsed.hostname or "localhost", parsed.port or 5672))
    through_proxy = sink_settings.model_copy(update={
        "amqp_url": f"amqp://{parsed.username}:{parsed.password}@127.0.0.1:{proxy.port}/%2F",
        "reconnect_min_s": 30.0, "reconnect_max_s": 30.0})
    client, key, sink = make_client(tmp_path, through_proxy, publish_timeout_s=5.0)
    accepted: list[str] = []
    statuses: list[int] = []
    lock = threading.Lock()

    def post_many(worker: int) -> None:
        for i in range(15):
            response = client.post("/api/v1/events", json=status_event(worker * 100 + i), headers={"X-API-Key": key})
            with lock:
                statuses.append(response.status_code)
                if response.status_code == 202:
                    accepted.extend(response.get_json()["ids"])

    try:
        threads = [threading.Thread(target=post_many, args=(w,)) for w in range(12)]
        for thread in threads:
            thread.start()
        for _ in range(6000):  # cut once some events are confirmed and more are waiting (up to ~60 s)
            if sink.stats()["confirmed"] >= 20:
                break
            threading.Event().wait(0.01)
        proxy.cut()
        for thread in threads:
            thread.join(120)
    finally:
        sink.close(timeout=1)
    assert set(statuses) <= {202, 503}
    assert len(statuses) == 180
    delivered = {json.loads(body)["id"] for _, _, body in drain_queue(queue)}
    spooled = {r.id for r in Spool(sink_settings.spool_dir, 1 << 30).claim(10_000)}
    assert set(accepted) <= delivered | spooled  # each 202 was confirmed by the broker or is on disk
    assert sink.stats()["spooled"] > 0  # the loss happened while events were flowing
