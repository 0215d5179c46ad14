"""InfluxDB line protocol: the parser of the API's write endpoints and the encoder of the influxdb worker.

::

    measurement[,tag_key=tag_value...] field_key=field_value[,field_key=field_value...] [timestamp]

The rules are InfluxDB's (1.x and 2.x): in a measurement a backslash escapes ``,`` and space; in tag
keys, tag values and field keys it escapes ``,``, ``=`` and space (a special character preceded by a
backslash belongs to the name, and only that backslash is dropped); any other backslash is kept as it
is. String field values are double-quoted with ``\\"`` and ``\\\\`` inside. Field values are floats
(``1``, ``-1.5e3``), integers (``12i``, int64), unsigned integers (``12u``, uint64), strings and booleans
(``t``, ``T``, ``true``, ``True``, ``TRUE`` and the same for false). Numbers are ASCII only. The
timestamp is an integer in the request's precision (``ns`` default, ``us``, ``ms``, ``s``, also ``m``
and ``h``); scaled to nanoseconds it must fit in int64. Empty lines and lines starting with ``#`` are
skipped.

A :class:`Point` keeps each field's type in ``types`` (``float``, ``integer``, ``unsigned``, ``string``,
``boolean``, InfluxDB's own names), because JSON cannot tell ``1.0`` from ``1`` reliably and has no
unsigned numbers: :meth:`Point.to_data` / :meth:`Point.from_data` carry them as ``field_types`` in an
event's ``data``. Names and tag values that end in a backslash cannot be written in line protocol
(the backslash would escape the separator after it); :func:`encode` refuses them with
:class:`LineProtocolError`; the parser never produces them.
"""

from ._encode import Encoder, encode, escape_key, escape_measurement, escape_string, format_field
from ._parse import count_lines, lines, measurement_of, parse, parse_line, parse_lines
from ._point import (
    BOOLEAN,
    FIELD_TYPES,
    FLOAT,
    INTEGER,
    PRECISIONS,
    STRING,
    UNSIGNED,
    LineProtocolError,
    Point,
)

__all__ = [
    "BOOLEAN",
    "FIELD_TYPES",
    "FLOAT",
    "INTEGER",
    "PRECISIONS",
    "STRING",
    "UNSIGNED",
    "Encoder",
    "LineProtocolError",
    "Point",
    "count_lines",
    "encode",
    "escape_key",
    "escape_measurement",
    "escape_string",
    "format_field",
    "lines",
    "measurement_of",
    "parse",
    "parse_line",
    "parse_lines",
]
