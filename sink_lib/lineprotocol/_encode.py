"""The encoders: :func:`encode` writes a parsed :class:`Point` back exactly; :class:`Encoder` is the
influxdb worker's fast encoder of the points it maps from events of every other type.

:func:`encode` escapes as InfluxDB unescapes (see the package docstring) and writes every field with
its recorded type, so ``parse_line(encode(p)) == p``.

:class:`Encoder` (the worker's hot path) follows InfluxDB's rules::

    measurement[,tag_key=tag_value...] field_key=field_value[,...] timestamp

- measurement: commas and spaces are escaped with a backslash;
- tag keys, tag values and field keys: commas, equals signs and spaces are escaped;
- string field values are double-quoted; double quotes and backslashes inside are escaped;
- integers carry an ``i`` suffix, floats are plain decimals, booleans are ``true``/``false``;
- NaN and infinities have no representation: such fields are left out.

Two rules of our own, because the protocol cannot carry these characters in names and tags: a
backslash becomes ``/`` (InfluxDB cannot parse one at the end of a tag value or before an escaped
character, and keeps ``\\\\`` doubled), and newlines, carriage returns and tabs become spaces. Tags with an
empty value are left out (the protocol refuses them). Tags are written sorted by key, as InfluxDB
prefers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ._point import BOOLEAN, FLOAT, INT64_MAX, INT64_MIN, INTEGER, STRING, UNSIGNED, LineProtocolError, Point

# line breaks and tabs become (escaped) spaces
_MEASUREMENT = str.maketrans(
    {",": "\\,", " ": "\\ ", "\\": "/", "\n": "\\ ", "\r": "\\ ", "\t": "\\ "}
)
_KEY = str.maketrans(
    {",": "\\,", "=": "\\=", " ": "\\ ", "\\": "/", "\n": "\\ ", "\r": "\\ ", "\t": "\\ "}
)
_STRING = str.maketrans({'"': '\\"', "\\": "\\\\"})

FieldValue = str | int | float | bool
# exact escaping, for points that came from line protocol
_EXACT_MEASUREMENT = str.maketrans({",": "\\,", " ": "\\ "})
_EXACT_NAME = str.maketrans({",": "\\,", "=": "\\=", " ": "\\ "})


def escape_measurement(name: str) -> str:
    """A measurement name as it appears in a line.

    A line that begins with ``#`` is a comment to InfluxDB (the point would vanish without an error),
    and no escape exists for it, so a leading ``#`` becomes ``_``.
    """
    escaped = name.translate(_MEASUREMENT)
    return "_" + escaped[1:] if escaped.startswith("#") else escaped


def escape_key(text: str) -> str:
    """A tag key, tag value or field key as it appears in a line."""
    return text.translate(_KEY)


def format_field(value: FieldValue) -> str | None:
    """The line protocol text of a field value, or None when it has none (NaN, out-of-range int)."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        if INT64_MIN <= value <= INT64_MAX:
            return f"{value}i"
        return None
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else None
    return '"' + value.translate(_STRING) + '"'


def escape_string(value: str) -> str:
    """A string field value as it appears in a line, quotes included."""
    return '"' + value.translate(_STRING) + '"'


def _exact(text: str, table: dict[int, str], what: str) -> str:
    if not text or text.endswith("\\") or "\n" in text:
        raise LineProtocolError(f"{what} {text[:40]!r} cannot be written in line protocol "
                                "(empty, ends with a backslash or holds a line break)")
    return text.translate(table)


def _exact_field(name: str, value: FieldValue, kind: str) -> str:
    if kind == FLOAT and type(value) is float and math.isfinite(value):
        return repr(value)
    if kind == INTEGER and type(value) is int and INT64_MIN <= value <= INT64_MAX:
        return f"{value}i"
    if kind == UNSIGNED and type(value) is int and 0 <= value < 1 << 64:
        return f"{value}u"
    if kind == STRING and type(value) is str:
        return escape_string(value)
    if kind == BOOLEAN and type(value) is bool:
        return "true" if value else "false"
    raise LineProtocolError(f"field {name!r}: {value!r} is not a valid {kind}")


