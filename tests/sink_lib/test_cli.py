"""The eventsink CLI commands of sink_lib: schema, emit, topology declare, help."""

from __future__ import annotations

import json
from pathlib import Path

import pika
import pytest
from click.testing import CliRunner

from sink_lib.cli import LAZY_COMMANDS, main
from sink_lib.settings import SinkSettings
from sink_lib.spool import Spool
from sink_lib.topology import dead_queue_name, queue_name
from tests.support import drain_queue


def settings_env(settings: SinkSettings) -> dict[str, str]:
    return {"EVENTSINK_AMQP_URL": settings.amqp_url, "EVENTSINK_EXCHANGE": settings.exchange,
            "EVENTSINK_SPOOL_DIR": str(settings.spool_dir)}


def test_every_command_has_help():
    runner = CliRunner()
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0
    for name in ["emit", "schema", "topology", *LAZY_COMMANDS]:
        assert name in result.output
        sub = runner.invoke(main, [name, "--help"])
        assert sub.exit_code == 0, (name, sub.output)
        assert "Usage:" in sub.output


def test_schema_prints_json_schema_of_one_or_all_types():
    runner = CliRunner()
    one = json.loads(runner.invoke(main, ["schema", "health.http"]).output)
    assert one["title"] == "health.http" and "ttfb_ms" in one["properties"]
    everything = json.loads(runner.invoke(main, ["schema"]).output)
    assert "storage.file.uploaded" in everything
    unknown = runner.invoke(main, ["schema", "no.such.type"])
    assert unknown.exit_code != 0 and "unknown event type" in unknown.output


def test_emit_refuses_bad_json_and_invalid_data(tmp_path: Path):
    # Given no broker at all (refusals happen before anything is sent or spooled)
    runner = CliRunner()
    env = {"EVENTSINK_AMQP_URL": "amqp://guest:guest@127.0.0.1:1/%2F", "EVENTSINK_SPOOL_DIR": str(tmp_path)}
    bad_json = runner.invoke(main, ["emit", "storage.file.uploaded", "{nope"], env=env)
    assert bad_json.exit_code == 2 and "not JSON" in bad_json.output
    invalid = runner.invoke(main, ["emit", "storage.file.uploaded", '{"file_id": "f"}'], env=env)
    assert invalid.exit_code == 1 and "data.bytes" in invalid.output
    assert Spool(tmp_path, 1 << 20).count() == 0


def test_bad_configuration_names_the_variable():
    result = CliRunner().invoke(main, ["emit", "a.b", "{}"], env={"EVENTSINK_CONFIRM_WINDOW": "many"})
    assert result.exit_code == 1 and "EVENTSINK_CONFIRM_WINDOW" in result.output


@pytest.mark.rabbitmq
def test_topology_declare_is_idempotent_and_emit_publishes(sink_settings: SinkSettings):
    runner = CliRunner()
    env = settings_env(sink_settings)
    for _ in range(2):
        result = runner.invoke(main, ["topology", "declare", "--worker", "alpha", "--worker", "beta"], env=env)
        assert result.exit_code == 0, result.output
    assert f"queue {queue_name(sink_settings.exchange, 'alpha')} (quorum" in result.output
    # the queues have the contract's arguments: quorum, dead letters, delivery limit
    conn = pika.BlockingConnection(pika.URLParameters(sink_settings.amqp_url))
    try:
        ch = conn.channel()
        ch.queue_declare(queue_name(sink_settings.exchange, "alpha"), durable=True, arguments={
            "x-queue-type": "quorum", "x-dead-letter-exchange": f"{sink_settings.exchange}.dead",
            "x-dead-letter-routing-key": "alpha", "x-delivery-limit": 5})  # same args: no error
        ch.queue_declare(dead_queue_name(sink_settings.exchange, "alpha"), passive=True)
    finally:
        conn.close()
    emitted = runner.invoke(main, ["emit", "storage.file.uploaded", '{"file_id": "f1", "bytes": 10}',
                                   "--userid", "u1"], env=env)
    assert emitted.exit_code == 0, emitted.output
    event_id = emitted.output.strip().splitlines()[-1]
    got = drain_queue(queue_name(sink_settings.exchange, "beta"), expect=1)
    assert json.loads(got[0][2])["id"] == event_id


@pytest.mark.rabbitmq
def test_topology_declare_reports_conflicting_queue(sink_settings: SinkSettings):
    conn = pika.BlockingConnection(pika.URLParameters(sink_settings.amqp_url))
    try:
        conn.channel().queue_declare(queue_name(sink_settings.exchange, "alpha"), durable=True)  # classic
    finally:
        conn.close()
    result = CliRunner().invoke(main, ["topology", "declare", "--worker", "alpha"], env=settings_env(sink_settings))
    assert result.exit_code == 1
    assert "alpha" in result.output and "arguments" in result.output
