"""The API's main promises with the real EventSink behind it (not the fake): a 202 means every event
is broker-confirmed or durably spooled when the answer leaves; a broker that does not confirm in time
is a 503 with Retry-After; a broker that is away means spooled events and 202, until the spool is full."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest
from flask.testing import FlaskClient

from emergency_api import ApiSettings, create_app
from sink_lib import EventSink, SinkSettings
from sink_lib.spool import Spool
from tests.sink_lib.test_sink_offline import Blackhole
from tests.support import drain_queue, wait_for

from .helpers import assert_problem

NOWHERE = "amqp://guest:guest@127.0.0.1:1/%2F"  # nothing listens on port 1: connections are refused


def events(count: int) -> list[dict]:
    return [{"type": "health.status", "data": {"service": f"s{i}", "state": "down"}} for i in range(count)]


def post(client: FlaskClient, key: str, body: object):
    return client.post("/api/v1/events", json=body, headers={"X-API-Key": key})


@pytest.fixture
def real_client(api_settings: ApiSettings) -> Iterator[tuple[FlaskClient, list[EventSink]]]:
    """Builds test clients of apps over real EventSinks; closes the sinks afterwards."""
    sinks: list[EventSink] = []

    def make(sink_settings: SinkSettings, **api_overrides: object) -> tuple[FlaskClient, EventSink]:
        sink = EventSink(settings=sink_settings)
        sinks.append(sink)
        settings = api_settings.model_copy(update=api_overrides)
        return create_app(settings, sink=sink).test_client(), sink

    yield make  # type: ignore[misc]
    for sink in sinks:
        sink.close(1)


@pytest.mark.rabbitmq
def test_202_means_every_event_is_confirmed_by_the_broker(
    real_client, sink_settings: SinkSettings, exchange: str, health_key: str
) -> None:
    # Given the API over a real EventSink and a queue bound to its exchange
    conn = pika.BlockingConnection(pika.URLParameters(sink_settings.amqp_url))
    channel = conn.channel()
    channel.exchange_declare(exchange, exchange_type="fanout", durable=True)
    queue = f"{exchange}.api_real"
    channel.queue_declare(queue, durable=True)
    channel.queue_bind(queue, exchange)
    conn.close()
    client, sink = real_client(sink_settings)
    # When a batch of 20 is posted
    response = post(client, health_key, events(20))
    # Then, the moment the 202 arrives, the broker has confirmed all 20 (nothing spooled)
    assert response.status_code == 202, response.get_data(as_text=True)
    stats = sink.stats()
    assert stats["confirmed"] == 20 and stats["spooled"] == 0
    # and the queue holds exactly the ids of the answer
    delivered = [json.loads(body)["id"] for _, _, body in drain_queue(queue, expect=20, timeout=30)]
    assert sorted(delivered) == sorted(response.get_json()["ids"])


def test_503_with_retry_after_when_the_broker_does_not_confirm_in_time(
    real_client, spool_dir: Path, health_key: str
) -> None:
    # Given a broker that accepts the connection and never answers (no confirm, and no refusal to spool on)
    hole = Blackhole()
    url = f"amqp://guest:guest@127.0.0.1:{hole.port}/%2F?connection_attempts=1&socket_timeout=300&stack_timeout=300"
    try:
        client, sink = real_client(SinkSettings(amqp_url=url, exchange="hang", spool_dir=spool_dir),
                                   publish_timeout_s=0.5, retry_after_s=7)
        # When an event is posted
        response = post(client, health_key, events(1))
        # Then the answer is 503 (never 202), telling the client when to retry
        problem = assert_problem(response, 503)
        assert "not confirmed or spooled in time" in problem["detail"]
        assert response.headers["Retry-After"] == "7"
        assert hole.accepted >= 1 and sink.stats()["confirmed"] == 0
    finally:
        hole.close()


def test_broker_away_events_are_spooled_before_the_202(real_client, spool_dir: Path, health_key: str) -> None:
    # Given a broker that refuses connections
    client, sink = real_client(SinkSettings(amqp_url=NOWHERE, exchange="away", spool_dir=spool_dir,
                                            reconnect_min_s=30, reconnect_max_s=30))
    # When 5 events are posted
    response = post(client, health_key, events(5))
    # Then the 202 comes with all 5 already durable in the spool, under the ids answered
    assert response.status_code == 202, response.get_data(as_text=True)
    assert sink.stats()["spooled"] == 5
    sink.close(1)
    spooled = [record.id for record in Spool(spool_dir, 1 << 20).claim(100)]
    assert sorted(spooled) == sorted(response.get_json()["ids"])


def test_broker_away_and_spool_full_is_503(real_client, spool_dir: Path, health_key: str) -> None:
    # Given a broker that refuses connections and a spool of 2 kB
    client, sink = real_client(SinkSettings(amqp_url=NOWHERE, exchange="away", spool_dir=spool_dir,
                                            spool_max_bytes=2048, reconnect_min_s=30, reconnect_max_s=30))
    # When more is posted than the spool holds
    answers = [post(client, health_key, events(5)) for _ in range(10)]
    # Then the first requests are 202 and, once the spool is full, 503 with Retry-After; nothing in between
    statuses = [a.status_code for a in answers]
    assert statuses[0] == 202 and statuses[-1] == 503, statuses
    assert statuses == sorted(statuses), statuses
    full = answers[-1]
    assert "spool cannot take more events" in assert_problem(full, 503)["detail"]
    assert full.headers["Retry-After"]
    wait_for(lambda: sink.stats()["spooled"] == 5 * statuses.count(202), timeout=10)
