"""The nginx front of deploy/nginx keeps the API answering while clients stall, with Debian's nginx.

Under gunicorn's gthread workers a connection whose headers are still arriving holds a thread; the
front reads headers and bodies itself and passes on complete requests only.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from emergency_api.keys import create_key
from tests.api.server import ApiProcess

from .nginx import TEMPLATE, Nginx

pytestmark = pytest.mark.slow


@pytest.fixture
def api_key(tmp_path: Path) -> str:
    return create_key(tmp_path / "keys.json", "monitor", ["health.*"])[1]


@pytest.fixture
def api(tmp_path: Path, api_key: str) -> Iterator[ApiProcess]:
    """gunicorn with few threads (2 workers x 4), so a handful of stalled clients would take them all."""
    env = {"EVENTSINK_API_KEYS_FILE": str(tmp_path / "keys.json"), "EVENTSINK_SPOOL_DIR": str(tmp_path / "spool"),
           # no broker is needed: /healthz is the process, and the events below are refused before publishing
           "EVENTSINK_AMQP_URL": "amqp://guest:guest@127.0.0.1:9/%2F",
           "EVENTSINK_API_WORKERS": "2", "EVENTSINK_API_THREADS": "4"}
    server = ApiProcess(env, tmp_path / "api.log")
    yield server
    server.stop()


@pytest.fixture
def front(api: ApiProcess, tmp_path: Path) -> Iterator[Nginx]:
    server = Nginx(f"127.0.0.1:{api.port}", tmp_path / "nginx")
    yield server
    server.stop()


def stalled_clients(port: int, headers: int, bodies: int) -> list[socket.socket]:
    """Connections that send half a header, or a whole header and a tenth of the body, then stall."""
    out = []
    for _ in range(headers):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        out.append(sock)
    for _ in range(bodies):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"POST /api/v1/events HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n[{\"type\": ")
        out.append(sock)
    return out


def test_healthz_answers_through_the_front_while_50_clients_stall(front: Nginx) -> None:
    # Given 40 clients sending half a header and 10 sending a tenth of a body, more than gunicorn's 8 threads
    clients = stalled_clients(front.port, headers=40, bodies=10)
    try:
        # When a probe asks the API whether it is up, through the front
        response = requests.get(front.url + "/healthz", timeout=20)
        # Then it is answered, and so are events
        assert response.status_code == 200 and response.json()["status"] == "ok"
        # And the front drops the stalled clients after its client_header/body_timeout (10 s)
        for sock in clients:
            sock.settimeout(60)
            assert _drained(sock)
    finally:
        for sock in clients:
            sock.close()


def _drained(sock: socket.socket) -> bool:
    """Read until the peer closes; True when it did (an error page before the close is fine)."""
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        pass
    return True


def test_a_body_over_the_limit_is_refused_by_the_front_as_problem_json(front: Nginx, api_key: str) -> None:
    # When a client announces a body larger than the API takes (4 MiB)
    with socket.create_connection(("127.0.0.1", front.port), timeout=30) as sock:
        sock.sendall(b"POST /api/v1/events HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                     b"X-API-Key: " + api_key.encode() + b"\r\nContent-Length: 5000000\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    # Then the front answers 413 as a problem, without waiting for (or passing on) the body
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert b"Content-Type: application/problem+json" in head
    assert b'"status":413' in body


def test_the_api_behind_the_front_answers_as_before(front: Nginx, api_key: str) -> None:
    # A refusal of the API itself passes through unchanged (403: type outside the key's scopes)
    response = requests.post(front.url + "/api/v1/events", json={"type": "storage.file.uploaded", "data": {}},
                             headers={"X-API-Key": api_key}, timeout=20)
    assert response.status_code == 403
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.json()["errors"][0]["field"] == "type"


def test_compose_publishes_the_api_only_through_the_front() -> None:
    # The compose stack runs the same template: mounted where the nginx image renders templates,
    # with every variable it uses set, pointing at the api service's gunicorn bind
    import re

    from .compose import environment, invocations, load_compose, mounts, ports, services

    stack = services(load_compose())
    proxy, api = stack["proxy"], stack["api"]
    assert ("./deploy/nginx/eventsink.conf.template", "/etc/nginx/templates/eventsink.conf.template") in set(
        mounts(proxy))
    used = set(re.findall(r"\$\{([A-Z_]+)\}", TEMPLATE.read_text()))
    env = environment(proxy)
    assert used <= set(env)
    bind = next(argv[argv.index("--bind") + 1] for argv in invocations(api) if "--bind" in argv)
    assert env["API_UPSTREAM"] == "api:" + bind.rsplit(":", 1)[1]
    assert [container for _, _, container in ports(proxy)] == [int(env["PROXY_LISTEN_PORT"])]
    assert list(ports(api)) == []
