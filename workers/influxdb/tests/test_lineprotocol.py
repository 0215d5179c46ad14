"""The line protocol encoder follows InfluxDB's escaping rules (and round-trips through the real server)."""

from __future__ import annotations

import math

import pytest

from sink_lib.lineprotocol import Encoder, escape_key, escape_measurement, format_field
from workers.influxdb import InfluxDBSettings, InfluxDBWorker

from .conftest import Influx, make_event


def test_measurement_escapes_commas_and_spaces_only() -> None:
    assert escape_measurement("cpu load,total=x") == "cpu\\ load\\,total=x"


def test_keys_and_tag_values_escape_commas_equals_and_spaces() -> None:
    assert escape_key("a b,c=d") == "a\\ b\\,c\\=d"


def test_backslashes_and_line_breaks_in_names_are_replaced() -> None:
    # a trailing backslash or one before an escaped character cannot be parsed by InfluxDB
    assert escape_key("C:\\dir\\") == "C:/dir/"
    assert escape_key("two\nlines\tand\rtab") == "two\\ lines\\ and\\ tab"
    assert escape_measurement("a\nb") == "a\\ b"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, "true"),
        (False, "false"),
        (42, "42i"),
        (-3, "-3i"),
        (2**63 - 1, "9223372036854775807i"),
        (1.5, "1.5"),
        (1e16, "1e+16"),
        (1e-05, "1e-05"),
        ('say "hi" \\o/', '"say \\"hi\\" \\\\o/"'),
        ("", '""'),
        ("multi\nline", '"multi\nline"'),
    ],
)
def test_field_values(value: object, text: str) -> None:
    assert format_field(value) == text  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 2**63, -(2**63) - 1])
def test_values_without_representation_are_left_out(value: float) -> None:
    assert format_field(value) is None


def test_line_sorts_tags_omits_empty_tags_and_ends_with_the_timestamp() -> None:
    line = Encoder().line("m", {"z": "1", "a": "2", "empty": ""}, {"x": 1, "y": "s", "f": 0.5, "b": True}, 123)
    assert line == 'm,a=2,z=1 x=1i,y="s",f=0.5,b=true 123'


def test_the_hot_path_and_the_general_formatter_agree() -> None:
    values: list[object] = [True, False, 0, -7, 2**63, 1.25, math.nan, math.inf, 'q"\\', ""]
    enc = Encoder()
    for value in values:
        text = format_field(value)  # type: ignore[arg-type]
        expected = None if text is None else f"m x={text} 1"
        assert enc.line("m", {}, {"x": value}, 1) == expected


def test_line_without_a_representable_field_is_none() -> None:
    assert Encoder().line("m", {"a": "b"}, {"x": math.nan}, 1) is None


def test_tag_cache_is_bounded_and_stays_correct() -> None:
    enc = Encoder(cache_size=2)
    lines = [enc.line("m", {"t": f"v {i}"}, {"x": 1}, i) for i in range(5)]
    assert lines[4] == "m,t=v\\ 4 x=1i 4"
    assert len(enc._heads) <= 2


@pytest.mark.influxdb
def test_awkward_names_and_values_round_trip_through_the_real_server(influx: Influx) -> None:
    # Given events whose type, source, tags and strings need every kind of escaping
    settings = InfluxDBSettings(
        url=influx.url, database=influx.database, mapping={"odd-app.*": {"measurement": "odd app,m=1"}}
    )
    worker = InfluxDBWorker(settings)
    worker.open()
    text = 'quote " backslash \\ comma , equals = space   newline \n end\\'
    event = make_event(
        "odd-app.thing",
        {"service": "svc, with=odd chars", "state": "a\\b", "note": text, "n": 7, "flag": False},
        source="/src with space,comma=eq",
    )
    # When the worker writes it
    try:
        worker.write([event])
    finally:
        worker.close()
    # Then InfluxDB returns the same values (backslashes in tags become '/', as documented)
    [row] = influx.query('SELECT * FROM "odd app,m=1"')
    assert row["service"] == "svc, with=odd chars"
    assert row["source"] == "/src with space,comma=eq"
    assert row["state"] == "a/b"
    assert row["note"] == text
    assert row["n"] == 7.0
    assert row["flag"] is False
    assert row["id"] == event.id
