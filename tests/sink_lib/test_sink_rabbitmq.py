"""EventSink against the real RabbitMQ: delivery, broker restarts, kills, fork and exit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from sink_lib import EventSink, SinkSettings
from sink_lib.spool import Spool
from sink_lib.topology import declare, queue_name
from tests.support import drain_queue, start_rabbitmq, stop_rabbitmq

pytestmark = pytest.mark.rabbitmq
WORKERS = ["alpha", "beta", "gamma"]


def ids_in(queue: str, expect: int, timeout: float = 60.0) -> list[str]:
    return [json.loads(body)["id"] for _, _, body in drain_queue(queue, expect=expect, timeout=timeout)]


def run_python(code: str, env: dict[str, str], **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def env_of(settings: SinkSettings, **extra: str) -> dict[str, str]:
    return {"EVENTSINK_AMQP_URL": settings.amqp_url, "EVENTSINK_EXCHANGE": settings.exchange,
            "EVENTSINK_SPOOL_DIR": str(settings.spool_dir), "PYTHONPATH": str(Path.cwd()), **extra}


def test_events_arrive_in_every_bound_queue_with_body_and_properties(sink_settings: SinkSettings):
    # Given three worker queues bound to the fanout exchange
    declare(sink_settings, WORKERS)
    # When events are emitted
    with EventSink(settings=sink_settings) as sink:
        sent = [sink.enqueue("storage.file.uploaded", {"file_id": f"f{i}", "bytes": i}, userid="u1",
                          subject=f"file/f{i}") for i in range(100)]
        assert sink.flush(30)
        assert sink.stats()["confirmed"] == 100
    # Then each queue holds every event once, in order, as CloudEvents with the right AMQP properties
    for worker in WORKERS:
        got = drain_queue(queue_name(sink_settings.exchange, worker), expect=100)
        assert [json.loads(body)["id"] for _, _, body in got] == [e.id for e in sent]
        _, props, body = got[7]
        envelope = json.loads(body)
        assert envelope == sent[7].envelope
        assert envelope["data"] == {"file_id": "f7", "bytes": 7} and envelope["userid"] == "u1"
        assert props.content_type == "application/cloudevents+json"
        assert props.delivery_mode == 2
        assert props.message_id == envelope["id"]
        assert props.type == "storage.file.uploaded"
        assert abs(props.timestamp - time.time()) < 120


@pytest.mark.disruptive
@pytest.mark.slow
def test_broker_stopped_and_started_while_emitting_loses_nothing(sink_settings: SinkSettings):
    declare(sink_settings, ["alpha"])
    settings = sink_settings.model_copy(update={"reconnect_max_s": 1.0})
    sink = EventSink(settings=settings)
    sent: list[str] = []
    done = threading.Event()

    def produce() -> None:
        i = 0
        while not done.is_set():
            sent.append(sink.enqueue("custom.tick", {"i": i}).id)
            i += 1
            time.sleep(0.001)

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        time.sleep(1.0)
        stop_rabbitmq()  # connections drop while events keep coming
        time.sleep(2.0)
    finally:
        start_rabbitmq()
    time.sleep(1.0)
    done.set()
    producer.join()
    assert sink.flush(60)
    stats = sink.stats()
    # Everything spooled while the broker was away is replayed once it is back
    deadline = time.monotonic() + 60
    while sink.stats()["spool_pending"] and time.monotonic() < deadline:
        time.sleep(0.2)
    sink.close(10)
    received = ids_in(queue_name(settings.exchange, "alpha"), expect=len(sent))
    assert set(sent) <= set(received), f"lost {len(set(sent) - set(received))} of {len(sent)}"
    assert stats["spooled"] > 0 or stats["republished"] > 0  # the outage was really seen


def test_spool_of_a_killed_process_is_replayed_by_the_next_one(sink_settings: SinkSettings):
    declare(sink_settings, ["alpha"])
    # Given a process that spooled events because it could not reach the broker, then was killed
    code = """
        import sys, time
        from sink_lib import EventSink
        sink = EventSink()
        for i in range(200):
            print(sink.enqueue("custom.tick", {"i": i}).id, flush=True)
        assert sink.flush(30)
        print("spooled", flush=True)
        time.sleep(600)
    """
    env = env_of(sink_settings, EVENTSINK_AMQP_URL="amqp://guest:guest@127.0.0.1:1/%2F",
                 EVENTSINK_RECONNECT_MIN_S="60")
    proc = run_python(code, env)
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        if line.strip() == "spooled":
            break
        lines.append(line.strip())
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert len(lines) == 200
    assert Spool(sink_settings.spool_dir, 1 << 30).count() == 200
    # When the next process starts with the broker reachable
    with EventSink(settings=sink_settings) as sink:
        sink.enqueue("custom.tick", {"i": "next"})
        assert sink.flush(30)
        deadline = time.monotonic() + 30
        while sink.stats()["spool_pending"] and time.monotonic() < deadline:
            time.sleep(0.1)
    # Then the killed process's events arrive, in order, before the new one
    received = ids_in(queue_name(sink_settings.exchange, "alpha"), expect=201)
    assert received[:200] == lines
    assert Spool(sink_settings.spool_dir, 1 << 30).count() == 0


def test_forked_child_gets_a_working_sink(sink_settings: SinkSettings):
    declare(sink_settings, ["alpha"])
    sink = EventSink(settings=sink_settings)
    parent_before = sink.enqueue("custom.tick", {"who": "parent-before"}).id
    assert sink.flush(30)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.close(read)
            child_id = sink.enqueue("custom.tick", {"who": "child"}).id
            ok = sink.flush(30)
            sink.close(10)
            os.write(write, f"{child_id} {ok}".encode())
        finally:
            os._exit(0)
    os.close(write)
    child_id, ok = os.read(read, 200).decode().split()
    os.waitpid(pid, 0)
    parent_after = sink.enqueue("custom.tick", {"who": "parent-after"}).id
    assert sink.flush(30)
    sink.close(10)
    assert ok == "True"
    received = ids_in(queue_name(sink_settings.exchange, "alpha"), expect=3)
    assert sorted(received) == sorted([parent_before, child_id, parent_after])


def test_exit_with_unsent_events_delivers_them(sink_settings: SinkSettings):
    declare(sink_settings, ["alpha"])
    code = """
        from sink_lib import EventSink
        sink = EventSink()
        for i in range(3000):
            print(sink.enqueue("custom.tick", {"i": i}).id)
        # no flush, no close: interpreter exit must deliver them
    """
    proc = run_python(code, env_of(sink_settings))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    sent = out.split()
    assert len(sent) == 3000
    assert ids_in(queue_name(sink_settings.exchange, "alpha"), expect=3000) == sent


def test_exit_is_bounded_when_the_broker_is_unreachable_and_events_are_spooled(sink_settings: SinkSettings):
    code = """
        from sink_lib import EventSink
        sink = EventSink()
        for i in range(500):
            sink.enqueue("custom.tick", {"i": i})
    """
    env = env_of(sink_settings, EVENTSINK_AMQP_URL="amqp://guest:guest@127.0.0.1:1/%2F",
                 EVENTSINK_EXIT_TIMEOUT_S="2")
    started = time.monotonic()
    proc = run_python(code, env)
    proc.communicate(timeout=60)
    took = time.monotonic() - started
    assert proc.returncode == 0
    assert took < 30, f"exit took {took:.1f}s"
    assert Spool(sink_settings.spool_dir, 1 << 30).count() == 500


def test_submit_with_wait_returns_after_broker_confirms(sink_settings: SinkSettings):
    declare(sink_settings, ["alpha"])
    with EventSink(settings=sink_settings) as sink:
        events = [sink.prepare("custom.tick", {"i": i}) for i in range(20)]
        sink.submit(events, wait=30)
        assert sink.stats()["confirmed"] == 20
        assert sink.ready()
    assert len(ids_in(queue_name(sink_settings.exchange, "alpha"), expect=20)) == 20


def test_events_after_an_idle_spell_are_published(sink_settings: SinkSettings):
    # the publisher polls while events flow and is woken again after it went idle
    from sink_lib.publisher import IDLE_AFTER_S

    declare(sink_settings, ["alpha"])
    with EventSink(settings=sink_settings) as sink:
        first = sink.enqueue("custom.tick", {"i": 1}).id
        assert sink.flush(10)
        time.sleep(IDLE_AFTER_S + 0.5)
        assert sink._outbox.waker is not None  # idle: the next emit wakes the publisher
        second = sink.enqueue("custom.tick", {"i": 2}).id
        assert sink.flush(5)
    assert ids_in(queue_name(sink_settings.exchange, "alpha"), expect=2) == [first, second]
