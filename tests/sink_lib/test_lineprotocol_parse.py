"""The InfluxDB line protocol parser: what it accepts, and that nothing else gets past it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sink_lib.lineprotocol import LineProtocolError, parse, parse_line


def test_a_full_line() -> None:
    point = parse_line('cpu,host=a,region=us-east usage=0.5,count=3i,big=18446744073709551615u,'
                       'ok=t,off=FALSE,msg="hi \\"there\\" \\\\ ok" 1700000000000000000')
    assert point.measurement == "cpu"
    assert point.tags == {"host": "a", "region": "us-east"}
    assert point.fields == {"usage": 0.5, "count": 3, "big": 18446744073709551615, "ok": True, "off": False,
                            "msg": 'hi "there" \\ ok'}
    assert point.timestamp_ns == 1700000000000000000


def test_escapes_in_names_tags_and_field_keys() -> None:
    point = parse_line(r"disk\ io,path=C:\,data,name=a\ b\=c field\ one=1,f\,2=2")
    assert point.measurement == "disk io"
    assert point.tags == {"path": "C:,data", "name": "a b=c"}
    assert point.fields == {"field one": 1.0, "f,2": 2.0}


def test_strings_may_hold_spaces_commas_and_equals() -> None:
    point = parse_line('log msg="a, b = c d" 5')
    assert point.fields == {"msg": "a, b = c d"} and point.timestamp_ns == 5


def test_plain_numbers_are_floats_and_timestamps_are_optional() -> None:
    point = parse_line("m v=1,w=-1.5e3")
    assert point.fields == {"v": 1.0, "w": -1500.0}
    assert isinstance(point.fields["v"], float)
    assert point.timestamp_ns is None


def test_precision_scales_the_timestamp() -> None:
    assert parse_line("m v=1 1700000000", precision=1_000_000_000).timestamp_ns == 1700000000 * 10**9


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("cpu", "missing fields"),
        ("cpu ", "field must be key=value"),
        (",host=a v=1", "missing measurement"),
        ("cpu,host v=1", "tag must be key=value"),
        ("cpu,host= v=1", "missing value of tag"),
        ("cpu v=", "missing field value"),
        ("cpu v=abc", "invalid field value"),
        ("cpu v=1x", "invalid field value"),
        ("cpu v=12.5i", "invalid integer"),
        ("cpu v=-1u", "invalid unsigned integer"),
        ("cpu v=9223372036854775808i", "out of range"),
        ("cpu v=NaN", "invalid field value"),
        ("cpu v=1e999", "out of range"),
        ('cpu v="open', "unterminated string"),
        ("cpu v=1 12:00", "invalid timestamp"),
        ("cpu v=1 1 2", "invalid timestamp"),
        ("cpu v=1,", "field must be key=value"),
    ],
)
def test_garbage_is_refused_with_a_reason(line: str, reason: str) -> None:
    with pytest.raises(LineProtocolError, match=reason):
        parse_line(line)


def test_parse_numbers_lines_and_skips_blanks_and_comments() -> None:
    points, errors = parse("# a comment\ncpu v=1\n\n  \nbad\r\nmem v=2i 10\r\n")
    assert [(n, p.measurement) for n, _, p in points] == [(2, "cpu"), (6, "mem")]
    assert errors == [{"line": 5, "column": 4, "message": "missing fields"}]


_name = st.text(st.characters(codec="utf-8", exclude_characters="\n\r\\"), min_size=1, max_size=12).filter(
    lambda s: not s.startswith("#") and s.strip(" ") == s
)
_value = st.one_of(st.integers(-(2**63), 2**63 - 1), st.booleans(),
                   st.floats(allow_nan=False, allow_infinity=False),
                   st.text(st.characters(codec="utf-8", exclude_characters="\n\r"), max_size=20))


def _escape(text: str, chars: str) -> str:
    for ch in chars:
        text = text.replace(ch, "\\" + ch)
    return text


def _encode(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


@given(_name, st.dictionaries(_name, _name, max_size=3), st.dictionaries(_name, _value, min_size=1, max_size=4),
       st.one_of(st.none(), st.integers(-(2**62), 2**62)))
def test_what_an_encoder_writes_parses_back(measurement: str, tags: dict, fields: dict, ts: int | None) -> None:
    line = _escape(measurement, ", ")
    line += "".join(f",{_escape(k, ',= ')}={_escape(v, ',= ')}" for k, v in tags.items())
    line += " " + ",".join(f"{_escape(k, ',= ')}={_encode(v)}" for k, v in fields.items())
    if ts is not None:
        line += f" {ts}"
    point = parse_line(line)
    assert point.measurement == measurement
    assert point.tags == tags
    assert point.fields == fields
    assert point.timestamp_ns == ts


@given(st.text(max_size=300))
def test_any_text_gives_points_or_line_errors_never_an_exception(body: str) -> None:
    points, errors = parse(body)
    lines = body.split("\n")
    for number, _raw, _point in points:
        assert 1 <= number <= len(lines)
    assert all(1 <= e["line"] <= len(lines) and e["message"] for e in errors)
