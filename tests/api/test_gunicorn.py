"""``eventsink api`` under gunicorn: limits gunicorn enforces itself, settings, and real delivery."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pika
import psutil
import pytest
import requests
from click.testing import CliRunner

from emergency_api.keys import create_key
from emergency_api.serving import ApiServer
from sink_lib.cli import main
from sink_lib.settings import SinkSettings
from tests.support import RABBITMQ_URL, drain_queue, wait_for

from .server import ApiProcess


def bind_queue(exchange: str) -> str:
    """Declare the fanout exchange and a queue bound to it, as a destination would."""
    conn = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    try:
        ch = conn.channel()
        ch.exchange_declare(exchange, "fanout", durable=True)
        queue = f"{exchange}.apitest"
        ch.queue_declare(queue, durable=True)
        ch.queue_bind(queue, exchange)
    finally:
        conn.close()
    return queue


def api_env(tmp_path: Path, sink_settings: SinkSettings) -> dict[str, str]:
    return {
        "EVENTSINK_API_KEYS_FILE": str(tmp_path / "keys.json"),
        "EVENTSINK_AMQP_URL": sink_settings.amqp_url,
        "EVENTSINK_EXCHANGE": sink_settings.exchange,
        "EVENTSINK_SPOOL_DIR": str(sink_settings.spool_dir),
        "EVENTSINK_API_WORKERS": "2",
    }


@pytest.fixture
def key(tmp_path: Path) -> str:
    return create_key(tmp_path / "keys.json", "monitor", ["health.*", "metric.*"])[1]


@pytest.fixture
def api(tmp_path: Path, sink_settings: SinkSettings, key: str) -> Iterator[ApiProcess]:
    server = ApiProcess(api_env(tmp_path, sink_settings), tmp_path / "api.log",
                        "-o", "limit_request_field_size=4096")
    yield server
    server.stop()


def assert_problem(response: requests.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.json()["status"] == status


@pytest.mark.rabbitmq
@pytest.mark.slow
def test_gunicorn_limits_answer_problem_json(api: ApiProcess, key: str) -> None:
    # A header past limit_request_field_size (set to 4096 by -o) is 431, as problem+json
    assert_problem(requests.get(api.url + "/healthz", headers={"X-Big": "a" * 5000}, timeout=5), 431)
    assert requests.get(api.url + "/healthz", headers={"X-Big": "a" * 3000}, timeout=5).status_code == 200
    # A request line past limit_request_line is 414
    assert_problem(requests.get(api.url + "/healthz?" + "a" * 5000, timeout=5), 414)
    # Too many header fields is 431
    many = {f"X-H{i}": "v" for i in range(120)}
    assert_problem(requests.get(api.url + "/healthz", headers=many, timeout=5), 431)
    # And the app's own limits work under gunicorn too
    big = json.dumps({"type": "health.status", "data": {"pad": "x" * (5 << 20)}})
    response = requests.post(api.url + "/api/v1/events", data=big, timeout=10,
                             headers={"X-API-Key": key, "Content-Type": "application/json"})
    assert_problem(response, 413)


@pytest.mark.rabbitmq
@pytest.mark.slow
def test_posted_events_arrive_in_a_bound_queue(api: ApiProcess, key: str, exchange: str) -> None:
    queue = bind_queue(exchange)
    events = [{"type": "health.status", "data": {"service": f"s{i}", "state": "up"}, "region": "eu"}
              for i in range(5)]
    session = requests.Session()
    ids = []
    for event in events:
        response = session.post(api.url + "/api/v1/events", json=event, headers={"X-API-Key": key}, timeout=15)
        assert response.status_code == 202, response.text
        ids += response.json()["ids"]
    response = session.post(api.url + "/api/v1/write", data="cpu,host=a usage=0.5 1700000000000000000",
                            headers={"Authorization": f"Bearer {key}", "Content-Type": "text/plain"}, timeout=15)
    assert response.status_code == 204, response.text

    messages = drain_queue(queue, expect=6)
    bodies = [json.loads(body) for _, _, body in messages]
    assert sorted(b["id"] for b in bodies[:5] if b["type"] == "health.status") == sorted(ids)
    first = next(b for b in bodies if b["id"] == ids[0])
    assert first["data"] == {"service": "s0", "state": "up"}
    assert first["source"] == "/api/monitor" and first["region"] == "eu" and first["specversion"] == "1.0"
    props = next(p for _, p, b in messages if json.loads(b)["id"] == ids[0])
    assert props.content_type == "application/cloudevents+json" and props.delivery_mode == 2
    metric = next(b for b in bodies if b["type"] == "metric.cpu")
    assert metric["data"]["fields"] == {"usage": 0.5}

    text = session.get(api.url + "/metrics", timeout=5).text
    assert 'eventsink_api_events_accepted_total{endpoint="events"} 5.0' in text
    # the sink's gauges (no labels) reach /metrics under gunicorn's multiprocess mode too
    assert "eventsink_api_broker_connected 1.0" in text
    assert "eventsink_api_spool_pending 0.0" in text


@pytest.mark.rabbitmq
@pytest.mark.slow
def test_gunicorn_cmd_args_are_honoured_and_options_win(tmp_path: Path, sink_settings: SinkSettings,
                                                        key: str) -> None:
    # Given GUNICORN_CMD_ARGS lowering the header limit, and -o lowering the request-line limit
    env = {**api_env(tmp_path, sink_settings), "GUNICORN_CMD_ARGS": "--limit-request-field_size 1000 --workers 1"}
    server = ApiProcess(env, tmp_path / "api.log", "-o", "limit_request_line=600")
    try:
        # Then both apply
        assert_problem(requests.get(server.url + "/healthz", headers={"X-Big": "a" * 1500}, timeout=5), 431)
        assert_problem(requests.get(server.url + "/healthz?" + "a" * 700, timeout=5), 414)
        assert requests.get(server.url + "/healthz?" + "a" * 300, headers={"X-Ok": "a" * 500},
                            timeout=5).status_code == 200
    finally:
        server.stop()


def _established_per_worker(server: ApiProcess) -> dict[int, int]:
    """Established connections to the API's port held by each worker process."""
    counts: dict[int, int] = {}
    for worker in psutil.Process(server.proc.pid).children():
        counts[worker.pid] = sum(1 for c in worker.net_connections("tcp")
                                 if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == server.port)
    return counts


