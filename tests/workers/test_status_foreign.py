"""``eventsink status`` lists queues bound to the exchange that are not EventSink's and have no consumer.

The leftover queues are made the way older Clowder publishers make them: for every event a new
channel declares a durable server-named queue, binds it to the exchange and publishes.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pika
import pytest
from click.testing import CliRunner

from sink_lib.cli import main
from sink_lib.errors import BrokerError
from sink_lib.foreign import foreign_queues, management_url
from sink_lib.settings import SinkSettings
from sink_lib.topology import declare_exchange, declare_worker, queue_name
from tests.support import wait_for
from tests.workers import clowder_messages as cm

pytestmark = pytest.mark.rabbitmq


def publish_like_old_clowder(settings: SinkSettings, messages: list[dict[str, Any]]) -> list[str]:
    """Publish each message as Clowder's submit() did with an empty queue name; the queues it leaves."""
    connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    names = []
    try:
        for message in messages:
            channel = connection.channel()
            channel.exchange_declare(settings.exchange, exchange_type="fanout", durable=True)
            queue = channel.queue_declare("", durable=True, exclusive=False, auto_delete=False).method.queue
            channel.queue_bind(queue, settings.exchange, routing_key="")
            channel.basic_publish(settings.exchange, "", cm.body(message))
            names.append(queue)
    finally:
        connection.close()
    return names


@pytest.fixture
def leftovers(sink_settings: SinkSettings) -> Iterator[list[str]]:
    """Names of the server-named queues a test leaves; deleted afterwards."""
    names: list[str] = []
    yield names
    connection = pika.BlockingConnection(pika.URLParameters(sink_settings.amqp_url))
    try:
        channel = connection.channel()
        for name in names:
            channel.queue_delete(name)
    finally:
        connection.close()


def test_status_lists_unconsumed_foreign_queues_with_their_depth(
    sink_settings: SinkSettings, leftovers: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given EventSink's queue of a worker, and three events sent the way older Clowder sends them
    connection = pika.BlockingConnection(pika.URLParameters(sink_settings.amqp_url))
    channel = connection.channel()
    declare_exchange(channel, sink_settings)
    declare_worker(channel, sink_settings, "memory")
    leftovers += publish_like_old_clowder(sink_settings, [cm.login(), cm.signup(), cm.view("file")])
    # and one more foreign queue that someone consumes
    consumed = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(consumed, sink_settings.exchange)
    channel.basic_consume(consumed, lambda *_: None, auto_ack=True)
    try:
        # Then each leftover queue is listed with the events it caught (the first saw all three)
        expected = {leftovers[0]: 3, leftovers[1]: 2, leftovers[2]: 1}
        wait_for(lambda: {q.queue: q.messages for q in foreign_queues(sink_settings)} == expected, 60, 0.5,
                 what="the management API to report the leftover queues' depths")
        # and the command shows them after the worker table; the consumed and EventSink's queues are not listed
        monkeypatch.setenv("EVENTSINK_AMQP_URL", sink_settings.amqp_url)
        monkeypatch.setenv("EVENTSINK_EXCHANGE", sink_settings.exchange)
        result = CliRunner().invoke(main, ["status", "--worker", "memory"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        lines = result.output.splitlines()
        start = next(i for i, line in enumerate(lines) if "other queue(s) bound to" in line)
        assert lines[start].startswith("3 other queue(s)")
        section = lines[start + 2:]
        section = section[:section.index("")] if "" in section else section  # up to the next section
        listed = {line.split()[0]: int(line.split()[1]) for line in section}
        assert listed == expected
        assert consumed not in result.output
        assert result.output.count(queue_name(sink_settings.exchange, "memory")) == 1  # in the worker table only
        # the JSON of the worker queues keeps its shape
        rows = json.loads(CliRunner().invoke(main, ["status", "--worker", "memory", "--json"]).output)
        assert [r["worker"] for r in rows] == ["memory"]
    finally:
        connection.close()


def test_an_unreachable_management_api_is_a_note_not_a_failure(
    sink_settings: SinkSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVENTSINK_AMQP_URL", sink_settings.amqp_url)
    monkeypatch.setenv("EVENTSINK_EXCHANGE", sink_settings.exchange)
    monkeypatch.setenv("EVENTSINK_MANAGEMENT_URL", "http://guest:guest@127.0.0.1:9")
    result = CliRunner().invoke(main, ["status", "--worker", "memory"])
    assert result.exit_code == 0
    assert "not checked" in result.output and "EVENTSINK_MANAGEMENT_URL" in result.output
    with pytest.raises(BrokerError, match="not reachable"):
        foreign_queues(SinkSettings(amqp_url=sink_settings.amqp_url, management_url="http://127.0.0.1:9"))


def test_the_management_url_defaults_to_the_amqp_host_and_credentials() -> None:
    settings = SinkSettings(amqp_url="amqp://ann:s%40cret@rabbit.example:5672/%2F,amqp://other:5672")
    assert management_url(settings) == "http://ann:s%40cret@rabbit.example:15672"
    assert management_url(SinkSettings(management_url="https://m.example/")) == "https://m.example"


def test_the_readme_policy_expires_unused_server_named_queues() -> None:
    # Given the README's policy, applied in a throw-away virtual host with a short expiry
    if subprocess.run(["rabbitmqctl", "status"], capture_output=True, timeout=60).returncode != 0:
        pytest.skip("rabbitmqctl cannot reach the local broker")
    vhost = f"test_{uuid.uuid4().hex[:8]}"
    ctl = ["rabbitmqctl", "-q"]
    subprocess.run([*ctl, "add_vhost", vhost], check=True, timeout=60)
    try:
        subprocess.run([*ctl, "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"], check=True, timeout=60)
        subprocess.run([*ctl, "set_policy", "-p", vhost, "--apply-to", "queues", "clowder-leftovers",
                        r"^amq\.gen-", '{"expires":1000}'], check=True, timeout=60)
        url = f"amqp://guest:guest@localhost:5672/{vhost}"
        connection = pika.BlockingConnection(pika.URLParameters(url))
        try:
            leftover = connection.channel().queue_declare("", durable=True).method.queue
            named = connection.channel().queue_declare("clowder.metrics.influxdb", durable=True).method.queue
        finally:
            connection.close()

        def exists(queue: str) -> bool:  # not a passive declare: declaring would renew the queue's lease
            out = subprocess.run([*ctl, "list_queues", "-p", vhost, "name", "--no-table-headers"],
                                 capture_output=True, text=True, timeout=60).stdout
            return queue in out.split()

        # Then the unused server-named queue goes away, and a named queue stays
        wait_for(lambda: not exists(leftover), 60, 0.5, what="the leftover queue to expire")
        assert exists(named)
    finally:
        subprocess.run([*ctl, "delete_vhost", vhost], timeout=60)
