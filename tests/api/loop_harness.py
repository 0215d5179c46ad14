"""Drive the eventsink worker's HTTP connection in-process: bytes in, parsed responses out.

The connection runs on a real event loop with a transport that records what is written; the
answers are parsed with httptools' response parser, so a malformed answer fails the test.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import httptools
from gunicorn.config import Config
from gunicorn.glogging import Logger

from emergency_api.loopworker import HttpConnection, Server


class RecordingTransport:
    """Stands in for the socket: keeps what is written, notes close and read pauses."""

    def __init__(self) -> None:
        self.written = bytearray()
        self.closed = False
        self.paused = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "wrote after close"
        self.written += data

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("192.0.2.7", 50000), "sockname": ("127.0.0.1", 8000)}.get(name, default)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        import json

        return json.loads(self.body)


@dataclass
class _ResponseCollector:
    answers: list[Answer] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytearray = field(default_factory=bytearray)
    parser: Any = None

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.answers.append(Answer(self.parser.get_status_code(), self.headers, bytes(self.body)))
        self.headers, self.body = {}, bytearray()


def parse_answers(raw: bytes) -> list[Answer]:
    """Every HTTP/1.1 answer in ``raw`` (interim 100 Continue answers included, in order)."""
    answers: list[Answer] = []
    rest = raw
    while rest:
        if rest.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"):
            answers.append(Answer(100, {}, b""))
            rest = rest[len(b"HTTP/1.1 100 Continue\r\n\r\n"):]
            continue
        collector = _ResponseCollector()
        parser = httptools.HttpResponseParser(collector)
        collector.parser = parser
        # answers are framed by Content-Length; feed one at a time so the next one starts fresh
        head_end = rest.index(b"\r\n\r\n") + 4
        length = 0
        for line in rest[:head_end].split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        parser.feed_data(rest[:head_end + length])
        assert collector.answers, f"incomplete answer: {rest[:200]!r}"
        answers.extend(collector.answers)
        rest = rest[head_end + length:]
    return answers


class Harness:
    """One worker's server state and loop; ``connect()`` opens a connection to it."""

    def __init__(self, app: Any, **cfg: Any) -> None:
        config = Config()
        for name, value in cfg.items():
            config.set(name, value)
        self.loop = asyncio.new_event_loop()
        worker = SimpleNamespace(cfg=config, wsgi=app, log=Logger(config))
        self.server = Server(worker, self.loop)  # type: ignore[arg-type]

    def connect(self) -> tuple[HttpConnection, RecordingTransport]:
        transport = RecordingTransport()
        conn = HttpConnection(self.server)
        conn.connection_made(transport)  # type: ignore[arg-type]
        return conn, transport

    def settle(self, conn: HttpConnection, timeout: float = 10.0) -> None:
        """Run the loop until the connection has answered everything it read."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.loop.run_until_complete(asyncio.sleep(0.002))
            if not conn.busy and not conn.queue:
                return
        raise AssertionError("the connection did not answer in time")

    def exchange(self, chunks: Iterable[bytes]) -> tuple[list[Answer], RecordingTransport]:
        """Send ``chunks`` on a new connection; the answers and the transport."""
        conn, transport = self.connect()
        for chunk in chunks:
            conn.data_received(chunk)
            self.settle(conn)
        return parse_answers(bytes(transport.written)), transport

    def close(self) -> None:
        self.loop.run_until_complete(self.server.stop(0))
        self.loop.close()


def post(path: str, body: bytes, *, key: str | None = None, content_type: str = "application/json",
         extra: str = "", version: str = "1.1") -> bytes:
    """A POST request with Content-Length."""
    auth = f"X-API-Key: {key}\r\n" if key else ""
    return (f"POST {path} HTTP/{version}\r\nHost: api\r\n{auth}Content-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n{extra}\r\n").encode() + body
