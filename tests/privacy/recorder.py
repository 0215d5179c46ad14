"""A local HTTP server for destination tests: records every request's raw bytes, checks each against
the destination's documented format, and answers with scripted replies (status, body, delay).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Recorded:
    """One request as it arrived: method, path, query, headers and the raw body."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    raw: bytes = b""

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


@dataclass
class Reply:
    """What the server answers: status, JSON body (or bytes), extra headers, and a delay before it."""

    status: int = 200
    body: Any = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


Check = Callable[[Recorded], list[str]]
Respond = Callable[[Recorded], Reply]


class RecordingServer:
    """Threaded HTTP/1.1 server on 127.0.0.1; ``requests`` and ``violations`` grow as requests arrive."""

    def __init__(self, check: Check, respond: Respond) -> None:
        self.check = check
        self.respond = respond
        self.requests: list[Recorded] = []
        self.violations: list[str] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def raw_bytes(self) -> bytes:
        """Every byte every client sent (request lines, headers, bodies), concatenated."""
        with self._lock:
            return b"".join(r.raw for r in self.requests)

    def start(self) -> None:
        """Serve in a background thread."""
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        """Stop serving; delayed replies are cut short."""
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                split = urlsplit(self.path)
                head = f"{self.requestline}\r\n{self.headers}".encode("latin-1", "replace")
                request = Recorded(
                    "POST", split.path, parse_qs(split.query), {k.lower(): v for k, v in self.headers.items()},
                    body, head + body,
                )
                problems = owner.check(request)
                with owner._lock:
                    owner.requests.append(request)
                    owner.violations.extend(problems)
                reply = owner.respond(request)
                if reply.delay_s and owner._stopping.wait(reply.delay_s):
                    return
                payload = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up (timeout test)

            do_GET = do_POST

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@contextmanager
def serving(check: Check, respond: Respond) -> Iterator[RecordingServer]:
    """Run a :class:`RecordingServer` for the duration of the block."""
    server = RecordingServer(check, respond)
    server.start()
    try:
        yield server
    finally:
        server.stop()
