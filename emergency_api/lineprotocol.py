"""A parser of InfluxDB line protocol (the format Telegraf and InfluxDB clients write).

::

    measurement[,tag=value...] field=value[,field=value...] [timestamp]

Escapes: ``\\,`` ``\\ `` in measurements; ``\\,`` ``\\=`` ``\\ `` in tag keys, tag values and field
keys; ``\\"`` and ``\\\\`` inside string field values. Field values: floats (``1``, ``-1.5e3``),
integers (``12i``), unsigned integers (``12u``), strings (``"..."``) and booleans (``t``, ``true``,
``F``, ...). Empty lines and lines starting with ``#`` are skipped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

PRECISIONS = {"ns": 1, "n": 1, "us": 1_000, "u": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
              "m": 60_000_000_000, "h": 3_600_000_000_000}
_TRUE = frozenset({"t", "T", "true", "True", "TRUE"})
_FALSE = frozenset({"f", "F", "false", "False", "FALSE"})
_INT64 = (-(1 << 63), (1 << 63) - 1)
_UINT64 = (0, (1 << 64) - 1)


class LineError(ValueError):
    """A line is not valid line protocol; ``column`` is 1-based."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(message)
        self.column = column


@dataclass(frozen=True)
class Point:
    """One parsed line; ``timestamp_ns`` is already scaled by the precision."""

    measurement: str
    tags: dict[str, str]
    fields: dict[str, Any]
    timestamp_ns: int | None


def _token(line: str, pos: int, stops: str) -> tuple[str, int]:
    """Read up to an unescaped character of ``stops``; return the unescaped text and its end."""
    out: list[str] = []
    n = len(line)
    while pos < n:
        ch = line[pos]
        if ch == "\\" and pos + 1 < n and line[pos + 1] in ", =\\\"":
            out.append(line[pos + 1])
            pos += 2
            continue
        if ch in stops:
            break
        out.append(ch)
        pos += 1
    return "".join(out), pos


def _string_value(line: str, pos: int) -> tuple[str, int]:
    """Read a double-quoted string starting at ``pos`` (the opening quote)."""
    out: list[str] = []
    n = len(line)
    pos += 1
    while pos < n:
        ch = line[pos]
        if ch == "\\" and pos + 1 < n and line[pos + 1] in '"\\':
            out.append(line[pos + 1])
            pos += 2
            continue
        if ch == '"':
            return "".join(out), pos + 1
        out.append(ch)
        pos += 1
    raise LineError("unterminated string field value", pos + 1)


def _scalar(raw: str, column: int) -> Any:
    if not raw:
        raise LineError("missing field value", column)
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    last = raw[-1]
    if last in "iu":
        digits = raw[:-1]
        bounds = _INT64 if last == "i" else _UINT64
        if not digits.lstrip("-").isdigit() or (last == "u" and digits.startswith("-")):
            raise LineError(f"invalid {'integer' if last == 'i' else 'unsigned integer'} {raw!r}", column)
        value = int(digits)
        if not bounds[0] <= value <= bounds[1]:
            raise LineError(f"value {raw!r} out of range", column)
        return value
    try:
        number = float(raw)
    except ValueError:
        raise LineError(f"invalid field value {raw!r}", column) from None
    if not math.isfinite(number) or raw.lower().lstrip("+-") in ("nan", "inf", "infinity"):
        raise LineError(f"invalid field value {raw!r} (not a finite number)", column)
    return number


def parse_line(line: str, precision: int = 1) -> Point:
    """Parse one line; raise LineError naming the column and the reason."""
    n = len(line)
    measurement, pos = _token(line, 0, ", ")
    if not measurement:
        raise LineError("missing measurement", 1)
    tags: dict[str, str] = {}
    while pos < n and line[pos] == ",":
        key, pos = _token(line, pos + 1, "=, ")
        if not key or pos >= n or line[pos] != "=":
            raise LineError("tag must be key=value", pos + 1)
        value, pos = _token(line, pos + 1, ", ")
        if not value:
            raise LineError(f"missing value of tag {key!r}", pos + 1)
        tags[key] = value
    if pos >= n or line[pos] != " ":
        raise LineError("missing fields", pos + 1)
    while pos < n and line[pos] == " ":
        pos += 1
    fields: dict[str, Any] = {}
    while True:
        key, pos = _token(line, pos, "=, ")
        if not key or pos >= n or line[pos] != "=":
            raise LineError("field must be key=value", pos + 1)
        pos += 1
        if pos < n and line[pos] == '"':
            fields[key], pos = _string_value(line, pos)
        else:
            start = pos
            while pos < n and line[pos] not in ", ":
                pos += 1
            fields[key] = _scalar(line[start:pos], start + 1)
        if pos < n and line[pos] == ",":
            pos += 1
            continue
        break
    timestamp: int | None = None
    rest = line[pos:].strip(" ")
    if rest:
        if not rest.lstrip("-").isdigit():
            raise LineError(f"invalid timestamp {rest!r}", pos + 2)
        timestamp = int(rest) * precision
        if not _INT64[0] <= timestamp <= _INT64[1]:
            raise LineError(f"timestamp {rest!r} out of range", pos + 2)
    return Point(measurement, tags, fields, timestamp)


def parse(body: str, precision: int = 1) -> tuple[list[tuple[int, str, Point]], list[dict[str, Any]]]:
    """Parse a whole body: the good points with their line numbers and raw text, and the errors."""
    points: list[tuple[int, str, Point]] = []
    errors: list[dict[str, Any]] = []
    for number, raw in enumerate(body.split("\n"), start=1):
        line = raw.rstrip("\r")
        stripped = line.lstrip(" \t")
        if not stripped or stripped.startswith("#"):
            continue
        try:
            points.append((number, line, parse_line(stripped, precision)))
        except LineError as exc:
            errors.append({"line": number, "column": exc.column, "message": str(exc)})
    return points, errors
