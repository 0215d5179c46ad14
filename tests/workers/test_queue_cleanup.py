"""Queues of workers that do not run: ``eventsink status`` warns, ``eventsink topology delete`` removes."""

from __future__ import annotations

import json
from typing import Any

import pika
import pytest
from click.testing import CliRunner, Result

from sink_lib.cli import main
from sink_lib.settings import SinkSettings
from sink_lib.topology import dead_queue_name, queue_name, queue_status
from tests.support import RABBITMQ_URL, queue_depth, wait_for
from workers.idle_queues import idle_queues
from workers.runtime import build_plugin

from .helpers import body_of, make_event, publish, running
from .plugins import MemoryWorker
from .test_cli import put_dead

pytestmark = pytest.mark.rabbitmq


@pytest.fixture
def cli(sink_settings: SinkSettings, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("EVENTSINK_AMQP_URL", sink_settings.amqp_url)
    monkeypatch.setenv("EVENTSINK_EXCHANGE", sink_settings.exchange)

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(main, list(args), catch_exceptions=False)

    return invoke


def exists(settings: SinkSettings, worker: str) -> tuple[bool, bool]:
    (row,) = queue_status(settings, [worker])
    return row.messages is not None, row.dead_letters is not None


def to_queue(queue: str, event: dict[str, Any]) -> None:
    """Publish ``event`` to ``queue`` alone, through the default exchange."""
    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish("", queue, body_of(event), pika.BasicProperties(message_id=event["id"]))
    finally:
        connection.close()


def memory() -> MemoryWorker:
    plugin = build_plugin(MemoryWorker, batch_size=10, batch_timeout_s=0.1)
    assert isinstance(plugin, MemoryWorker)
    return plugin


# -- eventsink status ------------------------------------------------------------------------------

def test_a_queue_without_consumer_that_grows_between_readings_is_reported_growing(sink_settings: SinkSettings) -> None:
    # Given a queue nobody consumes, holding 3 events
    publish(sink_settings, "stopped", [make_event() for _ in range(3)])
    rows = queue_status(sink_settings, ["stopped"])

    # When 2 more events arrive between the two readings
    found = idle_queues(sink_settings, rows, 1.5,
                        wait=lambda _s: publish(sink_settings, "stopped", [make_event(), make_event()]))

    # Then the queue is reported as growing, with both ways out
    assert [(q.worker, q.before, q.after, q.growing) for q in found] == [("stopped", 3, 5, True)]
    line = found[0].warning(1.5)
    assert "grew from 3 to 5 messages in 1.5 s with no consumer" in line
    assert "eventsink worker run stopped" in line and "eventsink topology delete --worker stopped" in line


def test_queues_with_a_consumer_or_nothing_in_them_are_not_reported(sink_settings: SinkSettings) -> None:
    # Given an empty unconsumed queue, and a queue with a worker attached
    publish(sink_settings, "empty", [])
    publish(sink_settings, "memory", [])
    plugin = memory()
    with running(plugin, sink_settings):
        wait_for(lambda: queue_status(sink_settings, ["memory"])[0].consumers == 1, 30, what="a consumer")
        rows = queue_status(sink_settings, ["empty", "memory"])
        # When an event reaches the consumed queue alone between the readings
        found = idle_queues(sink_settings, rows, 1.0,
                            wait=lambda _s: to_queue(queue_name(sink_settings.exchange, "memory"), make_event()))
    # Then neither is reported
    assert found == []


def test_status_warns_on_stderr_and_keeps_stdout_parseable(sink_settings: SinkSettings, cli: Any) -> None:
    publish(sink_settings, "memory", [make_event() for _ in range(4)])
    result = cli("status", "--worker", "memory", "--json", "--interval", "0")
    assert result.exit_code == 0
    assert json.loads(result.stdout)[0]["messages"] == 4
    assert f"warning: queue {queue_name(sink_settings.exchange, 'memory')} holds 4 messages with no consumer" \
        in result.stderr
    assert "eventsink topology delete --worker memory" in result.stderr


# -- eventsink topology delete ---------------------------------------------------------------------

def test_delete_refuses_a_queue_holding_messages_or_dead_letters(sink_settings: SinkSettings, cli: Any) -> None:
    publish(sink_settings, "memory", [make_event() for _ in range(3)])
    put_dead(sink_settings, "memory", [(make_event(), "bad")])
    result = cli("topology", "delete", "--worker", "memory")
    assert result.exit_code == 1
    assert "3 message(s) not yet delivered" in result.stderr and "1 dead letter(s)" in result.stderr
    assert "--force" in result.stderr
    assert queue_depth(queue_name(sink_settings.exchange, "memory")) == 3
    assert queue_depth(dead_queue_name(sink_settings.exchange, "memory")) == 1


def test_delete_refuses_a_queue_with_a_consumer_even_when_empty(sink_settings: SinkSettings, cli: Any) -> None:
    publish(sink_settings, "memory", [])
    with running(memory(), sink_settings):
        wait_for(lambda: queue_status(sink_settings, ["memory"])[0].consumers == 1, 30, what="a consumer")
        result = cli("topology", "delete", "--worker", "memory")
        assert result.exit_code == 1 and "1 consumer(s) attached" in result.stderr
        assert exists(sink_settings, "memory") == (True, True)


def test_delete_removes_an_unused_empty_queue_and_its_dead_letter_queue(sink_settings: SinkSettings, cli: Any) -> None:
    publish(sink_settings, "memory", [])
    result = cli("topology", "delete", "--worker", "memory")
    assert result.exit_code == 0, result.output
    live, dead = queue_name(sink_settings.exchange, "memory"), dead_queue_name(sink_settings.exchange, "memory")
    assert result.stdout.splitlines() == [f"deleted queue {live} (0 message(s) dropped)",
                                          f"deleted queue {dead} (0 dead letter(s) dropped)"]
    assert exists(sink_settings, "memory") == (False, False)


def test_force_deletes_messages_and_dead_letters_and_says_how_many(sink_settings: SinkSettings, cli: Any) -> None:
    publish(sink_settings, "memory", [make_event() for _ in range(3)])
    put_dead(sink_settings, "memory", [(make_event(), "bad"), (make_event(), "worse")])
    result = cli("topology", "delete", "--worker", "memory", "--force")
    assert result.exit_code == 0, result.output
    assert "(3 message(s) dropped)" in result.stdout and "(2 dead letter(s) dropped)" in result.stdout
    assert exists(sink_settings, "memory") == (False, False)


def test_deleting_queues_that_do_not_exist_is_an_error_naming_them(sink_settings: SinkSettings, cli: Any) -> None:
    result = cli("topology", "delete", "--worker", "nosuch")
    assert result.exit_code == 1
    assert f"neither {queue_name(sink_settings.exchange, 'nosuch')} nor" in result.stderr
