"""Bodies are parsed with orjson where it gives what the stdlib gives, and by the stdlib elsewhere: the
same events and the same errors either way."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from .helpers import FakeSink, assert_problem


def post(client: FlaskClient, key: str, body: bytes):
    return client.post("/api/v1/events", data=body, headers={"X-API-Key": key, "Content-Type": "application/json"})


@pytest.mark.parametrize("number", [b"123456789012345678901234567890", b"-18446744073709551616"])
def test_integers_past_64_bits_are_refused_naming_the_field_never_turned_into_floats(
    client: FlaskClient, fake_sink: FakeSink, any_key: str, number: bytes
) -> None:
    body = b'{"type": "custom.thing", "data": {"count": ' + number + b"}}"
    response = post(client, any_key, body)
    assert_problem(response, 422)
    [error] = response.get_json()["errors"]
    assert error["field"] == "data.count"
    assert "64-bit" in error["message"]
    assert fake_sink.submitted == []


def test_an_integer_of_19_digits_inside_64_bits_keeps_its_exact_value(
    client: FlaskClient, fake_sink: FakeSink, any_key: str
) -> None:
    body = b'{"type": "custom.thing", "data": {"count": 9223372036854775807, "id": "1234567890123456789012"}}'
    assert post(client, any_key, body).status_code == 202
    assert fake_sink.envelopes[0]["data"] == {"count": 9223372036854775807, "id": "1234567890123456789012"}


@pytest.mark.parametrize("body", [
    b'\xef\xbb\xbf{"type": "custom.thing", "data": {"a": 1}}',  # UTF-8 byte order mark: the stdlib takes it
    b'{"type": "custom.thing", "data": {"a": "\\ud83d\\ude00"}}',  # an escaped surrogate pair
])
def test_bodies_orjson_refuses_but_json_accepts_are_still_accepted(
    client: FlaskClient, fake_sink: FakeSink, any_key: str, body: bytes
) -> None:
    assert post(client, any_key, body).status_code == 202
    assert len(fake_sink.submitted) == 1


def test_invalid_json_gets_the_stdlib_message(client: FlaskClient, any_key: str) -> None:
    response = post(client, any_key, b'{"type": "custom.thing", "data": {"a": 1},}')
    assert_problem(response, 400)
    assert "Expecting property name enclosed in double quotes" in response.get_json()["detail"]
