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

_MEASUREMENT = str.maketrans(
    {",": "\\,", " ": "\\ ", "\\": "/", "\n": " ", "\r": " ", "\t": " "}
)
_KEY = str.maketrans(
    {",": "\\,", "=": "\\=", " ": "\\ ", "\\": "/", "\n": " ", "\r": " ", "\t": " "}
)
_STRING = str.maketrans({'"': '\\"', "\\": "\\\\"})

FieldValue = str | int | float | bool


def escape_measurement(name: str) -> str:
    """A measurement name as it appears in a line."""
    return name.translate(_MEASUREMENT)


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
    """Encodes points into lines, caching the escaped text of the (few) tag pairs it has seen."""

    def __init__(self, cache_size: int = 10_000) -> None:
        self._tags: dict[tuple[str, str], str] = {}
        self._names: dict[str, str] = {}
        self._cache_size = cache_size

    def tag_pair(self, key: str, value: str) -> str:
        """``,key=value`` escaped, or an empty string when the escaped value is empty."""
        pair = self._tags.get((key, value))
        if pair is None:
            escaped = escape_key(value)
            pair = f",{escape_key(key)}={escaped}" if escaped and key else ""
            if len(self._tags) >= self._cache_size:
                self._tags.clear()
            self._tags[(key, value)] = pair
        return pair

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
        head = [escape_measurement(measurement)]
        for key in sorted(tags):
            head.append(self.tag_pair(key, tags[key]))
        body = []
        for key, value in fields.items():
            text = format_field(value)
            if text is not None:
                body.append(f"{self.name(key)}={text}")
        if not body:
            return None
        return f"{''.join(head)} {','.join(body)} {time_ns}"
