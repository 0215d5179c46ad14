"""Runtime lifecycle against the real broker: dry run, destination not up at start, /metrics,
and the worker resuming by itself after a broker restart."""

from __future__ import annotations

import logging
import socket
import threading
import urllib.request

import psutil
import pytest

from sink_lib.settings import SinkSettings
from sink_lib.topology import dead_queue_name, queue_name
from tests.support import queue_depth, start_rabbitmq, stop_rabbitmq, wait_for
from workers.errors import RetryLater
from workers.runtime import build_plugin, run_worker

from .helpers import make_event, publish, running
from .plugins import MemoryWorker

pytestmark = pytest.mark.rabbitmq


def memory(**overrides: object) -> MemoryWorker:
    settings = {"batch_size": 10, "batch_timeout_s": 0.1, "backoff_min_s": 0.05, "backoff_max_s": 0.2}
    plugin = build_plugin(MemoryWorker, **{**settings, **overrides})
    assert isinstance(plugin, MemoryWorker)
    return plugin


def test_dry_run_parses_and_logs_but_writes_and_acks_nothing(
    sink_settings: SinkSettings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="workers")
    events = [make_event() for _ in range(4)]
    publish(sink_settings, "memory", [*events, b"garbage"])
    plugin = memory()
    # When a dry run consumes the queue
    with running(plugin, sink_settings, dry_run=True):
        wait_for(lambda: any("dry run: batch of 5" in r.getMessage() for r in caplog.records), 30)
    # Then it logged each event it would write, and wrote, acked and dead-lettered nothing
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert all(e["id"] in logged for e in events) and "would dead-letter" in logged
    assert plugin.writes == [] and plugin.opened == 0
    assert wait_for(lambda: queue_depth(queue_name(sink_settings.exchange, "memory")) == 5, 30)
    assert queue_depth(dead_queue_name(sink_settings.exchange, "memory")) == 0


def test_destination_down_at_start_is_retried_before_consuming(sink_settings: SinkSettings) -> None:
    publish(sink_settings, "memory", [make_event() for _ in range(3)])
    plugin = memory()
    plugin.open_failures = [RetryLater("connection refused"), OSError("no route")]
    with running(plugin, sink_settings) as worker:
        wait_for(lambda: len(plugin.stored) == 3, 30, what="events written once open() succeeded")
        assert worker.metric("eventsink_worker_unexpected_errors_total") == 1
    assert plugin.opened == 1 and plugin.closed == 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_run_worker_serves_metrics(sink_settings: SinkSettings) -> None:
    publish(sink_settings, "memory", [make_event() for _ in range(3)])
    port, stop = _free_port(), threading.Event()
    thread = threading.Thread(
        target=run_worker, args=(MemoryWorker, sink_settings),
        kwargs={"stop_event": stop, "metrics_port": port, "batch_timeout_s": 0.1},
    )
    thread.start()
    try:
        def scraped() -> str:
            try:
                return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
            except OSError:
                return ""

        line = 'eventsink_worker_events_processed_total{worker="memory"} 3.0'
        wait_for(lambda: line in scraped(), 15, what="processed=3 on /metrics")
        text = scraped()
        assert "eventsink_worker_batch_seconds_count" in text and "eventsink_worker_lag_seconds" in text
    finally:
        stop.set()
        thread.join(20)
    assert not thread.is_alive()


def _listening_addresses(port: int) -> list[str]:
    return [str(c.laddr.ip) for c in psutil.Process().net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port]


@pytest.mark.parametrize(("configured", "expected"), [(None, "127.0.0.1"), ("0.0.0.0", "0.0.0.0")])
def test_worker_metrics_listen_on_loopback_unless_an_address_is_configured(
    sink_settings: SinkSettings, monkeypatch: pytest.MonkeyPatch, configured: str | None, expected: str
) -> None:
    # Given EVENTSINK_MEMORY_METRICS_ADDRESS unset (only this host may scrape), or set to every interface
    monkeypatch.delenv("EVENTSINK_MEMORY_METRICS_ADDRESS", raising=False)
    if configured is not None:
        monkeypatch.setenv("EVENTSINK_MEMORY_METRICS_ADDRESS", configured)
    port, stop = _free_port(), threading.Event()
    thread = threading.Thread(target=run_worker, args=(MemoryWorker, sink_settings),
                              kwargs={"stop_event": stop, "metrics_port": port})
    thread.start()
    try:
        # When the worker serves /metrics, then it listens on that address alone
        wait_for(lambda: _listening_addresses(port) != [], 15, what="the metrics port listening")
        assert _listening_addresses(port) == [expected]
    finally:
        stop.set()
        thread.join(20)
    assert not thread.is_alive()


