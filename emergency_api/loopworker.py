"""gunicorn worker class ``eventsink``: one asyncio event loop per worker process serves HTTP/1.1.

Why: under ``gthread`` every request is a thread hand-over (the poller wakes a pool thread, which
wakes the publisher, which wakes it again on the broker's confirm), and with the broker sharing the
cores those hand-overs, not the request code, were where the time went. Here a request that waits
for its confirm costs no thread: the loop parses it, runs the route and awaits the confirm; the
publisher wakes the loop once per batch of confirms.

- Requests are parsed by ``httptools`` (llhttp, the parser of Node.js), with gunicorn's limits:
  ``limit_request_line`` (414), ``limit_request_fields`` and ``limit_request_field_size`` (431), and
  64 KiB of header fields in all (431; bounds the memory a head that never ends can take);
  malformed requests get 400; these are problem+json and close the connection. The body limit is
  the app's (``MAX_CONTENT_LENGTH``), checked on Content-Length before the body is read and on every
  chunk: the rest is not read, the app gives its own 413 (problem+json, or InfluxDB's shape on its
  routes) and the connection is closed.
- Routes the app lists in ``app.extensions["eventsink_native_routes"]`` (``POST /api/v1/events``)
  are coroutines on the loop (:mod:`.native`); every other request goes to the Flask app through WSGI
  in a pool of ``threads`` threads, so all routes behave as under gthread.
- Request bodies a worker holds at once are bounded (``max_buffered_body_bytes``): a body is admitted
  against its declared size before it is read; one that does not fit waits, unread, in arrival order.
- Keep-alive connections cost no thread while idle; an idle one is closed after ``keepalive``
  seconds; a request whose head and body have not arrived ``request_read_timeout_s`` after it began
  gets 408 (slow-header and slow-body clients do not hold anything but a socket); more than
  ``worker_connections`` open connections per worker are answered 503.
- ``Expect: 100-continue`` is answered before the body is read (curl sends it for bodies over 1 KiB),
  unless the request is refused on its head. Pipelined requests are answered in order.
- Graceful stop (SIGTERM, ``max_requests``, the master gone): stop accepting, close idle
  connections, let requests in flight finish for up to ``graceful_timeout`` seconds.
- gunicorn's access log (``accesslog``, ``access_log_format``) is written; the request headers in it
  are the ones the format names (the default names none that could carry a key).
- Not supported: HTTP/2, protocol upgrades (answered, then closed), gunicorn's ``pre_request`` and
  ``post_request`` hooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import ipaddress
import logging
import os
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from email.utils import formatdate
from http import HTTPStatus
from types import SimpleNamespace
from typing import Any, NamedTuple
from urllib.parse import unquote_to_bytes

import httptools
from gunicorn.workers.base import Worker

from .native import NativeRequest, Reply

log = logging.getLogger(__name__)

NativeHandler = Callable[[NativeRequest], Awaitable[Reply]]
#: headers the server writes itself; an application's own are dropped
HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "upgrade", "date", "server"})
DEFAULT_READ_TIMEOUT_S = 30.0
DEFAULT_BODY_BUDGET = 64 * 1024 * 1024
#: header fields of one request in all, besides the request line (nginx's default is 32 KiB)
MAX_HEADER_BYTES = 65536


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop when installed (about twice as fast per request here), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class HttpLimit(Exception):
    """A request refused on its head or body: answered with ``status`` and the connection closed."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class Request:
    """A request read in full."""

    __slots__ = ("body", "declared_length", "headers", "keep_alive", "method", "reservation", "url", "version")

    def __init__(self, method: str, url: bytes, version: str, headers: list[tuple[bytes, bytes]], body: bytes,
                 keep_alive: bool) -> None:
        self.declared_length: int | None = None  # set when the body was too large and not read
        self.reservation = 0  # bytes of the worker's body budget this request holds until answered
        self.method = method
        self.url = url
        self.version = version
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive


class Refusal(NamedTuple):
    """An error answer owed after the answers to earlier requests on the connection."""

    status: int
    detail: str


