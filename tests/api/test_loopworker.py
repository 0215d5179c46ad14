"""The eventsink worker class's HTTP layer, in-process: limits one byte over, framing, timeouts, and
the native events route answering exactly as the Flask view does."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emergency_api import ApiSettings, create_app

from .helpers import FakeSink
from .loop_harness import Harness, parse_answers, post

EVENT = {"type": "health.status", "data": {"service": "web", "state": "up"}}


@pytest.fixture
def harness(app: Flask) -> Iterator[Harness]:
    h = Harness(app)
    yield h
    h.close()


def one(harness: Harness, raw: bytes) -> Any:
    answers, _ = harness.exchange([raw])
    assert len(answers) == 1, answers
    return answers[0]


def assert_problem(answer: Any, status: int) -> dict[str, Any]:
    assert answer.status == status, answer.body
    assert answer.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = answer.json()
    assert body["status"] == status
    return body


def test_an_event_is_accepted_on_the_loop_and_reaches_the_sink(harness: Harness, health_key: str,
                                                               fake_sink: FakeSink) -> None:
    answer = one(harness, post("/api/v1/events", json.dumps(EVENT).encode(), key=health_key))
    assert answer.status == 202
    assert answer.json()["ids"] == [fake_sink.submitted[0].id]
    assert fake_sink.envelopes[0]["source"] == "/api/monitor"


def test_other_routes_are_served_by_the_flask_app(harness: Harness) -> None:
    answer = one(harness, b"GET /healthz HTTP/1.1\r\nHost: api\r\n\r\n")
    assert answer.status == 200 and answer.json() == {"status": "ok"}
    assert_problem(one(harness, b"GET /nope HTTP/1.1\r\nHost: api\r\n\r\n"), 404)
    method = one(harness, b"GET /api/v1/events HTTP/1.1\r\nHost: api\r\n\r\n")
    assert_problem(method, 405)
    assert "POST" in method.headers["allow"]


# -- the same answers as the Flask view --------------------------------------------------------

def _requests(key: str) -> list[tuple[str, bytes, dict[str, str]]]:
    ok = json.dumps(EVENT).encode()
    return [
        ("accepted", ok, {"X-API-Key": key}),
        ("batch", json.dumps([EVENT, EVENT]).encode(), {"Authorization": f"Bearer {key}"}),
        ("no key", ok, {}),
        ("bad key", ok, {"X-API-Key": "es_nope_nope"}),
        ("token scheme", ok, {"Authorization": f"Token {key}"}),
        ("basic", ok, {"Authorization": "Basic " + __import__("base64").b64encode(f"u:{key}".encode()).decode()}),
        ("not json", b"{nope", {"X-API-Key": key}),
        ("text", ok, {"X-API-Key": key, "Content-Type": "text/plain"}),
        ("charset", ok, {"X-API-Key": key, "Content-Type": "Application/JSON; charset=utf-8"}),
        ("empty batch", b"[]", {"X-API-Key": key}),
        ("too many", json.dumps([EVENT] * 51).encode(), {"X-API-Key": key}),
        ("invalid", json.dumps({"type": "health.status", "data": {}, "extra": 1}).encode(), {"X-API-Key": key}),
        ("scope", json.dumps({"type": "storage.file.uploaded", "data": {"bytes": 1}}).encode(), {"X-API-Key": key}),
        ("client id", json.dumps({**EVENT, "id": "retry-1"}).encode(), {"X-API-Key": key}),
        ("deep", b"[" * 60_000, {"X-API-Key": key}),
        ("too large", b" " * (64 * 1024 + 1), {"X-API-Key": key}),
        ("long int", json.dumps({**EVENT, "data": {"service": "web", "state": "up", "n": 10**30}}).encode(),
         {"X-API-Key": key}),
    ]


def test_the_native_route_answers_every_case_as_the_flask_view(api_settings: ApiSettings, health_key: str) -> None:
    native_sink, flask_sink = FakeSink(), FakeSink()
    native_app, flask_app = create_app(api_settings, sink=native_sink), create_app(api_settings, sink=flask_sink)
    client: FlaskClient = flask_app.test_client()
    harness = Harness(native_app)
    try:
        for name, body, headers in _requests(health_key):
            headers = {"Content-Type": "application/json", **headers}
            expected = client.post("/api/v1/events", data=body, headers=headers)
            lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            raw = (f"POST /api/v1/events HTTP/1.1\r\nHost: api\r\n{lines}Content-Length: {len(body)}\r\n\r\n"
                   .encode() + body)
            got = one(harness, raw)
            assert got.status == expected.status_code, name
            assert got.headers["content-type"] == expected.headers["Content-Type"], name
            for header in ("WWW-Authenticate", "Retry-After"):
                assert got.headers.get(header.lower()) == expected.headers.get(header), (name, header)
            want = expected.get_json()
            if got.status == 202:  # ids are fresh per request, except a client id's (scoped to the key)
                assert got.json()["accepted"] == want["accepted"], name
                if name == "client id":
                    assert got.json()["ids"] == want["ids"]
            else:
                assert got.json() == want, name
        assert len(native_sink.submitted) == len(flask_sink.submitted) == 7
    finally:
        harness.close()


def test_a_failed_publish_is_the_same_503(api_settings: ApiSettings, health_key: str) -> None:
    from sink_lib.errors import PublishTimeout, SpoolFullError

    for error in (PublishTimeout("slow"), SpoolFullError("full")):
        native_sink, flask_sink = FakeSink(), FakeSink()
        native_sink.fail_with = flask_sink.fail_with = error
        harness = Harness(create_app(api_settings, sink=native_sink))
        try:
            body = json.dumps(EVENT).encode()
            expected = create_app(api_settings, sink=flask_sink).test_client().post(
                "/api/v1/events", data=body, headers={"X-API-Key": health_key, "Content-Type": "application/json"})
            got = one(harness, post("/api/v1/events", body, key=health_key))
            assert got.status == expected.status_code == 503
            assert got.json() == expected.get_json()
            assert got.headers["retry-after"] == expected.headers["Retry-After"]
        finally:
            harness.close()


def test_native_requests_are_counted_in_the_metrics(harness: Harness, health_key: str) -> None:
    one(harness, post("/api/v1/events", json.dumps(EVENT).encode(), key=health_key))
    one(harness, post("/api/v1/events", b"{}", key="es_x_y"))
    text = one(harness, b"GET /metrics HTTP/1.1\r\nHost: api\r\n\r\n").body.decode()
    assert 'route="/api/v1/events",status="202"' in text.replace('method="POST",', "")
    assert 'route="/api/v1/events",status="401"' in text.replace('method="POST",', "")
    assert 'eventsink_api_requests_rejected_total{reason="unauthorized"}' in text


# -- limits: at the limit passes, one byte over is refused ---------------------------------------

def test_request_line_at_the_limit_passes_and_one_byte_over_is_414(harness: Harness) -> None:
    limit = harness.server.limit_line  # gunicorn's limit_request_line, 4094
    filler = "x" * (limit - len("GET /? HTTP/1.1"))
    at_limit = f"GET /?{filler} HTTP/1.1"
    assert len(at_limit) == limit
    assert one(harness, f"{at_limit}\r\nHost: api\r\n\r\n".encode()).status == 404
    over = f"GET /?{filler}x HTTP/1.1"
    answers, transport = harness.exchange([f"{over}\r\nHost: api\r\n\r\n".encode()])
    assert_problem(answers[0], 414)
    assert transport.closed


def test_header_field_at_the_limit_passes_and_one_byte_over_is_431(harness: Harness) -> None:
    limit = harness.server.limit_field_size  # limit_request_field_size, 8190: "name: value"
    value = "v" * (limit - len("X-Pad: "))
    assert one(harness, f"GET /healthz HTTP/1.1\r\nX-Pad: {value}\r\n\r\n".encode()).status == 200
    answers, transport = harness.exchange([f"GET /healthz HTTP/1.1\r\nX-Pad: {value}v\r\n\r\n".encode()])
    body = assert_problem(answers[0], 431)
    assert "X-Pad" in body["detail"]
    assert transport.closed


def test_header_count_at_the_limit_passes_and_one_more_is_431(harness: Harness) -> None:
    limit = harness.server.limit_fields  # limit_request_fields, 100
    fields = "".join(f"X-F{i}: 1\r\n" for i in range(limit))
    assert one(harness, f"GET /healthz HTTP/1.1\r\n{fields}\r\n".encode()).status == 200
    answers, _ = harness.exchange([f"GET /healthz HTTP/1.1\r\n{fields}X-More: 1\r\n\r\n".encode()])
    assert_problem(answers[0], 431)


def test_a_head_still_unfinished_at_the_bound_waits_and_one_byte_over_is_431(harness: Harness) -> None:
    bound = harness.server.max_head  # the request line's limit + 64 KiB of fields
    assert bound == harness.server.limit_line + 2 + 65536
    start = b"GET /healthz HTTP/1.1\r\n"
    fields = b"".join(b"X-F%d: %s\r\n" % (i, b"v" * 8000) for i in range(8))
    head = start + fields
    head += b"X-Last: " + b"v" * (bound - len(head) - len(b"X-Last: "))
    assert len(head) == bound
    conn, transport = harness.connect()
    for i in range(0, len(head), 4096):  # as it would trickle in
        conn.data_received(head[i:i + 4096])
    assert not transport.closed and not transport.written
    conn.data_received(b"v")
    assert transport.closed
    assert_problem(parse_answers(bytes(transport.written))[0], 431)
    # a head that never ends is cut off after that much, not buffered
    conn, transport = harness.connect()
    conn.data_received(b"GET /healthz HTTP/1.1\r\nX-Endless: ")
    sent = 0
    while not transport.closed and sent < 4 * bound:
        conn.data_received(b"a" * 65536)
        sent += 65536
    assert transport.closed and sent <= bound + 65536


def test_a_large_read_of_heads_and_bodies_is_not_taken_for_a_long_head(harness: Harness, health_key: str) -> None:
    one_post = post("/api/v1/events", json.dumps([EVENT] * 40).encode().ljust(60_000), key=health_key)
    raw = one_post * 2 + b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"
    assert len(raw) > 2 * harness.server.max_head - 20_000  # one read, far more than a head may hold
    answers, _ = harness.exchange([raw])
    assert [a.status for a in answers] == [202, 202, 200]


def test_body_at_the_limit_passes_and_one_byte_over_is_413(app: Flask, api_settings: ApiSettings,
                                                           health_key: str) -> None:
    harness, route = Harness(app), "/api/v1/events"
    try:
        limit = api_settings.max_body_bytes
        event = json.dumps(EVENT)
        at_limit = (event[:-1] + " " * (limit - len(event)) + "}").encode()
        assert len(at_limit) == limit
        assert one(harness, post(route, at_limit, key=health_key)).status == 202
        over = one(harness, post(route, at_limit + b" ", key=health_key))
        assert_problem(over, 413)
        chunked = (f"POST {route} HTTP/1.1\r\nHost: api\r\nX-API-Key: {health_key}\r\n"
                   "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
        chunk = at_limit + b" "
        answers, transport = harness.exchange([chunked, b"%x\r\n" % len(chunk) + chunk + b"\r\n0\r\n\r\n"])
        assert_problem(answers[0], 413)
        assert transport.closed
    finally:
        harness.close()


def test_bodies_past_the_workers_budget_wait_until_earlier_ones_are_answered(api_settings: ApiSettings,
                                                                            health_key: str) -> None:
    # a budget of two 60,000-byte bodies: the third waits (not read, no 100 Continue) until one is answered
    app = create_app(api_settings.model_copy(update={"max_buffered_body_bytes": 120_000}), sink=FakeSink())
    harness = Harness(app)
    try:
        assert harness.server.body_budget == 120_000
        body = json.dumps([EVENT] * 40).encode().ljust(60_000)
        heads = [post("/api/v1/events", body, key=health_key, extra="Expect: 100-continue\r\n")
                 .split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n" for _ in range(3)]
        conns = [harness.connect() for _ in range(3)]
        for (conn, _), head in zip(conns, heads, strict=True):
            conn.data_received(head)
        harness.settle(conns[2][0])
        assert [bytes(t.written) for _, t in conns[:2]] == [b"HTTP/1.1 100 Continue\r\n\r\n"] * 2
        third_transport = conns[2][1]
        assert third_transport.written == b"" and third_transport.paused
        assert harness.server.reserved == 120_000
        first, first_transport = conns[0]
        first.data_received(body)
        harness.settle(first)
        assert [a.status for a in parse_answers(bytes(first_transport.written))] == [100, 202]
        # the first body is answered: its budget goes to the third, which may now send its body
        assert bytes(third_transport.written) == b"HTTP/1.1 100 Continue\r\n\r\n" and not third_transport.paused
        for conn, transport in conns[1:]:
            conn.data_received(body)
            harness.settle(conn)
            assert [a.status for a in parse_answers(bytes(transport.written))] == [100, 202]
        assert harness.server.reserved == 0 and not harness.server.waiting
        # a connection that goes away gives its budget back
        conn, _ = harness.connect()
        conn.data_received(heads[0] + body[:1000])
        assert harness.server.reserved == 60_000
        conn.close()
        assert harness.server.reserved == 0
        # and so does one the client drops, with a request waiting to be answered
        conn, _ = harness.connect()
        conn.data_received(heads[0] + body[:1000])
        conn.connection_lost(None)
        assert harness.server.reserved == 0
    finally:
        harness.close()


def test_an_influx_route_answers_a_body_over_the_limit_in_influxdb_shape(harness: Harness, health_key: str,
                                                                         api_settings: ApiSettings) -> None:
    body = b"m v=1\n" * (api_settings.max_body_bytes // 6 + 1)
    answers, transport = harness.exchange([post("/write?db=x", body, key=health_key, content_type="text/plain")])
    assert answers[0].status == 413
    assert "error" in answers[0].json()
    assert transport.closed


# -- framing ------------------------------------------------------------------------------------

def test_expect_100_continue_is_answered_before_the_body(harness: Harness, health_key: str,
                                                         fake_sink: FakeSink) -> None:
    body = json.dumps(EVENT).encode()
    head, payload = post("/api/v1/events", body, key=health_key, extra="Expect: 100-continue\r\n").split(b"\r\n\r\n", 1)
    conn, transport = harness.connect()
    conn.data_received(head + b"\r\n\r\n")
    harness.settle(conn)
    assert bytes(transport.written) == b"HTTP/1.1 100 Continue\r\n\r\n"
    conn.data_received(payload)
    harness.settle(conn)
    answers = parse_answers(bytes(transport.written))
    assert [a.status for a in answers] == [100, 202]
    # refused on its head: no 100, the refusal
    too_big = f"Expect: 100-continue\r\nContent-Length: {10**9}\r\n"
    raw = f"POST /api/v1/events HTTP/1.1\r\nHost: api\r\nX-API-Key: {health_key}\r\n{too_big}\r\n".encode()
    answers, _ = harness.exchange([raw])
    assert [a.status for a in answers] == [413]


def test_pipelined_requests_are_answered_in_order_on_one_connection(harness: Harness, health_key: str) -> None:
    body = json.dumps(EVENT).encode()
    raw = (post("/api/v1/events", body, key=health_key) + b"GET /healthz HTTP/1.1\r\nHost: api\r\n\r\n"
           + post("/api/v1/events", b"{", key=health_key) + b"GET /nope HTTP/1.1\r\nHost: api\r\n\r\n")
    answers, transport = harness.exchange([raw])
    assert [a.status for a in answers] == [202, 200, 400, 404]
    assert not transport.closed and not transport.paused


def test_requests_split_byte_by_byte_are_read_whole(harness: Harness, health_key: str) -> None:
    raw = post("/api/v1/events", json.dumps(EVENT).encode(), key=health_key)
    answers, _ = harness.exchange([raw[i:i + 1] for i in range(len(raw))])
    assert [a.status for a in answers] == [202]


def test_connection_close_and_http_1_0_close_after_the_answer(harness: Harness) -> None:
    answers, transport = harness.exchange([b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"])
    assert answers[0].status == 200 and answers[0].headers["connection"] == "close" and transport.closed
    answers, transport = harness.exchange([b"GET /healthz HTTP/1.0\r\n\r\n"])
    assert answers[0].status == 200 and transport.closed
    answers, transport = harness.exchange([b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"])
    assert answers[0].headers["connection"] == "keep-alive" and not transport.closed


def test_an_upgrade_request_is_answered_plainly_and_the_connection_closed(harness: Harness) -> None:
    raw = b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: other/1\r\n\r\n\x81\x05hello"
    answers, transport = harness.exchange([raw])
    assert [a.status for a in answers] == [200]
    assert answers[0].headers["connection"] == "close" and transport.closed


def test_head_answers_carry_no_body(harness: Harness) -> None:
    conn, transport = harness.connect()
    conn.data_received(b"HEAD /healthz HTTP/1.1\r\nHost: a\r\n\r\nGET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
    harness.settle(conn)
    raw = bytes(transport.written)
    assert raw.count(b"HTTP/1.1 200") == 2
    assert raw.count(b'{"status":"ok"}') == 1


@pytest.mark.parametrize("raw", [
    b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"G\x00T / HTTP/1.1\r\n\r\n",
    b"GET / HTTP/9.9\r\n\r\n",
    b"POST /api/v1/events HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    b"POST /api/v1/events HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
])
def test_malformed_or_ambiguous_requests_are_400_and_closed(harness: Harness, raw: bytes) -> None:
    answers, transport = harness.exchange([raw])
    assert_problem(answers[0], 400)
    assert transport.closed


# -- timeouts and connection limits -----------------------------------------------------------------

def test_slow_requests_get_408_and_idle_connections_are_closed(api_settings: ApiSettings) -> None:
    app = create_app(api_settings.model_copy(update={"request_read_timeout_s": 0.2}), sink=FakeSink())
    harness = Harness(app, keepalive=1)
    try:
        conn, transport = harness.connect()
        conn.data_received(b"GET /healthz HTTP/1.1\r\nHost: a\r\n")  # the head never ends
        harness.loop.run_until_complete(asyncio.sleep(0.4))
        assert_problem(parse_answers(bytes(transport.written))[0], 408)
        assert transport.closed

        conn, transport = harness.connect()
        conn.data_received(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
        harness.settle(conn)
        started = time.monotonic()
        while not transport.closed and time.monotonic() - started < 5:
            harness.loop.run_until_complete(asyncio.sleep(0.05))
        assert transport.closed  # idle past keepalive: closed without an answer
        assert parse_answers(bytes(transport.written))[0].status == 200
    finally:
        harness.close()


def test_connections_past_worker_connections_get_503(app: Flask) -> None:
    harness = Harness(app, worker_connections=2)
    try:
        harness.connect()
        harness.connect()
        _, transport = harness.connect()
        assert transport.closed
        assert_problem(parse_answers(bytes(transport.written))[0], 503)
    finally:
        harness.close()


def test_stopping_closes_idle_connections_and_lets_a_request_in_flight_finish(harness: Harness) -> None:
    _, idle_transport = harness.connect()
    busy, busy_transport = harness.connect()
    busy.data_received(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")  # answered in the WSGI pool
    harness.loop.run_until_complete(harness.server.stop(5))
    assert idle_transport.closed and busy_transport.closed
    answers = parse_answers(bytes(busy_transport.written))
    assert [a.status for a in answers] == [200]
    assert answers[0].headers["connection"] == "close"


# -- fuzz: no input makes the connection raise, answer garbage, or answer more than was asked ---------

REQUEST_PARTS = st.sampled_from([
    b"POST /api/v1/events HTTP/1.1\r\n", b"GET /healthz HTTP/1.1\r\n", b"GET /metrics HTTP/1.0\r\n",
    b"Host: a\r\n", b"Content-Type: application/json\r\n", b"Content-Length: 2\r\n", b"Content-Length: 99\r\n",
    b"Transfer-Encoding: chunked\r\n", b"Expect: 100-continue\r\n", b"Connection: close\r\n",
    b"Connection: Upgrade\r\nUpgrade: websocket\r\n", b"X-API-Key: es_a_b\r\n", b"\r\n", b"{}", b"[]",
    b"2\r\n{}\r\n0\r\n\r\n", b"\x00", b"\xff\xfe", b" ", b"\r\n\r\n",
])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(st.one_of(REQUEST_PARTS, st.binary(max_size=40)), max_size=14),
       cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=4))
def test_fuzzed_input_gets_well_formed_answers_or_a_close(harness: Harness, parts: list[bytes],
                                                          cuts: list[int]) -> None:
    raw = b"".join(parts)
    points = sorted({c % (len(raw) + 1) for c in cuts} | {0, len(raw)})
    chunks = [raw[a:b] for a, b in itertools.pairwise(points) if raw[a:b]]
    conn, transport = harness.connect()
    for chunk in chunks:
        conn.data_received(chunk)  # must not raise
        harness.settle(conn)
    answers = [a for a in parse_answers(bytes(transport.written)) if a.status != 100]  # each well framed
    # one answer per request, plus at most one refusal of what followed; a refusal is the last word
    assert len(answers) <= raw.count(b" HTTP/1.") + 1
    for position, answer in enumerate(answers):
        assert answer.status in {200, 202, 400, 401, 404, 405, 411, 413, 414, 415, 422, 431, 503}, answer.body
        if answer.status >= 400:
            assert answer.headers["content-type"] == "application/problem+json"
        if answer.status in (400, 414, 431) and b"malformed" in answer.body:
            assert position == len(answers) - 1 and transport.closed
    conn.close()
    assert harness.server.reserved == 0  # every body's budget came back
