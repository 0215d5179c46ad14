"""The parser: text -> :class:`Point`, raising nothing but :class:`LineProtocolError` for bad lines.

Every token is matched by a possessive regular expression (no backtracking, linear in the line), every
number is checked against an ASCII pattern and a digit count before ``int()`` sees it, so neither
``²`` nor Arabic-Indic digits nor a timestamp of thousands of digits get past the checks.
"""

from __future__ import annotations

import math
import re
from typing import Any

from ._point import (
    BOOLEAN,
    FLOAT,
    INT64_MAX,
    INT64_MIN,
    INTEGER,
    STRING,
    UINT64_MAX,
    UNSIGNED,
    FieldValue,
    LineProtocolError,
    Point,
)

# a special character preceded by a backslash belongs to the token (InfluxDB looks one character back)
_MEASUREMENT = re.compile(r"(?:[^,\\ \n]|\\[, ]?)++")
_NAME = re.compile(r"(?:[^,=\\ \n]|\\[,= ]?)++")
_STRING = re.compile(r'"((?:[^"\\]|\\["\\]?)*+)"')
_STRING_ESCAPE = re.compile(r'\\(["\\])')
_UNQUOTED = re.compile(r"[^, ]*+")
_FLOAT = re.compile(r"-?(?:[0-9]++(?:\.[0-9]*+)?|\.[0-9]++)(?:[eE][+-]?[0-9]++)?")
_INTEGER = re.compile(r"-?[0-9]{1,20}")
_UNSIGNED = re.compile(r"[0-9]{1,20}")
_TAIL = re.compile(r"( ++)(-?[0-9]++)? *+")
_TRUE = frozenset({"t", "T", "true", "True", "TRUE"})
_FALSE = frozenset({"f", "F", "false", "False", "FALSE"})


def _unescape_measurement(text: str) -> str:
    if "\\" not in text:
        return text
    return text.replace("\\,", ",").replace("\\ ", " ")


def _unescape_name(text: str) -> str:
    if "\\" not in text:
        return text
    return text.replace("\\,", ",").replace("\\ ", " ").replace("\\=", "=")


def _scalar(raw: str, column: int) -> tuple[FieldValue, str]:
    """The value and type of an unquoted field value."""
    if not raw:
        raise LineProtocolError("missing field value", column)
    if raw in _TRUE:
        return True, BOOLEAN
    if raw in _FALSE:
        return False, BOOLEAN
    last = raw[-1]
    if last == "i" or last == "u":
        digits = raw[:-1]
        kind, pattern, low, high = ((INTEGER, _INTEGER, INT64_MIN, INT64_MAX) if last == "i"
                                    else (UNSIGNED, _UNSIGNED, 0, UINT64_MAX))
        if pattern.fullmatch(digits) is None:
            raise LineProtocolError(f"invalid {kind.replace('unsigned', 'unsigned integer')} {raw[:40]!r}", column)
        value = int(digits)
        if not low <= value <= high:
            raise LineProtocolError(f"{kind} {raw[:40]!r} out of range", column)
        return value, kind
    if _FLOAT.fullmatch(raw) is None:
        raise LineProtocolError(f"invalid field value {raw[:40]!r}", column)
    number = float(raw)
    if not math.isfinite(number):
        raise LineProtocolError(f"float {raw[:40]!r} out of range", column)
    return number, FLOAT


