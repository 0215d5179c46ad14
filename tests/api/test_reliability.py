"""A 202 is a promise: events posted while RabbitMQ is down are delivered once it is back,
even when the API process is killed -9 in between (the next start replays the spool)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from emergency_api.keys import create_key
from sink_lib.settings import SinkSettings
from tests.support import drain_queue, start_rabbitmq, stop_rabbitmq

from .server import ApiProcess
from .test_gunicorn import api_env, bind_queue

pytestmark = [pytest.mark.rabbitmq, pytest.mark.disruptive, pytest.mark.slow]


def post_all(api: ApiProcess, key: str, count: int, batch: int = 1) -> list[str]:
    """Post ``count`` events in requests of ``batch``; every request must be answered 202."""
    session = requests.Session()
    ids: list[str] = []
    for start in range(0, count, batch):
        events = [{"type": "health.status", "data": {"service": f"s{i}", "state": "down"}}
                  for i in range(start, min(start + batch, count))]
        response = session.post(api.url + "/api/v1/events", json=events, headers={"X-API-Key": key}, timeout=30)
        assert response.status_code == 202, response.text
        ids += response.json()["ids"]
    return ids


def delivered_ids(queue: str, expect: int) -> list[str]:
    return [json.loads(body)["id"] for _, _, body in drain_queue(queue, expect=expect, timeout=60)]


def test_events_posted_while_rabbitmq_is_down_are_delivered_after_it_returns(
    tmp_path: Path, sink_settings: SinkSettings, exchange: str
) -> None:
    # Given a running API and a queue bound to its exchange
    key = create_key(tmp_path / "keys.json", "monitor", ["health.*"])[1]
    queue = bind_queue(exchange)
    api = ApiProcess(api_env(tmp_path, sink_settings), tmp_path / "api.log")
    try:
        assert len(post_all(api, key, 3)) == 3
        assert len(delivered_ids(queue, 3)) == 3
        # When RabbitMQ stops and monitors keep posting
        stop_rabbitmq()
        try:
            ids = post_all(api, key, 30) + post_all(api, key, 40, batch=20)
            ready = requests.get(api.url + "/readyz", timeout=5)
            assert ready.status_code == 200  # the spool takes events
        finally:
            start_rabbitmq()
        # Then every event answered 202 arrives once the broker is back
        assert sorted(set(delivered_ids(queue, len(ids)))) == sorted(ids)
    finally:
        api.stop()


def test_a_killed_api_loses_none_of_its_202_events(
    tmp_path: Path, sink_settings: SinkSettings, exchange: str
) -> None:
    key = create_key(tmp_path / "keys.json", "monitor", ["health.*"])[1]
    queue = bind_queue(exchange)
    env = api_env(tmp_path, sink_settings)
    api = ApiProcess(env, tmp_path / "api.log")
    try:
        # Given events accepted while RabbitMQ is down
        stop_rabbitmq()
        try:
            ids = post_all(api, key, 20) + post_all(api, key, 50, batch=25)
            # When the API and its workers are killed -9
            api.kill()
        finally:
            start_rabbitmq()
        # Then the next start (same spool folder) replays them all
        api = ApiProcess(env, tmp_path / "api.log")
        assert sorted(set(delivered_ids(queue, len(ids)))) == sorted(ids)
    finally:
        api.stop()
