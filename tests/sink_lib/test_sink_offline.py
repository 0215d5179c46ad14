"""EventSink without a broker: validation in the caller, the spool, and the full-queue policies."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from sink_lib import Event, EventSink, SinkSettings
from sink_lib.errors import EventValidationError, QueueFullError, SinkClosedError, SpoolFullError
from sink_lib.spool import Spool
from tests.support import wait_for

NOWHERE = "amqp://guest:guest@127.0.0.1:1/%2F"  # nothing listens on port 1


class StalledPublisher:
    """Stands in for the publisher thread so the in-memory queue stays full."""

    _spool_maybe = False

    def stop(self) -> None: ...

    def join(self, timeout: float | None = None) -> None: ...

    def is_alive(self) -> bool:
        return False


def stalled(sink: EventSink) -> EventSink:
    real = sink._publisher  # started with the sink: stop it, or it would drain the queue into the spool
    assert real is not None
    real.stop()
    real.join(10)
    sink._publisher = StalledPublisher()  # type: ignore[assignment]
    return sink


def offline_settings(spool_dir: Path, **kw) -> SinkSettings:
    base = {"amqp_url": NOWHERE, "exchange": "offline", "spool_dir": spool_dir, "reconnect_min_s": 30.0,
            "reconnect_max_s": 30.0}
    return SinkSettings(**{**base, **kw})


def test_invalid_event_raises_in_the_caller_and_nothing_is_queued(spool_dir: Path):
    with EventSink(settings=offline_settings(spool_dir)) as sink:
        with pytest.raises(EventValidationError) as err:
            sink.enqueue("storage.file.uploaded", {"file_id": "f1", "bytes": "ten"})
        assert err.value.errors[0]["field"] == "data.bytes"
        with pytest.raises(EventValidationError, match=r"data\.when"):
            sink.enqueue("custom.thing", {"when": object()})
        with pytest.raises(EventValidationError, match="userid"):
            sink.enqueue("custom.thing", {}, userid=42)  # type: ignore[arg-type]
        assert sink.stats()["emitted"] == 0
    assert Spool(spool_dir, 1 << 20).count() == 0


def test_strict_mode_refuses_unknown_types(spool_dir: Path):
    with (EventSink(settings=offline_settings(spool_dir, strict_types=True)) as sink,
          pytest.raises(EventValidationError, match="unknown event type")):
        sink.enqueue("custom.thing", {})


def test_events_go_to_the_spool_while_the_broker_is_unreachable(spool_dir: Path):
    # Given a sink whose broker cannot be reached
    sink = EventSink(settings=offline_settings(spool_dir))
    ids = [sink.enqueue("storage.file.uploaded", {"file_id": f"f{i}", "bytes": i}).id for i in range(50)]
    # When it is flushed, every event is on disk
    assert sink.flush(10)
    stats = sink.stats()
    assert stats["spooled"] == 50 and stats["confirmed"] == 0 and stats["connected"] is False
    sink.close(1)
    assert [r.id for r in Spool(spool_dir, 1 << 20).claim(100)] == ids  # in emit order


class Blackhole:
    """A TCP server that accepts connections and never answers: a broker hanging in the handshake."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.accepted = 0
        self.closed_by_client = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._hold, args=(conn,), daemon=True).start()

    def _hold(self, conn: socket.socket) -> None:
        with conn:
            try:
                while conn.recv(4096):
                    pass  # swallow the protocol header, say nothing
            except OSError:
                pass
        self.closed_by_client += 1

    def close(self) -> None:
        self.server.close()


def test_emit_returns_at_once_while_the_broker_is_unreachable(spool_dir: Path):
    # Given a broker address that accepts the TCP connection and then never answers
    hole = Blackhole()
    url = f"amqp://guest:guest@127.0.0.1:{hole.port}/%2F?connection_attempts=1&socket_timeout=300&stack_timeout=300"
    sink = EventSink(settings=offline_settings(spool_dir, amqp_url=url))
    emitted: list[Event] = []

    def emit_all() -> None:
        emitted.append(sink.enqueue("custom.thing", {"a": 1}))
        wait_for(lambda: hole.accepted, timeout=30, what="the publisher to connect")
        emitted.extend(sink.enqueue("custom.thing", {"n": i}) for i in range(200))

    try:
        # When 201 events are emitted while the publisher hangs in that handshake
        caller = threading.Thread(target=emit_all, daemon=True)
        caller.start()
        # Then every emit returns (a caller waiting on the network would still be stuck here),
        wait_for(lambda: not caller.is_alive(), timeout=60, what="201 emit() calls while the broker hangs")
        # the handshake was still hanging when they had all returned, and each gave its event
        assert hole.closed_by_client == 0, "the handshake ended before emit() returned"
        assert len(emitted) == 201 and emitted[0].envelope["data"] == {"a": 1}
        assert len({e.id for e in emitted}) == 201
        assert sink.stats()["confirmed"] == 0
    finally:
        sink.close(1)
        hole.close()


def test_full_queue_policy_raise_refuses_loudly_and_counts(spool_dir: Path, caplog):
    settings = offline_settings(spool_dir, max_queue=1, full_policy="raise")
    sink = stalled(EventSink(settings=settings))
    sink.enqueue("custom.thing", {})
    with pytest.raises(QueueFullError):
        sink.enqueue("custom.thing", {})
    assert sink.stats()["failed"] == 1
    assert "queue full" in caplog.text
    sink.close(0.5)


def test_full_queue_policy_spool_writes_the_overflow_to_disk(spool_dir: Path):
    sink = stalled(EventSink(settings=offline_settings(spool_dir, max_queue=2, full_policy="spool")))
    for i in range(5):
        sink.enqueue("custom.thing", {"i": i})
    stats = sink.stats()
    assert stats["emitted"] == 5 and stats["queued"] == 2 and stats["spooled"] == 3
    assert Spool(spool_dir, 1 << 20).count() == 3
    sink.close(0.5)
    assert Spool(spool_dir, 1 << 20).count() == 5  # close spooled the two still in memory


def test_full_queue_and_full_spool_refuse_the_event(spool_dir: Path):
    sink = stalled(EventSink(settings=offline_settings(spool_dir, max_queue=1, spool_max_bytes=300)))
    sink.enqueue("custom.thing", {})
    with pytest.raises(QueueFullError, match="spool"):
        sink.enqueue("custom.thing", {"pad": "x" * 400})
    assert sink.stats()["failed"] == 1
    sink.close(0.5)


def test_submit_with_wait_reports_a_spool_that_cannot_take_events(spool_dir: Path):
    sink = EventSink(settings=offline_settings(spool_dir, spool_max_bytes=100))
    big = sink.prepare("custom.thing", {"pad": "x" * 500})
    with pytest.raises(SpoolFullError):
        sink.submit([big], wait=10)
    assert sink.stats()["failed"] == 1
    sink.close(0.5)


def test_submit_with_wait_returns_once_spooled(spool_dir: Path):
    with EventSink(settings=offline_settings(spool_dir)) as sink:
        events = [sink.prepare("custom.thing", {"i": i}) for i in range(10)]
        sink.submit(events, wait=10)
        assert sink.stats()["spooled"] == 10
        assert sink.ready()  # the spool is writable


def test_emit_after_close_is_an_error(spool_dir: Path):
    sink = EventSink(settings=offline_settings(spool_dir))
    sink.close(0.5)
    with pytest.raises(SinkClosedError):
        sink.enqueue("custom.thing", {})