def parse_line(line: str, precision: int = 1) -> Point:
    """Parse one line (no newline in it); LineProtocolError names the column and the reason."""
    match = _MEASUREMENT.match(line)
    if match is None:
        raise LineProtocolError("missing measurement", 1)
    measurement = _unescape_measurement(match.group())
    pos, n = match.end(), len(line)
    tags: dict[str, str] = {}
    while pos < n and line[pos] == ",":
        key = _NAME.match(line, pos + 1)
        if key is None or key.end() >= n or line[key.end()] != "=":
            raise LineProtocolError("a tag must be key=value", (key.end() if key else pos + 1) + 1)
        tag_value = _NAME.match(line, key.end() + 1)
        if tag_value is None:
            raise LineProtocolError(f"missing value of tag {_unescape_name(key.group())[:40]!r}", key.end() + 2)
        tags[_unescape_name(key.group())] = _unescape_name(tag_value.group())
        pos = tag_value.end()
    if pos >= n or line[pos] != " ":
        raise LineProtocolError("missing fields" if pos >= n else "invalid character in the series key", pos + 1)
    while pos < n and line[pos] == " ":
        pos += 1
    fields: dict[str, FieldValue] = {}
    types: dict[str, str] = {}
    while True:
        key = _NAME.match(line, pos)
        if key is None or key.end() >= n or line[key.end()] != "=":
            raise LineProtocolError("a field must be key=value", (key.end() if key else pos) + 1)
        name = _unescape_name(key.group())
        pos = key.end() + 1
        value: Any
        if pos < n and line[pos] == '"':
            quoted = _STRING.match(line, pos)
            if quoted is None:
                raise LineProtocolError("unterminated string field value", pos + 1)
            value, kind, pos = _STRING_ESCAPE.sub(r"\1", quoted.group(1)), STRING, quoted.end()
        else:
            raw = _UNQUOTED.match(line, pos)
            assert raw is not None  # matches the empty string too
            value, kind = _scalar(raw.group(), pos + 1)
            pos = raw.end()
        fields[name], types[name] = value, kind
        if pos < n and line[pos] == ",":
            pos += 1
            continue
        break
    timestamp: int | None = None
    if pos < n:
        tail = _TAIL.fullmatch(line, pos)
        if tail is None:
            raise LineProtocolError(f"invalid timestamp or text after the fields: {line[pos:pos + 40]!r}", pos + 1)
        digits = tail.group(2)
        if digits is not None:
            column = pos + len(tail.group(1)) + 1
            if len(digits.lstrip("-")) > 19:
                raise LineProtocolError("timestamp out of range", column)
            timestamp = int(digits) * precision
            if not INT64_MIN <= timestamp <= INT64_MAX:
                raise LineProtocolError("timestamp out of range", column)
    return Point(measurement, tags, fields, types, timestamp)


def measurement_of(line: str) -> str | None:
    """The measurement of a line without parsing the rest (for cheap checks before parsing)."""
    match = _MEASUREMENT.match(line)
    return None if match is None else _unescape_measurement(match.group())


def count_lines(body: bytes | str) -> int:
    """An upper bound of the lines of a body, counted without splitting it."""
    if isinstance(body, bytes):
        return body.count(b"\n") + 1
    return body.count("\n") + 1


def lines(body: str) -> list[tuple[int, str]]:
    """The lines of a body to parse, numbered from 1: blank lines and ``#`` comments left out."""
    out: list[tuple[int, str]] = []
    for number, raw in enumerate(body.split("\n"), start=1):
        line = raw[:-1] if raw.endswith("\r") else raw
        stripped = line.lstrip(" \t")
        if stripped and stripped[0] != "#":
            out.append((number, stripped))
    return out


def parse(
    body: str, precision: int = 1, *, max_line_length: int | None = None
) -> tuple[list[tuple[int, str, Point]], list[dict[str, Any]]]:
    """Parse a body: the good points with their line numbers and text, and one error per bad line.

    Lines longer than ``max_line_length`` characters are errors without being parsed.
    """
    return parse_lines(lines(body), precision, max_line_length=max_line_length)


def parse_lines(
    numbered: list[tuple[int, str]], precision: int = 1, *, max_line_length: int | None = None
) -> tuple[list[tuple[int, str, Point]], list[dict[str, Any]]]:
    """:func:`parse` of lines already split by :func:`lines`."""
    points: list[tuple[int, str, Point]] = []
    errors: list[dict[str, Any]] = []
    for number, line in numbered:
        if max_line_length is not None and len(line) > max_line_length:
            errors.append({"line": number, "column": max_line_length + 1,
                           "message": f"line longer than {max_line_length} characters"})
            continue
        try:
            points.append((number, line, parse_line(line, precision)))
        except LineProtocolError as exc:
            errors.append({"line": number, "column": exc.column, "message": str(exc)})
    return points, errors
