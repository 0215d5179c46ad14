"""Cost before checks on the write endpoints: body, gzip and line limits, scopes before parsing, capped
error lists."""

from __future__ import annotations

import gzip
import io

from flask.testing import FlaskClient

from emergency_api import ApiSettings
from emergency_api.problems import MAX_ERRORS

from .helpers import FakeSink, assert_problem


def post(client: FlaskClient, key: str, body: bytes, **headers: str):
    return client.post("/api/v1/write", data=body, content_type="text/plain",
                       headers={"Authorization": f"Bearer {key}", **headers})


def test_a_chunked_body_over_the_limit_is_413_and_nothing_is_published(
    client: FlaskClient, fake_sink: FakeSink, health_key: str, api_settings: ApiSettings
) -> None:
    # Given a body one line past max_body_bytes sent without Content-Length (chunked)
    line = b"cpu v=1\n"
    body = line * (api_settings.max_body_bytes // len(line) + 1)
    response = client.post("/api/v1/write", input_stream=io.BytesIO(body), content_type="text/plain",
                           headers={"Authorization": f"Bearer {health_key}", "Transfer-Encoding": "chunked"},
                           environ_overrides={"wsgi.input_terminated": True})
    # Then 413 and nothing of it is published (it used to be cut at the limit and published)
    assert_problem(response, 413)
    assert fake_sink.submitted == []


def test_a_gzip_body_that_inflates_past_the_limit_is_413(
    client: FlaskClient, fake_sink: FakeSink, health_key: str, api_settings: ApiSettings
) -> None:
    bomb = gzip.compress(b"cpu v=1" + b" " * api_settings.max_body_bytes)
    assert len(bomb) < api_settings.max_body_bytes
    problem = assert_problem(post(client, health_key, bomb, **{"Content-Encoding": "gzip"}), 413)
    assert "decompressed" in problem["detail"]
    assert_problem(post(client, health_key, b"not gzip", **{"Content-Encoding": "gzip"}), 400)
    assert_problem(post(client, health_key, b"cpu v=1", **{"Content-Encoding": "br"}), 415)
    assert fake_sink.submitted == []


def test_too_many_lines_are_refused_before_parsing(
    client: FlaskClient, fake_sink: FakeSink, health_key: str, api_settings: ApiSettings
) -> None:
    # newlines alone past max_lines: refused on the count, no line looked at
    assert_problem(post(client, health_key, b"\n" * (api_settings.max_lines + 1)), 413)
    exactly = b"".join(b"cpu v=%d\n" % i for i in range(api_settings.max_lines))
    assert post(client, health_key, exactly).status_code == 204


def test_scope_is_checked_before_parsing(client: FlaskClient, fake_sink: FakeSink, keys_file) -> None:
    from emergency_api.keys import create_key

    cpu_only = create_key(keys_file, "cpu", ["metric.cpu"])[1]
    # the out-of-scope line is garbage after its measurement: still 403, not a parse error
    problem = assert_problem(post(client, cpu_only, b"cpu v=1\nsecret v=\xc2\xb2i\n"), 403)
    assert problem["errors"] == [{"line": 2, "field": "type", "message": "key 'cpu' may not post 'metric.secret'"}]
    assert fake_sink.submitted == []


def test_overlong_lines_are_refused(client: FlaskClient, fake_sink: FakeSink, keys_file,
                                    health_key: str) -> None:
    from emergency_api import create_app

    settings = ApiSettings(keys_file=keys_file, max_line_length=20, rate_limit="1000/minute")
    short = create_app(settings, sink=fake_sink).test_client()
    problem = assert_problem(post(short, health_key, b"cpu v=1\ncpu v=1,w=2,x=3,y=4,z=5\n"), 400)
    assert problem["errors"] == [{"line": 2, "column": 21, "message": "line longer than 20 characters"}]
    assert problem["accepted"] == 1


def test_the_error_list_is_capped_and_says_how_many_more(fake_sink: FakeSink, health_key: str, keys_file) -> None:
    from emergency_api import create_app

    settings = ApiSettings(keys_file=keys_file, max_lines=1000, rate_limit="1000/minute")
    client = create_app(settings, sink=fake_sink).test_client()
    body = b"".join(b"cpu v=x%d\n" % i for i in range(MAX_ERRORS + 20))
    problem = assert_problem(post(client, health_key, body), 400)
    assert len(problem["errors"]) == MAX_ERRORS and problem["errors_omitted"] == 20


def test_the_422_error_list_of_events_is_capped_too(fake_sink: FakeSink, any_key: str, keys_file) -> None:
    from emergency_api import create_app

    settings = ApiSettings(keys_file=keys_file, max_batch=1000, rate_limit="1000/minute")
    client = create_app(settings, sink=fake_sink).test_client()
    events = [{"type": "storage.file.uploaded", "data": {"file_id": "f", "bytes": "many"}}] * (MAX_ERRORS + 50)
    problem = assert_problem(client.post("/api/v1/events", json=events, headers={"X-API-Key": any_key}), 422)
    assert len(problem["errors"]) == MAX_ERRORS and problem["errors_omitted"] == 50
