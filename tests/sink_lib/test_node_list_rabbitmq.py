"""Every client takes a list of nodes and gets past the ones that do not answer (real broker)."""

from __future__ import annotations

import json
import socket

import pytest
from click.testing import CliRunner

from sink_lib import AsyncEventSink, EventSink, SinkSettings
from sink_lib.cli import main
from sink_lib.topology import declare, queue_name
from tests.support import drain_queue

pytestmark = pytest.mark.rabbitmq


def dead_url() -> str:
    """A URL where nothing listens (a port just released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"amqp://guest:secret-pw@127.0.0.1:{port}/%2F"


def listed(settings: SinkSettings) -> SinkSettings:
    """The settings with a dead node listed before the real one, in that order."""
    return settings.model_copy(update={"amqp_url": f"{dead_url()},{settings.amqp_url}", "amqp_shuffle": False})


def test_sync_sink_skips_a_dead_node_and_says_which_node_it_uses(sink_settings: SinkSettings) -> None:
    settings = listed(sink_settings)
    declare(settings, ["alpha"])
    with EventSink(settings) as sink:
        ids = [sink.enqueue("storage.file.deleted", {"file_id": f"f{i}", "bytes": i}).id for i in range(10)]
        assert sink.flush(30)
        stats = sink.stats()
    assert stats["confirmed"] == 10 and stats["spooled"] == 0
    got = drain_queue(queue_name(settings.exchange, "alpha"), expect=10)
    assert [json.loads(body)["id"] for _, _, body in got] == ids


async def test_async_sink_skips_a_dead_node(sink_settings: SinkSettings) -> None:
    settings = listed(sink_settings)
    declare(settings, ["alpha"])
    async with AsyncEventSink(settings=settings) as sink:
        event = await sink.publish("storage.file.deleted", {"file_id": "f1", "bytes": 1})
        stats = sink.stats()
        assert sink.node is not None and sink.node.startswith("localhost:")
    assert stats["confirmed"] == 1 and stats["spooled"] == 0
    [(_, _, body)] = drain_queue(queue_name(settings.exchange, "alpha"), expect=1)
    assert json.loads(body)["id"] == event.id


def test_cli_topology_and_status_skip_a_dead_node_and_hide_passwords(sink_settings: SinkSettings) -> None:
    settings = listed(sink_settings)
    env = {"EVENTSINK_AMQP_URL": settings.amqp_url, "EVENTSINK_AMQP_SHUFFLE": "false",
           "EVENTSINK_EXCHANGE": settings.exchange, "EVENTSINK_SPOOL_DIR": str(settings.spool_dir)}
    declared = CliRunner().invoke(main, ["topology", "declare", "--worker", "alpha"], env=env)
    assert declared.exit_code == 0, declared.output
    assert queue_name(settings.exchange, "alpha") in declared.output
    status = CliRunner().invoke(main, ["status"], env=env)
    assert status.exit_code == 0, status.output
    assert "secret-pw" not in declared.output + status.output


def test_no_node_answering_is_one_clear_error(sink_settings: SinkSettings) -> None:
    env = {"EVENTSINK_AMQP_URL": f"{dead_url()},{dead_url()}", "EVENTSINK_EXCHANGE": sink_settings.exchange}
    result = CliRunner().invoke(main, ["topology", "declare", "--worker", "alpha"], env=env)
    assert result.exit_code != 0
    assert "cannot connect to RabbitMQ" in result.output and "secret-pw" not in result.output
