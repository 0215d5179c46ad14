"""``eventsink worker``, ``status`` and ``dead`` through click's CliRunner against the real broker."""

from __future__ import annotations

import json
from typing import Any

import pika
import pytest
from click.testing import CliRunner, Result

from sink_lib.cli import main
from sink_lib.settings import SinkSettings
from sink_lib.topology import dead_exchange_name, dead_queue_name, queue_name
from tests.support import drain_queue, queue_depth, wait_for
from workers.runtime import build_plugin, dead_letter_properties

from .helpers import body_of, make_event, publish, running
from .plugins import MemoryWorker


@pytest.fixture
def cli(sink_settings: SinkSettings, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("EVENTSINK_AMQP_URL", sink_settings.amqp_url)
    monkeypatch.setenv("EVENTSINK_EXCHANGE", sink_settings.exchange)

    def invoke(*args: str) -> Result:
        result = CliRunner().invoke(main, list(args), catch_exceptions=False)
        return result

    return invoke


def put_dead(settings: SinkSettings, worker: str, letters: list[tuple[dict[str, Any], str]]) -> None:
    """Declare the worker's queues and put events in its dead-letter queue with reasons."""
    publish(settings, worker, [])
    connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        for event, reason in letters:
            props = dead_letter_properties(
                pika.BasicProperties(message_id=event["id"], type=event["type"]), worker, reason
            )
            channel.basic_publish(dead_exchange_name(settings.exchange), worker, body_of(event), props)
    finally:
        connection.close()


def test_worker_list_shows_installed_plugins_with_descriptions() -> None:
    result = CliRunner().invoke(main, ["worker", "list"])
    assert result.exit_code == 0
    line = next(row for row in result.output.splitlines() if row.startswith("discard "))
    assert "yes" in line and "Counts and drops every event" in line


def test_worker_run_unknown_name_is_a_clear_error() -> None:
    result = CliRunner().invoke(main, ["worker", "run", "nosuch"])
    assert result.exit_code == 1 and "installed:" in result.output


@pytest.mark.rabbitmq
def test_status_shows_depth_consumers_and_dead_letters(sink_settings: SinkSettings, cli: Any) -> None:
    publish(sink_settings, "memory", [make_event() for _ in range(3)])
    put_dead(sink_settings, "memory", [(make_event(), "bad")])
    result = cli("status", "--worker", "memory", "--worker", "absent", "--json", "--interval", "0")
    assert result.exit_code == 0, result.output
    rows = {row["worker"]: row for row in json.loads(result.stdout)}
    assert rows["memory"]["messages"] == 3 and rows["memory"]["consumers"] == 0
    assert rows["memory"]["dead_letters"] == 1
    assert rows["absent"]["messages"] is None
    table = cli("status", "--worker", "memory", "--interval", "0").stdout.splitlines()
    assert table[0].split() == ["WORKER", "QUEUE", "MESSAGES", "CONSUMERS", "DEAD"]
    assert table[1].split() == ["memory", queue_name(sink_settings.exchange, "memory"), "3", "0", "1"]


@pytest.mark.rabbitmq
def test_dead_list_shows_reasons_and_leaves_the_letters(sink_settings: SinkSettings, cli: Any) -> None:
    letters = [(make_event(), "field type conflict"), (make_event("health.status", service="a", state="up"), "no")]
    put_dead(sink_settings, "memory", letters)
    for _ in range(2):  # listing twice shows the same: nothing is consumed
        result = cli("dead", "list", "memory", "--json")
        assert result.exit_code == 0, result.output
        shown = {row["id"]: row for row in json.loads(result.output)}
        assert {i: r["reason"] for i, r in shown.items()} == {e["id"]: reason for e, reason in letters}
        assert all(r["failed_at"].endswith("Z") for r in shown.values())
    assert queue_depth(dead_queue_name(sink_settings.exchange, "memory")) == 2
    table = cli("dead", "list", "memory", "--limit", "1").output
    assert letters[0][0]["id"] in table and "field type conflict" in table and letters[1][0]["id"] not in table


@pytest.mark.rabbitmq
def test_dead_replay_moves_matching_letters_to_the_live_queue(sink_settings: SinkSettings, cli: Any) -> None:
    storage = [make_event() for _ in range(3)]
    health = make_event("health.status", service="a", state="up")
    put_dead(sink_settings, "memory", [(e, "bad") for e in [*storage, health]])
    live, dead = queue_name(sink_settings.exchange, "memory"), dead_queue_name(sink_settings.exchange, "memory")
    # When only the health event is replayed
    result = cli("dead", "replay", "memory", "--type", "health.*")
    assert result.exit_code == 0 and "replayed 1" in result.output
    moved = drain_queue(live, expect=1, timeout=30)
    assert [props.message_id for _, props, _ in moved] == [health["id"]]
    assert "x-eventsink-reason" not in (moved[0][1].headers or {})
    assert queue_depth(dead) == 3
    # When one id is replayed, then the rest with a limit
    assert "replayed 1" in cli("dead", "replay", "memory", "--id", storage[1]["id"]).output
    assert [p.message_id for _, p, _ in drain_queue(live, expect=1, timeout=30)] == [storage[1]["id"]]
    assert "replayed 1" in cli("dead", "replay", "memory", "--limit", "1").output
    assert queue_depth(dead) == 1
    assert "replayed 1" in cli("dead", "replay", "memory").output
    assert queue_depth(dead) == 0
    assert cli("dead", "list", "memory").output.strip() == "no dead letters for worker memory"


@pytest.mark.rabbitmq
def test_rejected_event_replayed_after_a_fix_is_written(sink_settings: SinkSettings, cli: Any) -> None:
    # Given an event the destination refused
    event = make_event()
    publish(sink_settings, "memory", [event])
    plugin = build_plugin(MemoryWorker, batch_timeout_s=0.1)
    assert isinstance(plugin, MemoryWorker)
    plugin.reject = {event["id"]: "schema mismatch"}
    with running(plugin, sink_settings):
        wait_for(lambda: queue_depth(dead_queue_name(sink_settings.exchange, "memory")) == 1, 30)
        assert "schema mismatch" in cli("dead", "list", "memory").output
        # When the destination is fixed and the dead letter replayed
        plugin.reject = {}
        assert "replayed 1" in cli("dead", "replay", "memory").output
        # Then the worker writes it
        wait_for(lambda: event["id"] in plugin.stored_ids(), 30, what="the replayed event written")


@pytest.mark.rabbitmq
def test_dead_list_of_an_undeclared_worker_is_an_error(cli: Any) -> None:
    result = CliRunner().invoke(main, ["dead", "list", "never_declared"])
    assert result.exit_code == 1 and "no dead-letter queue" in result.output
