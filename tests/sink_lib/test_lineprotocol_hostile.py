"""Hostile line protocol: the parser answers every input with points or its own error, and whatever it
parses encodes back to the same point (the contract the influxdb worker relies on)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sink_lib.lineprotocol import Encoder, LineProtocolError, Point, encode, parse, parse_line


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("m v=²i", "invalid integer"),  # str.isdigit() says yes, int() says no
        ("m v=³u", "invalid unsigned integer"),
        ("m v=--5i", "invalid integer"),
        ("m v=-5u", "invalid unsigned integer"),
        ("m v=\u0661\u0662\u0663", "invalid field value"),  # Arabic-Indic digits are not numbers in line protocol
        ("m v=\u0661\u0662\u0663i", "invalid integer"),
        ("m v=1 \u0661\u0667\u0660\u0660", "invalid timestamp"),
        ("m v=1 " + "9" * 5000, "timestamp out of range"),  # int() of it would raise ValueError
        ("m v=" + "9" * 5000 + "i", "invalid integer"),
        ("m v=1 9223372036854775808", "timestamp out of range"),
        ("m v=1e400", "out of range"),
        ("m v=Infinity", "invalid field value"),
        ("m v=+1", "invalid field value"),
    ],
)
def test_inputs_that_once_crashed_the_parser_are_line_errors(line: str, reason: str) -> None:
    with pytest.raises(LineProtocolError, match=reason):
        parse_line(line)


def test_a_timestamp_that_overflows_after_scaling_is_refused() -> None:
    with pytest.raises(LineProtocolError, match="out of range"):
        parse_line("m v=1 9223372036854775", precision=1_000_000_000)


def test_overlong_lines_are_refused_without_parsing() -> None:
    points, errors = parse("m v=1\nm v=" + "1" * 100, max_line_length=50)
    assert [n for n, _, _ in points] == [1]
    assert errors == [{"line": 2, "column": 51, "message": "line longer than 50 characters"}]


def test_backslashes_follow_influxdb() -> None:
    # a special character preceded by a backslash belongs to the name; other backslashes stay
    point = parse_line(r"m\x,k\\,x=C:\dir\,a f\=\=1=1")
    assert point.measurement == "m\\x"
    assert point.tags == {"k\\,x": "C:\\dir,a"}
    assert list(point.fields) == ["f==1"]


def test_names_ending_in_a_backslash_cannot_be_encoded() -> None:
    with pytest.raises(LineProtocolError, match="ends with a backslash"):
        encode(Point("m", {"path": "C:\\"}, {"v": 1.0}))


def test_types_travel_through_json() -> None:
    # Given a point with a float that looks like an integer and an unsigned field
    point = parse_line('m,h=a f=1,i=1i,u=1u,s="1",b=t 17')
    # When it goes through an event's data as JSON and back
    data = json.loads(json.dumps(point.to_data()))
    assert data["field_types"] == {"f": "float", "i": "integer", "u": "unsigned", "s": "string", "b": "boolean"}
    again = Point.from_data(data)
    # Then it encodes to the same line
    assert again == point
    assert encode(again) == 'm,h=a f=1.0,i=1i,u=1u,s="1",b=true 17'


def test_from_data_names_the_bad_key() -> None:
    with pytest.raises(LineProtocolError, match=r"data\.field_types\.v"):
        Point.from_data({"measurement": "m", "fields": {"v": 1}, "field_types": {"v": "decimal"}})
    with pytest.raises(LineProtocolError, match="field 'v'"):
        Point.from_data({"measurement": "m", "fields": {"v": -1}, "field_types": {"v": "unsigned"}})
    with pytest.raises(LineProtocolError, match=r"data\.fields"):
        Point.from_data({"measurement": "m", "fields": {}})


_chars = st.characters(codec="utf-8", exclude_characters="\n")
_name = st.text(_chars, min_size=1, max_size=8).filter(lambda s: not s.endswith("\\"))
_fields = st.dictionaries(_name, st.one_of(
    st.tuples(st.floats(allow_nan=False, allow_infinity=False), st.just("float")),
    st.tuples(st.integers(-(2**63), 2**63 - 1), st.just("integer")),
    st.tuples(st.integers(0, 2**64 - 1), st.just("unsigned")),
    st.tuples(st.text(_chars, max_size=12), st.just("string")),
    st.tuples(st.booleans(), st.just("boolean")),
), min_size=1, max_size=4)


@given(_name.filter(lambda s: not s.startswith("#") and not s.startswith(" ")),
       st.dictionaries(_name, _name, max_size=3), _fields,
       st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)))
def test_encode_then_parse_gives_the_point_back(measurement: str, tags: dict, fields: dict, ts: int | None) -> None:
    point = Point(measurement, tags, {k: v for k, (v, _) in fields.items()},
                  {k: t for k, (_, t) in fields.items()}, ts)
    assert parse_line(encode(point)) == point
    # the worker's cached encoder writes the same line, also from its cache
    cached = Encoder()
    assert cached.exact(point) == encode(point) == cached.exact(point)


@given(st.text(st.sampled_from('ab ,=\\"#-.0123456789eEiutf²\u0661\r\t'), max_size=60))
def test_parse_then_encode_round_trips_and_nothing_else_is_raised(body: str) -> None:
    points, errors = parse(body)
    assert all(e["message"] and e["column"] >= 1 for e in errors)
    for _number, _line, point in points:
        assert parse_line(encode(point)) == point


def test_a_bounded_atheris_run_finds_nothing() -> None:
    pytest.importorskip("atheris")
    target = Path(__file__).with_name("fuzz_lineprotocol.py")
    done = subprocess.run([sys.executable, str(target), "-runs=20000", "-max_len=256", "-seed=1"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Done 20000 runs" in done.stderr
