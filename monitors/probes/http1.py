"""A minimal HTTP/1.1 exchange on an already connected socket, timed at the byte level.

The probe owns each step (resolve, connect, TLS handshake), so the phases it reports are the time of
that step alone; this module does the last two: write the request, read the response. It records the
moment the first response byte arrives and reads the body by Content-Length, chunked encoding or until
the server closes, counting every body byte but keeping only the first ``keep`` for pattern matching.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field

from .base import Deadline

MAX_HEADER_BYTES = 64 * 1024
RECV_SIZE = 64 * 1024


class ProtocolError(Exception):
    """The server's answer is not HTTP/1.x as this client understands it."""


@dataclass
class Response:
    """Status, headers and body of one response, with the first-byte and end times (perf_counter_ns)."""

    status: int = 0
    reason: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    body_bytes: int = 0
    first_byte_ns: int = 0
    end_ns: int = 0


class _Reader:
    """Buffered reads from a socket with a deadline, noting when the first byte came."""

    def __init__(self, sock: socket.socket, deadline: Deadline) -> None:
        self.sock = sock
        self.deadline = deadline
        self.buf = bytearray()
        self.first_byte_ns = 0
        self.eof = False

    def fill(self) -> bool:
        """Read what the socket has; False at end of stream."""
        if self.eof:
            return False
        self.sock.settimeout(self.deadline.remaining())
        data = self.sock.recv(RECV_SIZE)
        if not self.first_byte_ns and data:
            self.first_byte_ns = time.perf_counter_ns()
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def line(self, limit: int = MAX_HEADER_BYTES) -> bytes:
        """One CRLF-terminated line, without the terminator."""
        while True:
            end = self.buf.find(b"\n")
            if end >= 0:
                out = bytes(self.buf[:end]).rstrip(b"\r")
                del self.buf[: end + 1]
                return out
            if len(self.buf) > limit:
                raise ProtocolError("header line too long")
            if not self.fill():
                raise ProtocolError("connection closed in the middle of the response head")

    def take(self, n: int) -> bytes:
        """Up to ``n`` buffered bytes, reading once when the buffer is empty (b"" at end of stream)."""
        if not self.buf and not self.fill():
            return b""
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out


def exchange(
    sock: socket.socket, request: bytes, deadline: Deadline, *, head: bool, keep: int
) -> tuple[int, Response]:
    """Send ``request`` and read the response; returns (time the request was written, response)."""
    sock.settimeout(deadline.remaining())
    sock.sendall(request)
    sent_ns = time.perf_counter_ns()
    reader = _Reader(sock, deadline)
    resp = Response()
    while True:
        _read_head(reader, resp)
        if not 100 <= resp.status < 200 or resp.status == 101:
            break
    resp.first_byte_ns = reader.first_byte_ns
    if head or resp.status in (204, 304) or 100 <= resp.status < 200:
        pass
    elif "chunked" in resp.headers.get("transfer-encoding", "").lower():
        _read_chunked(reader, resp, keep)
    elif "content-length" in resp.headers:
        try:
            length = int(resp.headers["content-length"])
        except ValueError:
            raise ProtocolError(f"bad Content-Length {resp.headers['content-length']!r}") from None
        _read_counted(reader, resp, length, keep)
    else:
        _read_counted(reader, resp, None, keep)
    resp.end_ns = time.perf_counter_ns()
    return sent_ns, resp


def _read_head(reader: _Reader, resp: Response) -> None:
    status_line = reader.line()
    parts = status_line.decode("latin-1").split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise ProtocolError(f"not an HTTP/1.x status line: {status_line[:80]!r}")
    resp.status = int(parts[1])
    resp.reason = parts[2] if len(parts) > 2 else ""
    resp.headers = {}
    size = 0
    while True:
        line = reader.line()
        size += len(line)
        if size > MAX_HEADER_BYTES:
            raise ProtocolError("response headers larger than 64 KiB")
        if not line:
            return
        name, sep, value = line.decode("latin-1").partition(":")
        if sep:
            resp.headers[name.strip().lower()] = value.strip()


def _keep(resp: Response, chunk: bytes, keep: int) -> None:
    resp.body_bytes += len(chunk)
    if len(resp.body) < keep:
        resp.body += chunk[: keep - len(resp.body)]


def _read_counted(reader: _Reader, resp: Response, length: int | None, keep: int) -> None:
    left = length
    while left is None or left > 0:
        chunk = reader.take(RECV_SIZE if left is None else min(left, RECV_SIZE))
        if not chunk:
            if left is None:
                return
            raise ProtocolError(f"connection closed with {left} body bytes missing")
        _keep(resp, chunk, keep)
        if left is not None:
            left -= len(chunk)


def _read_chunked(reader: _Reader, resp: Response, keep: int) -> None:
    while True:
        size_line = reader.line().split(b";", 1)[0].strip()
        try:
            size = int(size_line, 16)
        except ValueError:
            raise ProtocolError(f"bad chunk size {size_line[:20]!r}") from None
        if size == 0:
            while reader.line():  # trailers
                pass
            return
        _read_counted(reader, resp, size, keep)
        if reader.line():
            raise ProtocolError("chunk not followed by CRLF")
