"""A point of line protocol, its field types, and how it travels in an event's ``data``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sink_lib.errors import EventSinkError

#: multiplier from each precision InfluxDB accepts to nanoseconds
PRECISIONS = {"ns": 1, "n": 1, "us": 1_000, "u": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
              "m": 60_000_000_000, "h": 3_600_000_000_000}
FLOAT, INTEGER, UNSIGNED, STRING, BOOLEAN = "float", "integer", "unsigned", "string", "boolean"
FIELD_TYPES = frozenset({FLOAT, INTEGER, UNSIGNED, STRING, BOOLEAN})
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
UINT64_MAX = (1 << 64) - 1

FieldValue = float | int | str | bool


class LineProtocolError(EventSinkError, ValueError):
    """Text that is not valid line protocol, or a point that cannot be written as one.

    ``column`` is the 1-based column of the problem in the line (0 when not about a line).
    """

    def __init__(self, message: str, column: int = 0) -> None:
        super().__init__(message)
        self.column = column


def type_of(value: Any) -> str:
    """The field type of a Python value (int is integer; unsigned must be said explicitly)."""
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int):
        return INTEGER
    if isinstance(value, float):
        return FLOAT
    if isinstance(value, str):
        return STRING
    raise LineProtocolError(f"a field value must be a number, string or boolean, not {type(value).__name__}")


def coerce(name: str, value: Any, kind: str) -> FieldValue:
    """``value`` as a field of type ``kind``; LineProtocolError naming the field when it does not fit."""
    if kind == FLOAT and isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
        if math.isfinite(number):
            return number
    elif kind in (INTEGER, UNSIGNED) and isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(value, float) and not value.is_integer():
            raise LineProtocolError(f"field {name!r}: {value!r} is not an {kind}")
        number = int(value)
        low, high = (INT64_MIN, INT64_MAX) if kind == INTEGER else (0, UINT64_MAX)
        if low <= number <= high:
            return number
    elif (kind == STRING and isinstance(value, str)) or (kind == BOOLEAN and isinstance(value, bool)):
        return value
    raise LineProtocolError(f"field {name!r}: {value!r} is not a valid {kind}")


@dataclass(frozen=True, slots=True)
class Point:
    """One line: measurement, tags, fields with their types, and the timestamp in ns (None: not given)."""

    measurement: str
    tags: dict[str, str]
    fields: dict[str, FieldValue]
    types: dict[str, str] = field(default_factory=dict)
    timestamp_ns: int | None = None

    def field_type(self, name: str) -> str:
        """The type of field ``name``: as recorded, else as its Python value says."""
        return self.types.get(name) or type_of(self.fields[name])

    def to_data(self) -> dict[str, Any]:
        """The point as an event's ``data`` (JSON): types of every field in ``field_types``."""
        data: dict[str, Any] = {
            "measurement": self.measurement,
            "tags": dict(self.tags),
            "fields": dict(self.fields),
            "field_types": {name: self.field_type(name) for name in self.fields},
        }
        if self.timestamp_ns is not None:
            data["timestamp_ns"] = self.timestamp_ns
        return data

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Point:
        """The point an event's ``data`` describes (as :meth:`to_data` writes it).

        Without ``field_types`` (or for a field it does not name), JSON integers are integers and
        other numbers floats. LineProtocolError names the bad key.
        """
        measurement = data.get("measurement")
        if not isinstance(measurement, str) or not measurement:
            raise LineProtocolError("data.measurement must be a non-empty string")
        tags = data.get("tags") or {}
        if not isinstance(tags, Mapping) or not all(
            isinstance(k, str) and k and isinstance(v, str) and v for k, v in tags.items()
        ):
            raise LineProtocolError("data.tags must map non-empty names to non-empty strings")
        fields = data.get("fields")
        if not isinstance(fields, Mapping) or not fields:
            raise LineProtocolError("data.fields must be a non-empty object")
        declared = data.get("field_types") or {}
        if not isinstance(declared, Mapping):
            raise LineProtocolError("data.field_types must be an object")
        typed: dict[str, FieldValue] = {}
        types: dict[str, str] = {}
        for name, value in fields.items():
            if not isinstance(name, str) or not name:
                raise LineProtocolError("data.fields: field names must be non-empty strings")
            kind = declared.get(name) or type_of(value)
            exact = type(value)
            # the common cases inline (the influxdb worker's hot loop); the rest checked by coerce()
            if (exact is float and kind == FLOAT and value - value == 0.0) or (exact is str and kind == STRING) or (
                exact is bool and kind == BOOLEAN
            ):
                typed[name] = value
            elif kind in FIELD_TYPES:
                typed[name] = coerce(name, value, kind)
            else:
                raise LineProtocolError(f"data.field_types.{name}: {kind!r} is not one of {sorted(FIELD_TYPES)}")
            types[name] = kind
        timestamp = data.get("timestamp_ns")
        if timestamp is not None and (
            isinstance(timestamp, bool) or not isinstance(timestamp, int) or not INT64_MIN <= timestamp <= INT64_MAX
        ):
            raise LineProtocolError("data.timestamp_ns must be an integer of nanoseconds (int64)")
        return cls(measurement, dict(tags), typed, types, timestamp)