def joined_headers(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """Header names lower-cased, repeated headers joined with ", " (RFC 9110 5.3)."""
    out: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


class Server:
    """What the connections of one worker share: settings, routes, the WSGI pool, counters."""

    def __init__(self, worker: LoopWorker, loop: asyncio.AbstractEventLoop) -> None:
        cfg = worker.cfg
        app = worker.wsgi
        self.worker = worker
        self.loop = loop
        self.app = app
        extensions = getattr(app, "extensions", {})
        self.routes: dict[tuple[str, str], NativeHandler] = dict(extensions.get("eventsink_native_routes", {}))
        settings = extensions.get("eventsink_settings")
        self.read_timeout_s = float(getattr(settings, "request_read_timeout_s", DEFAULT_READ_TIMEOUT_S))
        self.max_body = int(getattr(app, "config", {}).get("MAX_CONTENT_LENGTH") or sys.maxsize)
        # request bodies held by this worker at once (read or being read, until answered); a body
        # waits for room before it is read, and one body of the largest size always fits
        budget = int(getattr(settings, "max_buffered_body_bytes", DEFAULT_BODY_BUDGET))
        self.body_budget = max(budget, self.max_body) if self.max_body != sys.maxsize else budget
        self.reserved = 0
        self.waiting: deque[HttpConnection] = deque()
        self.limit_line = cfg.limit_request_line or sys.maxsize
        self.limit_fields = cfg.limit_request_fields or sys.maxsize
        self.limit_field_size = cfg.limit_request_field_size or sys.maxsize
        # the whole head (request line and fields): bounds the memory of a connection whose head never
        # ends, as httptools keeps a header it is still reading; a connection costs at most this much
        # (plus one read) before its request is complete
        self.max_head = min(self.limit_line + 2 + self.limit_fields * (self.limit_field_size + 2) + 2,
                            self.limit_line + 2 + MAX_HEADER_BYTES)
        self.keepalive_s = float(cfg.keepalive)
        self.max_connections = int(cfg.worker_connections)
        self.executor = ThreadPoolExecutor(max_workers=cfg.threads, thread_name_prefix="eventsink-wsgi")
        self.connections: set[HttpConnection] = set()
        self.stopping = False
        self.handled = 0
        self.multiprocess = cfg.workers > 1
        self.forwarded_any = "*" in cfg.forwarded_allow_ips
        self.forwarded_nets = [ipaddress.ip_network(a, strict=False) for a in cfg.forwarded_allow_ips
                               if a != "*" and _is_network(a)]
        self.secure_headers = {k.lower(): v for k, v in cfg.secure_scheme_headers.items()}
        self._date = (0, "")
        self.max_requests = int(getattr(worker, "max_requests", sys.maxsize))  # then answers close
        self.access_log = bool(getattr(worker.log, "access_log_enabled", False) or cfg.accesslog)

    def log_access(self, request: Request, peer: tuple[str, int], status: int, headers: list[tuple[str, str]],
                   sent: int, seconds: float) -> None:
        """One line in gunicorn's access log (its ``access_log_format``; the default logs no header
        that could hold a key)."""
        path, _, query = request.url.decode("latin-1").partition("?")
        environ = {"REQUEST_METHOD": request.method, "RAW_URI": request.url.decode("latin-1"),
                   "SERVER_PROTOCOL": f"HTTP/{request.version}", "REMOTE_ADDR": peer[0], "PATH_INFO": path,
                   "QUERY_STRING": query}
        request_headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers]
        for name, value in request_headers:
            if name.lower() in ("referer", "user-agent"):
                environ["HTTP_" + name.upper().replace("-", "_")] = value
        answer = SimpleNamespace(status=status, sent=sent, headers=headers)
        self.worker.log.access(answer, SimpleNamespace(headers=request_headers), environ,
                               timedelta(seconds=seconds))

    def reserve(self, conn: HttpConnection, size: int) -> bool:
        """Take ``size`` bytes of the body budget for ``conn``; False (and ``conn`` queued) when full."""
        if self.waiting or (self.reserved + size > self.body_budget and self.reserved > 0):
            self.waiting.append(conn)
            return False
        self.reserved += size
        return True

    def release(self, size: int) -> None:
        """Give back budget; bodies waiting for it are admitted in arrival order."""
        self.reserved -= size
        while self.waiting:
            conn = self.waiting[0]
            if conn.closed or not conn.awaiting:
                self.waiting.popleft()
                continue
            if self.reserved + conn.awaiting > self.body_budget and self.reserved > 0:
                break
            self.waiting.popleft()
            self.reserved += conn.awaiting
            conn.admitted()

    def date(self) -> str:
        """The Date header value, formatted once a second."""
        now = int(time.time())
        if self._date[0] != now:
            self._date = (now, formatdate(now, usegmt=True))
        return self._date[1]

    async def answer(self, request: Request, peer: tuple[str, int],
                     local: tuple[str, int]) -> tuple[int, str, Any, bytes]:
        """Status, reason, headers and body of the answer to ``request``."""
        raw_path, _, query = request.url.partition(b"?")
        if not raw_path.startswith(b"/") and raw_path != b"*":  # absolute form: http://host/path
            parsed = httptools.parse_url(request.url)
            raw_path, query = parsed.path or b"/", parsed.query or b""
        handler = self.routes.get((request.method, raw_path.decode("latin-1")))
        if handler is not None and request.declared_length is None:
            native = NativeRequest(request.method, raw_path.decode("latin-1"), query.decode("latin-1"),
                                   joined_headers(request.headers), request.body, peer[0])
            status, headers, body = await handler(native)
            return status, HTTPStatus(status).phrase, headers, body
        environ = self.environ(request, raw_path, query, peer, local)
        return await self.loop.run_in_executor(self.executor, call_wsgi, self.app, environ)

    def environ(self, request: Request, raw_path: bytes, query: bytes, peer: tuple[str, int],
                local: tuple[str, int]) -> dict[str, Any]:
        """The WSGI environ of ``request`` (PEP 3333); header names with "_" are dropped, as gunicorn does."""
        environ: dict[str, Any] = {
            "REQUEST_METHOD": request.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_bytes(raw_path).decode("latin-1"),
            "QUERY_STRING": query.decode("latin-1"),
            "RAW_URI": request.url.decode("latin-1"),
            "SERVER_NAME": str(local[0]),
            "SERVER_PORT": str(local[1]),
            "SERVER_PROTOCOL": f"HTTP/{request.version}",
            "REMOTE_ADDR": peer[0],
            "REMOTE_PORT": str(peer[1]),
            # chunked bodies arrive de-chunked; a body over the limit is not read and its length is told
            "CONTENT_LENGTH": str(request.declared_length if request.declared_length is not None
                                  else len(request.body)),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(request.body),
            "wsgi.input_terminated": True,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": self.multiprocess,
            "wsgi.run_once": False,
        }
        trusted = self.trusts_forwarding(peer[0])
        for name, value in joined_headers(request.headers).items():
            if "_" in name or name in ("content-length", "transfer-encoding"):
                continue
            if trusted and self.secure_headers.get(name) == value.strip().lower():
                environ["wsgi.url_scheme"] = "https"
            if name == "content-type":
                environ["CONTENT_TYPE"] = value
            else:
                environ["HTTP_" + name.upper().replace("-", "_")] = value
        return environ

    def trusts_forwarding(self, address: str) -> bool:
        """True when ``address`` is in gunicorn's ``forwarded_allow_ips`` (its scheme headers count)."""
        if self.forwarded_any:
            return True
        if address in self.worker.cfg.forwarded_allow_ips:
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.forwarded_nets)

    async def stop(self, grace_s: float) -> None:
        """Close idle connections; give the busy ones ``grace_s`` seconds to finish, then close them."""
        self.stopping = True
        deadline = self.loop.time() + grace_s
        while True:
            for conn in list(self.connections):
                if not conn.busy and not conn.reading:
                    conn.close()
            if not self.connections or self.loop.time() >= deadline:
                break
            await asyncio.sleep(0.05)
        for conn in list(self.connections):
            conn.close()
        self.executor.shutdown(wait=False, cancel_futures=True)


