"""The 2.x path (influxdb-client, ``/api/v2/write``) against a local server speaking that API."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from workers.errors import RejectEvents, RetryLater
from workers.influxdb import InfluxDBSettings, InfluxDBWorker

from .conftest import make_event


@dataclass
class Request:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    lines: list[str]


@dataclass
class FakeInflux2:
    """A /api/v2/write endpoint: records requests, answers scripted statuses, else behaves like 2.x.

    Lines containing ``refuse`` are refused the way 2.x refuses them: a 422 naming the conflict when
    they are the only ones, else a 400 "partial write" (the other lines being written).
    """

    refuse: set[str] = field(default_factory=set)
    script: list[tuple[int, dict[str, str], str]] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    stored: dict[str, str] = field(default_factory=dict)

    def answer(self, req: Request) -> tuple[int, dict[str, str], str]:
        self.requests.append(req)
        if self.script:
            return self.script.pop(0)
        refused = [line for line in req.lines if any(marker in line for marker in self.refuse)]
        for line in req.lines:
            if line not in refused:
                self.stored[line.split('id="', 1)[1].split('"', 1)[0]] = line
        if not refused:
            return 204, {}, ""
        message = f"partial write: unable to parse '{refused[0]}': invalid dropped={len(refused)}"
        return 400, {}, json.dumps({"code": "invalid", "message": message})


@pytest.fixture
def fake() -> Iterator[tuple[FakeInflux2, str]]:
    state = FakeInflux2()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.headers.get("Content-Encoding") == "gzip":
                raw = gzip.decompress(raw)
            split = urlsplit(self.path)
            req = Request(split.path, {k: v[0] for k, v in parse_qs(split.query).items()},
                          dict(self.headers.items()), raw.decode().split("\n"))
            status, headers, body = state.answer(req)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def worker(fake: tuple[FakeInflux2, str]) -> Iterator[InfluxDBWorker]:
    settings = InfluxDBSettings(api_version=2, url=fake[1], org="acme", bucket="events", token="s3cret", gzip=True)
    plugin = InfluxDBWorker(settings)
    plugin.open()
    yield plugin
    plugin.close()


def test_batches_go_to_api_v2_write_with_token_org_bucket_ns_precision_and_gzip(
    worker: InfluxDBWorker, fake: tuple[FakeInflux2, str]
) -> None:
    state, _ = fake
    batch = [make_event(data={"target": f"t{i}", "loss_pct": 0.0, "ok": True}) for i in range(3)]
    worker.write(batch)
    [req] = state.requests
    assert req.path == "/api/v2/write"
    assert req.query == {"org": "acme", "bucket": "events", "precision": "ns"}
    assert req.headers["Authorization"] == "Token s3cret"
    assert req.headers["Content-Encoding"] == "gzip"
    assert len(req.lines) == 3 and all(line.startswith("health,") for line in req.lines)
    assert set(state.stored) == {e.id for e in batch}


def test_a_partial_write_rejects_only_the_refused_events(
    worker: InfluxDBWorker, fake: tuple[FakeInflux2, str]
) -> None:
    state, _ = fake
    batch = [make_event(data={"target": f"t{i}", "loss_pct": 0.0, "ok": True}) for i in range(8)]
    state.refuse = {batch[5].id}
    with pytest.raises(RejectEvents) as caught:
        worker.write(batch)
    assert list(caught.value.reasons) == [batch[5].id]
    assert "partial write" in caught.value.reasons[batch[5].id]
    assert set(state.stored) == {e.id for e in batch} - {batch[5].id}


def test_a_422_field_type_conflict_names_the_point(worker: InfluxDBWorker, fake: tuple[FakeInflux2, str]) -> None:
    state, _ = fake
    good, bad = make_event("app.x", {"v": 1.0}), make_event("app.x", {"v": "s"})
    message = ('failure writing points to database: partial write: field type conflict: input field "v" on '
               'measurement "app" is type string, already exists as type float dropped=1')
    state.script = [(422, {}, json.dumps({"code": "unprocessable entity", "message": message}))]
    with pytest.raises(RejectEvents) as caught:
        worker.write([good, bad])
    assert list(caught.value.reasons) == [bad.id] and len(state.requests) == 1


@pytest.mark.parametrize(
    ("status", "headers", "delay"),
    [(429, {"Retry-After": "3"}, 3.0), (503, {}, None), (500, {}, None), (401, {}, None)],
)
def test_throttling_outages_and_bad_tokens_mean_retry_later(
    worker: InfluxDBWorker, fake: tuple[FakeInflux2, str], status: int, headers: dict[str, str],
    delay: float | None,
) -> None:
    state, _ = fake
    state.script = [(status, headers, json.dumps({"code": "x", "message": "no"}))]
    with pytest.raises(RetryLater) as caught:
        worker.write([make_event()])
    assert caught.value.delay_s == delay
    assert caught.value.event_ids is None


def test_an_unreachable_server_means_retry_later() -> None:
    settings = InfluxDBSettings(api_version=2, url="http://127.0.0.1:9", org="o", bucket="b", token="t")
    plugin = InfluxDBWorker(settings)
    plugin.open()
    try:
        with pytest.raises(RetryLater, match="unreachable"):
            plugin.write([make_event()])
    finally:
        plugin.close()
