"""A small, fast InfluxDB line protocol encoder (the worker's hot path).

Rules (InfluxDB 1.x and 2.x line protocol)::

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

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

# line breaks and tabs become (escaped) spaces
_MEASUREMENT = str.maketrans(
    {",": "\\,", " ": "\\ ", "\\": "/", "\n": "\\ ", "\r": "\\ ", "\t": "\\ "}
)
_KEY = str.maketrans(
    {",": "\\,", "=": "\\=", " ": "\\ ", "\\": "/", "\n": "\\ ", "\r": "\\ ", "\t": "\\ "}
)
_STRING = str.maketrans({'"': '\\"', "\\": "\\\\"})

FieldValue = str | int | float | bool


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


class Encoder:
    """Encodes points into lines, caching the escaped text of the (few) tag sets and field keys it has seen."""

    def __init__(self, cache_size: int = 10_000) -> None:
        self._heads: dict[tuple[Any, ...], str] = {}
        self._names: dict[str, str] = {}
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