def _is_network(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


def call_wsgi(app: Any, environ: dict[str, Any]) -> tuple[int, str, list[tuple[str, str]], bytes]:
    """Run the WSGI app for one request; its whole answer (the API's answers are small)."""
    started: list[Any] = []
    chunks: list[bytes] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        if exc_info is not None and started:
            raise exc_info[1].with_traceback(exc_info[2])
        started[:] = [status, headers]
        return chunks.append

    result = app(environ, start_response)
    try:
        chunks.extend(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    status, headers = started
    code, _, reason = status.partition(" ")
    return int(code), reason, headers, b"".join(chunks)


class HttpConnection(asyncio.Protocol):
    """One client connection: parse, answer in order, keep alive or close."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.loop = server.loop
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.peer: tuple[str, int] = ("", 0)
        self.local: tuple[str, int] = ("", 0)
        self.queue: deque[Request | Refusal] = deque()
        self.busy = False  # answering the queue
        self.reading = False  # part of a request has arrived
        self.closed = False
        self.closed_for_reading = False  # answering a request whose body was not read; then closing
        self.reservation = 0  # body budget held by the request being read
        self.awaiting = 0  # body budget asked for and not yet given (reading is paused meanwhile)
        self.continue_owed = False  # a 100 Continue to send once the body may be read
        self.timer: asyncio.TimerHandle | None = None
        self._begin()

    def _begin(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_bytes = 0
        self.headers_done = False
        self.body: list[bytes] = []
        self.body_bytes = 0
        self.declared_length = 0
        self.method = ""

    # -- connection ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not subclasses
        self.peer = _address(transport.get_extra_info("peername"))
        self.local = _address(transport.get_extra_info("sockname"))
        server = self.server
        if server.stopping:
            transport.close()
            self.closed = True
            return
        if len(server.connections) >= server.max_connections:
            self.fail(503, f"this worker has {server.max_connections} connections open; retry later")
            return
        server.connections.add(self)
        self._arm(server.keepalive_s, self._idle_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._give_back()
        self.closed = True
        self._disarm()
        self.server.connections.discard(self)

    def _give_back(self) -> None:
        """Drop what was read and not answered, and its body budget (the request being answered
        gives its own back when done)."""
        held = self.reservation + sum(r.reservation for r in self.queue if isinstance(r, Request))
        self.reservation = self.awaiting = 0
        self.queue.clear()
        if held:
            self.server.release(held)

    def close(self) -> None:
        self._give_back()
        if not self.closed:
            self.closed = True
            self._disarm()
            self.server.connections.discard(self)
            if self.transport is not None:
                self.transport.close()

    def _arm(self, seconds: float, callback: Callable[[], None]) -> None:
        self._disarm()
        self.timer = self.loop.call_later(seconds, callback)

    def _disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _idle_timeout(self) -> None:
        self.timer = None
        if not self.busy and not self.reading:
            self.close()

    def _read_timeout(self) -> None:
        self.timer = None
        if self.reading and not self.closed:
            self.fail(408, f"the request did not arrive in full within {self.server.read_timeout_s:g} s")

    def fail(self, status: int, detail: str) -> None:
        """Answer ``status`` as problem+json and close; nothing more is read. Answers still owed to
        earlier (pipelined) requests go first."""
        self.reading = False
        self.closed_for_reading = True
        self._disarm()
        if self.busy and not self.closed:
            self.queue.append(Refusal(status, detail))
            if self.transport is not None:
                self.transport.pause_reading()
            return
        self._refuse(status, detail)

    def _refuse(self, status: int, detail: str) -> None:
        from .serving import problem_error_bytes

        if self.transport is not None and not self.closed:
            self.transport.write(problem_error_bytes(status, HTTPStatus(status).phrase, detail))
        self.close()

    # -- reading -------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.closed or self.closed_for_reading:
            return
        continuing = self.reading and not self.headers_done
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            inner = exc.__context__
            if isinstance(inner, HttpLimit) and inner.status == 413 and self.headers_done:
                self._too_large()
            elif isinstance(inner, HttpLimit):
                self.fail(inner.status, inner.detail)
            else:
                log.error("reading a request failed: %r", inner)
                self.fail(400, "the request could not be read")
        except httptools.HttpParserUpgrade:
            # the request is answered as a plain one; what follows would be another protocol: not read
            self.closed_for_reading = True
            waiting = [r for r in self.queue if isinstance(r, Request)]
            for request in waiting:
                request.keep_alive = False
            if not waiting:
                self.fail(400, "protocol upgrades are not supported")
        except httptools.HttpParserError as exc:
            self.fail(400, f"malformed HTTP request: {exc}")
        else:
            if self.reading and not self.headers_done and not self.closed_for_reading:  # a head still arriving
                self.head_bytes = self.head_bytes + len(data) if continuing else len(data)
                if self.head_bytes > self.server.max_head:
                    self.fail(431, f"the request head is larger than {self.server.max_head} bytes")

    def _too_large(self) -> None:
        """A body over the limit is not read: the app answers (its own 413, in the shape of the route,
        e.g. InfluxDB's on ``/write``), told the length and given no body; then the connection closes."""
        self.closed_for_reading = True
        self.reading = False
        self._disarm()
        if self.transport is not None:
            self.transport.pause_reading()
        request = Request(self.method, self.url, self.parser.get_http_version(), self.headers, b"", False)
        request.declared_length = max(self.declared_length, self.server.max_body + 1)
        request.reservation, self.reservation, self.awaiting = self.reservation, 0, 0
        self._queue_request(request)

    def on_message_begin(self) -> None:
        self._begin()
        self.reading = True
        self._arm(self.server.read_timeout_s, self._read_timeout)

    def on_url(self, url: bytes) -> None:
        self.url += url
        if len(self.url) > self.server.limit_line:
            raise HttpLimit(414, f"the request line is longer than {self.server.limit_line} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        server = self.server
        if len(self.headers) >= server.limit_fields:
            raise HttpLimit(431, f"more than {server.limit_fields} header fields")
        if len(name) + len(value) + 2 > server.limit_field_size:
            raise HttpLimit(431, f"the header field {name[:64].decode('latin-1')!r} is larger than "
                                 f"{server.limit_field_size} bytes")
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.headers_done = True
        parser = self.parser
        self.method = parser.get_method().decode("ascii")
        version = parser.get_http_version()
        server = self.server
        if len(self.method) + len(self.url) + 10 > server.limit_line:  # "<method> <url> HTTP/1.1"
            raise HttpLimit(414, f"the request line is longer than {server.limit_line} bytes")
        expect_continue = chunked = False
        for name, value in self.headers:
            lower = name.lower()
            if lower == b"content-length":
                self.declared_length = int(value)
                if self.declared_length > server.max_body:
                    raise HttpLimit(413, f"the body is larger than {server.max_body} bytes")
            elif lower == b"transfer-encoding":
                chunked = True
            elif lower == b"expect" and value.strip().lower() == b"100-continue":
                expect_continue = True
        self.continue_owed = expect_continue and version == "1.1"
        size = min(server.max_body, server.body_budget) if chunked else self.declared_length
        if size and not server.reserve(self, size):
            self.awaiting = size  # read no further until the budget has room (release admits it)
            if self.transport is not None:
                self.transport.pause_reading()
            return
        self.reservation = size
        self._send_continue()

    def admitted(self) -> None:
        """The body budget this connection waited for is its now: read the body."""
        self.reservation, self.awaiting = self.awaiting, 0
        self._send_continue()
        if self.transport is not None and not self.closed and not self.closed_for_reading:
            self.transport.resume_reading()

    def _send_continue(self) -> None:
        if self.continue_owed and self.transport is not None and not self.closed:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.continue_owed = False

    def on_body(self, body: bytes) -> None:
        self.body_bytes += len(body)
        if self.body_bytes > self.server.max_body:
            raise HttpLimit(413, f"the body is larger than {self.server.max_body} bytes")
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.reading = False
        self.headers_done = False  # the next request's head counts from its first byte
        self._disarm()
        parser = self.parser
        body = self.body[0] if len(self.body) == 1 else b"".join(self.body)
        request = Request(self.method, self.url, parser.get_http_version(), self.headers, body,
                          parser.should_keep_alive())
        request.reservation, self.reservation = self.reservation, 0
        self.awaiting = 0  # the body came in the same read as the head: it waits no more (budget untaken)
        self._queue_request(request)

    def _queue_request(self, request: Request | Refusal) -> None:
        self.queue.append(request)
        if self.busy:  # pipelined: the next one waits for this one's answer
            if self.transport is not None:
                self.transport.pause_reading()
        else:
            self.busy = True
            self.loop.create_task(self._answer_queue())

    # -- answering -----------------------------------------------------------------------------

    async def _answer_queue(self) -> None:
        server = self.server
        keep_alive = True
        try:
            while self.queue and not self.closed:
                request = self.queue.popleft()
                if isinstance(request, Refusal):
                    self._refuse(request.status, request.detail)
                    return
                started = time.monotonic()
                try:
                    status, reason, headers, body = await server.answer(request, self.peer, self.local)
                finally:
                    if request.reservation:
                        server.release(request.reservation)
                        request.reservation = 0
                keep_alive = request.keep_alive and not server.stopping and server.handled < server.max_requests
                self._write(request, status, reason, headers, body, keep_alive)
                server.handled += 1
                if server.access_log:
                    server.log_access(request, self.peer, status, headers, len(body), time.monotonic() - started)
                if not keep_alive:
                    break
        except Exception:
            log.exception("answering a request failed")
            self._refuse(500, "The server could not handle the request.")
            return
        finally:
            self.busy = False
        if self.closed:
            return
        if not keep_alive:
            self.close()
        elif not self.reading:
            if self.transport is not None:
                self.transport.resume_reading()
            self._arm(server.keepalive_s, self._idle_timeout)

    def _write(self, request: Request, status: int, reason: str, headers: Iterable[tuple[str, str]], body: bytes,
               keep_alive: bool) -> None:
        if self.closed or self.transport is None:
            return
        lines = [f"HTTP/1.1 {status} {reason}\r\nDate: {self.server.date()}\r\n"]
        has_length = False
        for name, value in headers:
            lower = name.lower()
            if lower in HOP_BY_HOP:
                continue
            has_length = has_length or lower == "content-length"
            lines.append(f"{name}: {value}\r\n")
        no_body = status < 200 or status in (204, 304)
        if not has_length and not no_body:
            lines.append(f"Content-Length: {len(body)}\r\n")
        if not keep_alive:
            lines.append("Connection: close\r\n")
        elif request.version == "1.0":
            lines.append("Connection: keep-alive\r\n")
        lines.append("\r\n")
        head = "".join(lines).encode("latin-1")
        self.transport.write(head if no_body or request.method == "HEAD" else head + body)


def _address(value: Any) -> tuple[str, int]:
    if isinstance(value, tuple) and len(value) >= 2:
        return str(value[0]), int(value[1])
    return (str(value or ""), 0)  # unix socket


class LoopWorker(Worker):
    """The ``eventsink`` worker class (``eventsink api --worker-class eventsink``, the default)."""

    def run(self) -> None:
        loop = new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve(loop))
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self, loop: asyncio.AbstractEventLoop) -> None:
        server = Server(self, loop)
        listeners = [
            await loop.create_server(functools.partial(HttpConnection, server), sock=s.sock, backlog=self.cfg.backlog)
            for s in self.sockets
        ]
        wake = asyncio.Event()
        # signals write to the worker's pipe (gunicorn sets it as the wakeup fd): react at once
        loop.add_reader(self.PIPE[0], self._drain_pipe, wake)
        try:
            while self.alive:
                self.notify()
                if self.ppid != os.getppid():
                    self.log.info("Parent changed, shutting down: %s", self)
                    break
                if server.handled >= self.max_requests:
                    self.log.info("Autorestarting worker after current request.")
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), 1.0)
                wake.clear()
        finally:
            loop.remove_reader(self.PIPE[0])
            for listener in listeners:
                listener.close()
            await server.stop(self.cfg.graceful_timeout)

    def _drain_pipe(self, wake: asyncio.Event) -> None:
        with contextlib.suppress(OSError):
            os.read(self.PIPE[0], 4096)
        wake.set()
