"""Request tracking: a Flask app and a plain WSGI app emit traffic.api.called per request."""

from __future__ import annotations

import json
import time

import pytest
from flask import Flask, abort

from sink_lib import EventSink, SinkSettings
from sink_lib.integrations.flask import EventSinkFlask
from sink_lib.integrations.wsgi import TrackingMiddleware, route_template
from sink_lib.topology import declare, queue_name
from tests.support import drain_queue


class RecordingSink:
    """Keeps what would be emitted, to test the hooks without a broker."""

    def __init__(self, fail: bool = False) -> None:
        self.events: list[tuple[str, dict, dict]] = []
        self.fail = fail

    def enqueue(self, type_: str, data: dict, **kw) -> None:
        if self.fail:
            raise RuntimeError("sink down")
        self.events.append((type_, data, kw))


def call(client, method: str, path: str) -> int:
    """Make a request and close the response, as a WSGI server does after sending it."""
    response = client.open(path, method=method)
    response.close()
    return response.status_code


def make_app() -> Flask:
    app = Flask(__name__)

    @app.get("/files/<file_id>")
    def get_file(file_id: str):
        time.sleep(0.02)
        return {"id": file_id}

    @app.post("/files")
    def create():
        return {"ok": True}, 201

    @app.get("/boom")
    def boom():
        raise RuntimeError("bug in the host app")

    @app.get("/forbidden")
    def forbidden():
        abort(403)

    @app.get("/healthz")
    def healthz():
        return "ok"

    return app


def test_flask_requests_are_tracked_with_route_template_status_and_duration():
    sink = RecordingSink()
    app = make_app()
    EventSinkFlask(app, sink, userid=lambda: "u42")
    client = app.test_client()
    assert call(client, "GET", "/files/abc123") == 200
    assert call(client, "POST", "/files") == 201
    assert call(client, "GET", "/forbidden") == 403
    assert call(client, "GET", "/nope/1") == 404
    assert call(client, "GET", "/healthz") == 200  # excluded by default
    events = [(data["method"], data["route"], data["status"]) for _, data, _ in sink.events]
    assert events == [("GET", "/files/<file_id>", 200), ("POST", "/files", 201),
                      ("GET", "/forbidden", 403), ("GET", "<unmatched>", 404)]
    first = sink.events[0]
    assert first[0] == "traffic.api.called"
    assert 20 <= first[1]["duration_ms"] < 5000  # the handler slept 20 ms
    assert first[2]["userid"] == "u42"


def test_flask_unhandled_errors_are_tracked_as_500():
    sink = RecordingSink()
    app = make_app()
    EventSinkFlask(app, sink)
    assert call(app.test_client(), "GET", "/boom") == 500
    assert [(d["route"], d["status"]) for _, d, _ in sink.events] == [("/boom", 500)]


def test_a_failing_sink_never_breaks_the_host_app():
    app = make_app()
    ext = EventSinkFlask(app, RecordingSink(fail=True))
    assert call(app.test_client(), "GET", "/files/x") == 200
    assert ext.tracker.failures == 1


def test_wsgi_middleware_tracks_status_and_low_cardinality_routes():
    sink = RecordingSink()
    app = make_app()
    app.wsgi_app = TrackingMiddleware(app.wsgi_app, sink)  # type: ignore[method-assign]
    client = app.test_client()
    call(client, "GET", "/files/123")
    call(client, "GET", "/files/5f0c2a9e4b1d2c3e4f5a6b7c")
    call(client, "POST", "/files")
    assert [(d["route"], d["status"]) for _, d, _ in sink.events] == [
        ("/files/<id>", 200), ("/files/<id>", 200), ("/files", 201)]


@pytest.mark.parametrize(("path", "route"), [
    ("/api/files/42/blob", "/api/files/<id>/blob"),
    ("/api/datasets/5f0c2a9e4b1d2c3e4f5a6b7c", "/api/datasets/<id>"),
    ("/api/x/0b5b4c52-98d4-4a6e-9c3c-0c8c7ea1b3a1", "/api/x/<id>"),
    ("/api/search", "/api/search"),
])
def test_route_template(path, route):
    assert route_template(path) == route


@pytest.mark.rabbitmq
def test_tracked_requests_reach_the_broker(sink_settings: SinkSettings):
    declare(sink_settings, ["alpha"])
    app = make_app()
    with EventSink(settings=sink_settings) as sink:
        EventSinkFlask(app, sink)
        for i in range(5):
            call(app.test_client(), "GET", f"/files/{i}")
        assert sink.flush(30)
    got = [json.loads(b) for _, _, b in drain_queue(queue_name(sink_settings.exchange, "alpha"), expect=5)]
    assert [e["type"] for e in got] == ["traffic.api.called"] * 5
    assert {e["data"]["route"] for e in got} == {"/files/<file_id>"}


def test_event_is_emitted_only_after_the_response_is_closed():
    # the server closes the response after sending it: tracking happens off the request's path
    sink = RecordingSink()
    app = make_app()
    EventSinkFlask(app, sink)
    response = app.test_client().get("/files/1")
    assert response.status_code == 200 and sink.events == []
    response.close()
    assert len(sink.events) == 1
