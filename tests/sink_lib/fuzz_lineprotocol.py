"""atheris target: the line protocol parser raises nothing but LineProtocolError, and what it parses
encodes back to the same point. Run by tests/sink_lib/test_lineprotocol_hostile.py for a bounded
number of runs; by hand: ``python tests/sink_lib/fuzz_lineprotocol.py -runs=1000000``."""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from sink_lib.lineprotocol import LineProtocolError, encode, parse, parse_line


def one_input(data: bytes) -> None:
    """Parse ``data`` as a body; every good point must survive encode -> parse unchanged."""
    text = data.decode("utf-8", errors="replace")
    points, errors = parse(text, 1000, max_line_length=4096)
    for error in errors:
        assert error["message"] and error["line"] >= 1
    for _number, _line, point in points:
        try:
            again = parse_line(encode(point), 1)
        except LineProtocolError as exc:
            raise AssertionError(f"{point!r} does not encode back: {exc}") from exc
        assert again.measurement == point.measurement and again.tags == point.tags
        assert again.fields == point.fields and again.types == point.types
        assert again.timestamp_ns == point.timestamp_ns


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
