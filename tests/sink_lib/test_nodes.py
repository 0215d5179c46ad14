"""EVENTSINK_AMQP_URL as a list of nodes: parsing, errors, failover order, shuffling, redaction."""

from __future__ import annotations

import random

import pika
import pytest

from sink_lib import ConfigurationError, SinkSettings
from sink_lib.nodes import BrokerNodes, node_label, redact_url, split_amqp_urls
from sink_lib.topology import queue_arguments

A, B, C = (f"amqp://u:secret@mq{n}:5672/%2F" for n in (1, 2, 3))


def test_a_list_is_split_and_trimmed() -> None:
    assert split_amqp_urls(f"{A}, {B} ,{C}") == [A, B, C]
    assert split_amqp_urls(A) == [A]


@pytest.mark.parametrize(("value", "reason"), [
    (f"{A},,{B}", "URL 2 of the list is empty"),
    (f"{A},http://mq2/", "URL 2 (http://mq2/) must start with amqp:// or amqps://"),
    ("amqp://u:secret@mq1:notaport/", "URL 1 (amqp://u:***@mq1:notaport/) is not valid"),
    ("amqp:///%2F", "URL 1 (amqp:///%2F) names no host"),
    ("", "no RabbitMQ URL given"),
])
def test_bad_lists_are_refused_naming_the_entry_and_hiding_passwords(value: str, reason: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        SinkSettings.load(amqp_url=value)
    assert "EVENTSINK_AMQP_URL" in str(caught.value) and reason in str(caught.value)
    assert "secret" not in str(caught.value)


def test_redaction_covers_every_url_of_a_list() -> None:
    assert redact_url(f"{A},{B}") == "amqp://u:***@mq1:5672/%2F,amqp://u:***@mq2:5672/%2F"
    assert node_label("amqps://u:p@mq9/%2F") == "mq9:5671" and node_label(A) == "mq1:5672"


def test_nodes_fail_over_in_turn_and_report_a_full_round() -> None:
    nodes = BrokerNodes(f"{A},{B},{C}", shuffle=False)
    assert nodes.current == A
    assert nodes.failed() is False and nodes.current == B
    assert nodes.failed() is False and nodes.current == C
    assert nodes.failed() is True and nodes.current == A  # every node failed in a row: back off now
    nodes.failed()
    nodes.succeeded()  # B answered: a new round starts
    assert nodes.failed() is False and nodes.failed() is False and nodes.failed() is True


def test_connect_uses_the_first_node_that_answers() -> None:
    nodes = BrokerNodes(f"{A},{B},{C}", shuffle=False)
    tried: list[str] = []

    def attempt(url: str) -> str:
        tried.append(url)
        if url != C:
            raise OSError("refused")
        return "connected"

    assert nodes.connect(attempt, (OSError,)) == "connected"
    assert tried == [A, B, C] and nodes.current == C
    tried.clear()
    assert nodes.connect(attempt, (OSError,)) == "connected"
    assert tried == [C]  # stays on the node that works


def test_connect_raises_the_last_error_when_no_node_answers() -> None:
    nodes = BrokerNodes(f"{A},{B}", shuffle=False)

    def attempt(url: str) -> str:
        raise OSError(f"refused by {url}")

    with pytest.raises(OSError, match="mq"):
        nodes.connect(attempt, (OSError,))


def test_shuffling_spreads_clients_over_the_nodes() -> None:
    rng = random.Random(7)
    firsts = {BrokerNodes(f"{A},{B},{C}", rng=rng).current for _ in range(60)}
    assert firsts == {A, B, C}
    assert {BrokerNodes(f"{A},{B},{C}", shuffle=False).current for _ in range(10)} == {A}


def test_quorum_queues_get_three_replicas_with_three_nodes_listed() -> None:
    three = SinkSettings(amqp_url=f"{A},{B},{C}")
    assert queue_arguments(three, "w")["x-quorum-initial-group-size"] == 3
    assert "x-quorum-initial-group-size" not in queue_arguments(SinkSettings(amqp_url=A), "w")
    assert queue_arguments(SinkSettings(amqp_url=A, quorum_group_size=5), "w")["x-quorum-initial-group-size"] == 5
    classic = SinkSettings(amqp_url=f"{A},{B},{C}", queue_type="classic")
    assert "x-quorum-initial-group-size" not in queue_arguments(classic, "w")


def test_each_url_of_the_list_is_a_valid_pika_url() -> None:
    for url in split_amqp_urls(f"{A},{B}"):
        assert pika.URLParameters(url).host in ("mq1", "mq2")