@pytest.mark.disruptive
@pytest.mark.slow
def test_worker_resumes_after_a_broker_restart(sink_settings: SinkSettings) -> None:
    first, pending = [make_event() for _ in range(5)], [make_event() for _ in range(5)]
    publish(sink_settings, "memory", first)
    plugin = memory()
    with running(plugin, sink_settings) as worker:
        wait_for(lambda: len(plugin.stored) == 5, 30)
        # Given a batch held unacked in memory (its destination is down) ...
        plugin.down = True
        publish(sink_settings, "memory", pending)
        wait_for(lambda: any(pending[0]["id"] in ids for ids in plugin.writes), 30, what="the pending batch tried")
        # When the broker restarts under the worker
        try:
            stop_rabbitmq()
            wait_for(lambda: worker.metric("eventsink_worker_reconnects_total") >= 1, 30, what="the drop noticed")
        finally:
            start_rabbitmq()
        plugin.down = False
        # Then it reconnects by itself: the batch it held is redelivered, and new events flow
        later = [make_event() for _ in range(5)]
        publish(sink_settings, "memory", later)
        wait_for(lambda: len(plugin.stored) == 15, 60, what="every event after the restart")
    assert plugin.stored_ids() == {e["id"] for e in [*first, *pending, *later]}
    assert queue_depth(dead_queue_name(sink_settings.exchange, "memory")) == 0
    assert plugin.opened == 1


def test_refused_credentials_stop_the_worker_without_leaking_the_password(
    sink_settings: SinkSettings, caplog: pytest.LogCaptureFixture
) -> None:
    from sink_lib.errors import BrokerError

    caplog.set_level(logging.DEBUG, logger="workers")
    bad = sink_settings.model_copy(update={"amqp_url": "amqp://guest:s3cret-pw@localhost:5672/%2F"})
    with pytest.raises(BrokerError, match="refused") as info:
        run_worker(MemoryWorker, bad, stop_event=threading.Event())
    assert "s3cret-pw" not in str(info.value)
    assert "s3cret-pw" not in caplog.text


def test_unreachable_broker_is_retried_until_stopped(
    sink_settings: SinkSettings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="workers")
    away = sink_settings.model_copy(
        update={"amqp_url": "amqp://guest:hidden-pw@127.0.0.1:1/%2F", "reconnect_min_s": 0.05, "reconnect_max_s": 0.1}
    )
    plugin = memory()
    with running(plugin, away) as worker:
        wait_for(lambda: worker.metric("eventsink_worker_reconnects_total") >= 3, 30, what="three reconnects")
    assert plugin.opened == 1 and plugin.closed == 1
    assert "reconnecting" in caplog.text and "hidden-pw" not in caplog.text


@pytest.mark.slow
def test_poison_message_that_crashes_the_worker_ends_in_the_dead_letter_queue(
    sink_settings: SinkSettings,
) -> None:
    from workers.runtime.deadqueue import list_dead

    from .helpers import RunningWorker
    from .plugins import PoisonWorker

    # Given an event that makes the worker crash every time it is delivered
    poison = make_event(file_id="p", bytes=1, poison=True)
    publish(sink_settings, "memory", [poison])
    # When the worker is restarted after each crash (as a supervisor would)
    crashes = 0
    for _ in range(sink_settings.delivery_limit + 2):
        if queue_depth(dead_queue_name(sink_settings.exchange, "memory")):
            break
        plugin = build_plugin(PoisonWorker, batch_timeout_s=0.05)
        handle = RunningWorker(plugin, sink_settings)
        handle.thread.start()
        handle.thread.join(20)
        assert isinstance(handle.error, RuntimeError)
        crashes += 1
        wait_for(lambda: queue_depth(queue_name(sink_settings.exchange, "memory"))
                 + queue_depth(dead_queue_name(sink_settings.exchange, "memory")) == 1, 10)
    # Then after the quorum delivery limit the broker dead-letters it, and `dead list` says why
    (letter,) = list_dead(sink_settings, "memory")
    assert letter.id == poison["id"] and "delivery_limit" in letter.reason
    assert crashes > sink_settings.delivery_limit


def test_worker_redeclares_its_queue_when_it_is_deleted_under_it(sink_settings: SinkSettings) -> None:
    import pika

    publish(sink_settings, "memory", [make_event()])
    plugin = memory()
    with running(plugin, sink_settings) as worker:
        wait_for(lambda: len(plugin.stored) == 1, 30)
        # When an operator deletes the queue while the worker consumes it
        connection = pika.BlockingConnection(pika.URLParameters(sink_settings.amqp_url))
        connection.channel().queue_delete(queue_name(sink_settings.exchange, "memory"))
        connection.close()
        wait_for(lambda: worker.metric("eventsink_worker_reconnects_total") >= 1, 30, what="the cancel noticed")
        # Then the worker declares it again and events published afterwards are written
        later = make_event()
        wait_for(lambda: _exists(sink_settings, queue_name(sink_settings.exchange, "memory")), 30)
        publish(sink_settings, "memory", [later])
        wait_for(lambda: later["id"] in plugin.stored_ids(), 30, what="the later event written")


def _exists(settings: SinkSettings, queue: str) -> bool:
    try:
        queue_depth(queue)
    except Exception:
        return False
    return True


def test_metrics_port_in_use_is_a_configuration_error_naming_the_variable(sink_settings: SinkSettings) -> None:
    from sink_lib.errors import ConfigurationError

    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ConfigurationError, match="EVENTSINK_MEMORY_METRICS_PORT"):
            run_worker(MemoryWorker, sink_settings, stop_event=threading.Event(), metrics_port=port)
