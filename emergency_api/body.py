"""Reading a request body under ``max_body_bytes``: with or without Content-Length, gzip or not.

A body longer than the limit (declared, sent chunked, or after decompression) is answered 413 before
any of it is used: nothing is cut to fit. ``Content-Encoding: gzip`` (Telegraf's ``influxdb_v2``
output sends it by default) is decompressed with the decompressed size bounded by the same limit.
"""

from __future__ import annotations

import zlib

from flask import request

from .problems import Problem

_CHUNK = 64 * 1024


def _too_large(limit: int, what: str = "the body") -> Problem:
    return Problem(413, f"{what} is larger than {limit} bytes (EVENTSINK_API_MAX_BODY_BYTES)")


def read_raw(limit: int) -> bytes:
    """The body as sent, at most ``limit`` bytes, else a 413 Problem."""
    environ = request.environ
    stream = environ["wsgi.input"]
    length = request.content_length
    if length is not None:
        if length > limit:
            raise _too_large(limit)
        return bytes(stream.read(length)) if length else b""
    if not environ.get("wsgi.input_terminated"):
        return b""  # no length and a server that does not end the stream: no body (as werkzeug does)
    parts: list[bytes] = []
    size = 0
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            return b"".join(parts)
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        parts.append(chunk)


def read_body(limit: int) -> bytes:
    """The body, decompressed when ``Content-Encoding: gzip``, at most ``limit`` bytes, else 413."""
    raw = read_raw(limit)
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding not in ("gzip", "x-gzip"):
        raise Problem(415, f"Content-Encoding {encoding!r} is not supported; send gzip or identity")
    inflater = zlib.decompressobj(wbits=31)
    try:
        body = inflater.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise Problem(400, f"the gzip body cannot be decompressed: {exc}") from None
    if len(body) > limit or inflater.unconsumed_tail:
        raise _too_large(limit, "the decompressed body")
    if not inflater.eof:
        raise Problem(400, "the gzip body is truncated")
    return body