def _listening_sockets(server: ApiProcess) -> dict[int, set[str]]:
    """The listening sockets (as ``socket:[inode]``) of each worker on the API's port."""
    return {worker.pid: {os.readlink(f"/proc/{worker.pid}/fd/{c.fd}") for c in worker.net_connections("tcp")
                         if c.status == psutil.CONN_LISTEN and c.laddr.port == server.port}
            for worker in psutil.Process(server.proc.pid).children()}


@pytest.mark.rabbitmq
@pytest.mark.slow
def test_each_worker_listens_on_its_own_socket_and_keep_alive_connections_spread(api: ApiProcess) -> None:
    # Given the API with two workers (the second may still be booting), each listening on its own socket
    wait_for(lambda: sum(1 for socks in _listening_sockets(api).values() if socks) == 2, timeout=30,
             what="both workers to listen")
    listening = _listening_sockets(api)
    assert len(listening) == 2 and all(len(socks) == 1 for socks in listening.values()), listening
    assert len(set.union(*listening.values())) == 2, f"the workers share one socket: {listening}"
    # When 24 keep-alive clients connect and each makes a request
    conns = [http.client.HTTPConnection("127.0.0.1", api.port, timeout=5) for _ in range(24)]
    try:
        for conn in conns:
            conn.request("GET", "/healthz")
            assert conn.getresponse().read() is not None
        # Then both workers hold some of them (all 24 on one worker: chance 2 in 16 million)
        counts = _established_per_worker(api)
        assert sum(counts.values()) == 24 and min(counts.values()) >= 1, counts
    finally:
        for conn in conns:
            conn.close()


@pytest.mark.rabbitmq
@pytest.mark.slow
def test_a_second_api_on_a_port_in_use_refuses_to_start(api: ApiProcess) -> None:
    # Given a running API: a second one on its address must not silently share the port
    result = CliRunner().invoke(main, ["api", "--bind", f"127.0.0.1:{api.port}"])
    assert result.exit_code == 1
    assert f"127.0.0.1:{api.port} is already in use" in result.output
    # and the first one still answers
    assert requests.get(api.url + "/healthz", timeout=5).status_code == 200