def _exact_head(point: Point) -> str:
    measurement = _exact(point.measurement, _EXACT_MEASUREMENT, "measurement")
    if measurement.startswith("#"):
        raise LineProtocolError(f"measurement {point.measurement[:40]!r} would make the line a comment")
    head = [measurement]
    for key in sorted(point.tags):
        head.append(f",{_exact(key, _EXACT_NAME, 'tag key')}={_exact(point.tags[key], _EXACT_NAME, 'tag value')}")
    return "".join(head)


def encode(point: Point) -> str:
    """The line of ``point``, which parses back to the same point; LineProtocolError when it has none.

    Tags are written sorted by key, as InfluxDB prefers.
    """
    if not point.fields:
        raise LineProtocolError("a point needs at least one field")
    fields = ",".join(
        f"{_exact(name, _EXACT_NAME, 'field key')}={_exact_field(name, value, point.field_type(name))}"
        for name, value in point.fields.items()
    )
    line = _exact_head(point) + " " + fields
    return line if point.timestamp_ns is None else f"{line} {point.timestamp_ns}"


class Encoder:
    """Encodes points into lines, caching the escaped text of the (few) tag sets and field keys it has seen."""

    def __init__(self, cache_size: int = 10_000) -> None:
        self._heads: dict[tuple[Any, ...], str] = {}
        self._names: dict[str, str] = {}
        self._exact_names: dict[str, str] = {}
        self._cache_size = cache_size

    def head(self, measurement: str, tags: Mapping[str, str]) -> str:
        """``measurement,k=v,...`` with tags sorted and escaped; tags with an empty value left out."""
        key = (measurement, *tags.items())
        head = self._heads.get(key)
        if head is None:
            parts = [escape_measurement(measurement)]
            for name in sorted(tags):
                value = escape_key(tags[name])
                if value and name:
                    parts.append(f",{escape_key(name)}={value}")
            head = "".join(parts)
            if len(self._heads) >= self._cache_size:
                self._heads.clear()
            self._heads[key] = head
        return head

    def name(self, text: str) -> str:
        """A field key, escaped (cached: field keys are few)."""
        escaped = self._names.get(text)
        if escaped is None:
            escaped = escape_key(text)
            if len(self._names) >= self._cache_size:
                self._names.clear()
            self._names[text] = escaped
        return escaped

    def exact(self, point: Point) -> str:
        """:func:`encode` with the escaped series keys and field keys cached (the worker's hot path)."""
        key = (None, point.measurement, *point.tags.items())
        head = self._heads.get(key)
        if head is None:
            head = _exact_head(point)
            if len(self._heads) >= self._cache_size:
                self._heads.clear()
            self._heads[key] = head
        names, types, body = self._exact_names, point.types, []
        for name, value in point.fields.items():
            escaped = names.get(name)
            if escaped is None:
                escaped = _exact(name, _EXACT_NAME, "field key")
                if len(names) >= self._cache_size:
                    names.clear()
                names[name] = escaped
            kind = types.get(name) or point.field_type(name)
            if kind == FLOAT and type(value) is float and value - value == 0.0:
                body.append(f"{escaped}={value!r}")
            else:
                body.append(f"{escaped}={_exact_field(name, value, kind)}")
        if not body:
            raise LineProtocolError("a point needs at least one field")
        fields = ",".join(body)
        return f"{head} {fields}" if point.timestamp_ns is None else f"{head} {fields} {point.timestamp_ns}"

    def line(
        self, measurement: str, tags: Mapping[str, str], fields: Mapping[str, Any], time_ns: int
    ) -> str | None:
        """One line, or None when no field has a representable value (a line needs one)."""
        names = self._names
        body = []
        for key, value in fields.items():
            name = names.get(key) or self.name(key)
            kind = type(value)
            # the common exact types inline (this is the hot loop); anything else via format_field
            if kind is float:
                if value - value == 0.0:  # finite: inf - inf and nan - nan are nan
                    body.append(f"{name}={value!r}")
            elif kind is str:
                body.append(f'{name}="{value.translate(_STRING)}"')
            elif kind is int:
                if INT64_MIN <= value <= INT64_MAX:
                    body.append(f"{name}={value}i")
            elif kind is bool:
                body.append(f"{name}={'true' if value else 'false'}")
            else:
                text = format_field(value)
                if text is not None:
                    body.append(f"{name}={text}")
        if not body:
            return None
        return f"{self.head(measurement, tags)} {','.join(body)} {time_ns}"