def test_a_unix_socket_bind_keeps_one_shared_socket(tmp_path: Path) -> None:
    # each worker binding the same socket file would replace it: reuse_port is switched off there
    server = ApiServer(lambda: None, {"bind": f"unix:{tmp_path / 'api.sock'}"}, {})  # type: ignore[arg-type,return-value]
    assert server.cfg.reuse_port is True
    server.prepare_listening()
    assert server.cfg.reuse_port is False
    tcp = ApiServer(lambda: None, {"bind": "127.0.0.1:0"}, {})  # type: ignore[arg-type,return-value]
    tcp.prepare_listening()
    assert tcp.cfg.reuse_port is True


def test_sockets_handed_over_by_systemd_or_as_fds_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    # with reuse_port gunicorn ignores inherited sockets and each worker binds its own address instead
    fd_bind = ApiServer(lambda: None, {"bind": "fd://3"}, {})  # type: ignore[arg-type,return-value]
    fd_bind.prepare_listening()
    assert fd_bind.cfg.reuse_port is False
    monkeypatch.setenv("LISTEN_FDS", "1")
    activated = ApiServer(lambda: None, {"bind": "127.0.0.1:0"}, {})  # type: ignore[arg-type,return-value]
    activated.prepare_listening()
    assert activated.cfg.reuse_port is False


@pytest.mark.rabbitmq
@pytest.mark.slow
def test_stalled_clients_do_not_starve_the_api_and_get_408(tmp_path: Path, sink_settings: SinkSettings,
                                                           key: str) -> None:
    # 40 clients send half a head and 10 half a body, straight to eventsink api (no proxy in front)
    env = {**api_env(tmp_path, sink_settings), "EVENTSINK_API_REQUEST_READ_TIMEOUT_S": "2"}
    server = ApiProcess(env, tmp_path / "api.log")
    stalled = []
    try:
        for i in range(50):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            if i < 40:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-Slow: ")
            else:
                sock.sendall(b"POST /api/v1/events HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
                             + f"X-API-Key: {key}\r\nContent-Length: 100\r\n\r\n{{".encode())
            stalled.append(sock)
        # the API answers others at once while they stall
        response = requests.post(server.url + "/api/v1/events", timeout=5, headers={"X-API-Key": key},
                                 json={"type": "health.status", "data": {"service": "web", "state": "up"}})
        assert response.status_code == 202
        assert requests.get(server.url + "/healthz", timeout=5).status_code == 200
        # and the stalled ones are answered 408 and closed once their time is up
        for sock in stalled:
            answer = b""
            while chunk := sock.recv(4096):
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 408 "), answer[:100]
            assert b"application/problem+json" in answer
    finally:
        for sock in stalled:
            sock.close()
        server.stop()


@pytest.mark.rabbitmq
@pytest.mark.slow
def test_curl_posts_a_body_with_expect_100_continue(api: ApiProcess, key: str, tmp_path: Path) -> None:
    # curl (7.x: for bodies over 1 KiB; asked here explicitly) sends the head, waits for the interim
    # answer, then the body
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    batch = [{"type": "health.status", "data": {"service": f"s{i}", "state": "up"}} for i in range(40)]
    body = tmp_path / "batch.json"
    body.write_text(json.dumps(batch))
    assert body.stat().st_size > 1024
    headers = ["-H", "Expect: 100-continue", "-H", f"X-API-Key: {key}", "-H", "Content-Type: application/json"]
    out = subprocess.run([curl, "-sS", "-v", "--max-time", "10", *headers, "--data-binary", f"@{body}",
                          api.url + "/api/v1/events"], capture_output=True, text=True, check=True)
    assert "HTTP/1.1 100 Continue" in out.stderr
    assert json.loads(out.stdout)["accepted"] == 40


@pytest.mark.rabbitmq
@pytest.mark.slow
def test_the_event_loop_worker_writes_gunicorns_access_log(tmp_path: Path, sink_settings: SinkSettings,
                                                           key: str) -> None:
    server = ApiProcess(api_env(tmp_path, sink_settings), tmp_path / "api.log", "-o", "accesslog=-")
    try:
        for i in range(30):
            response = requests.post(server.url + "/api/v1/events", timeout=10, headers={"X-API-Key": key},
                                     json={"type": "health.status", "data": {"service": f"s{i}", "state": "up"}})
            assert response.status_code == 202, response.text
    finally:
        server.stop()
    log = (tmp_path / "api.log").read_text()
    assert log.count('"POST /api/v1/events HTTP/1.1" 202') == 30
    assert '"GET /healthz HTTP/1.1" 200' in log  # the readiness probe of the test, through WSGI
    assert key not in log
