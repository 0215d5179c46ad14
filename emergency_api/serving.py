"""Serving the API with gunicorn, started programmatically by ``eventsink api``.

Settings are applied in this order, later ones winning: the defaults below and ``EVENTSINK_API_BIND``,
``_WORKERS``, ``_WORKER_CLASS``, ``_THREADS``; then ``GUNICORN_CMD_ARGS``; then the command's options
(``--bind``, ``--workers``, ``--worker-class``, ``--threads``, ``--gunicorn-option KEY=VALUE``).

Each worker process builds its own app and so its own EventSink (``preload_app`` stays off). Errors
gunicorn answers itself before the app sees the request (request line or headers too large, malformed
HTTP) are written as problem+json too.

Each worker listens on its own socket (``SO_REUSEPORT``, gunicorn's ``reuse_port``) and the kernel
spreads new connections over them. With one shared socket, the worker that is busiest is the one
back in ``epoll_wait`` first and so wins nearly every ``accept``: a load generator's 32 keep-alive
connections were seen all on one of two workers, which then ran on one core while the other idled
(bench/api_ingest.py: 1,650 against 2,600 single-event requests/s with the sockets split). Because
a second server started with ``SO_REUSEPORT`` on a port in use would silently share it, the master
first binds each TCP address without that flag and refuses to start when that fails. A worker that
exits takes its socket's not-yet-accepted connections with it (they are reset; clients retry), as
with any per-worker socket; ``-o reuse_port=false`` goes back to one shared socket.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask
from gunicorn import util as gunicorn_util
from gunicorn.app.base import BaseApplication

from .problems import KNOWN, PROBLEM_CONTENT_TYPE, PROBLEM_TYPE_BASE

log = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {
    "keepalive": 5,  # seconds an idle keep-alive connection is kept (monitors and Telegraf reuse them)
    "timeout": 60,  # longer than publish_timeout_s, so a slow confirm is answered 503 and not killed
    "graceful_timeout": 30,
    "limit_request_line": 4094,  # gunicorn's defaults, stated so the README matches: 414 past them
    "limit_request_fields": 100,
    "limit_request_field_size": 8190,  # 431 past it
    "accesslog": None,
    # gunicorn >= 23's control socket has one default path per user: two servers on a host would clash
    "control_socket_disable": True,
    "reuse_port": True,  # one listening socket per worker, see the module docstring
}


#: short names of the worker classes of this package
WORKER_CLASSES = {"eventsink": "emergency_api.loopworker.LoopWorker"}


class AddressInUseError(RuntimeError):
    """The address to listen on is taken (by another server, possibly this one started twice)."""


def check_addresses_free(binds: list[str]) -> None:
    """Bind each TCP address once without ``SO_REUSEPORT``; raise AddressInUseError when one is taken.

    Workers bind with ``SO_REUSEPORT``, which would let them join a server already listening there.
    TCP addresses only (:meth:`ApiServer.prepare_listening` keeps one shared socket for the others).
    """
    from gunicorn.util import parse_address

    for bind in binds:
        host, port = parse_address(bind)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            # as gunicorn's own sockets do: connections of a server just stopped (TIME_WAIT) do not
            # count, while a socket still listening there does
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise AddressInUseError(f"{bind} is already in use (is the API running already?)") from None
                raise


def problem_error_bytes(status_int: int, reason: str, mesg: str) -> bytes:
    """An error gunicorn or the worker answers before the app sees the request, as problem+json
    (the connection is closed after it)."""
    slug = KNOWN.get(status_int, ("bad-request", reason))[0]
    body = json.dumps({
        "type": PROBLEM_TYPE_BASE + (slug if status_int in KNOWN else "http-" + str(status_int)),
        "title": reason,
        "status": status_int,
        "detail": mesg if status_int < 500 or status_int == 503 else "The server could not handle the request.",
    }).encode("utf-8")
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: {PROBLEM_CONTENT_TYPE}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode("latin-1")
    return head + body


def write_problem_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """Replacement of gunicorn's HTML error page: the same status, as problem+json."""
    gunicorn_util.write_nonblock(sock, problem_error_bytes(status_int, reason, mesg))


def _post_fork(server: Any, worker: Any) -> None:
    # gunicorn answers malformed or oversized requests itself through util.write_error (an HTML
    # page); swapping it in each worker keeps the API's promise that every error is problem+json.
    gunicorn_util.write_error = write_problem_error


def _post_worker_init(worker: Any) -> None:
    # Start the sink now rather than on the first request, so events a previous (killed) process left
    # in the spool are replayed as soon as the API is back, even if no client posts anything.
    app = getattr(worker, "wsgi", None)
    sink = app.extensions.get("eventsink_sink") if isinstance(app, Flask) else None
    if sink is not None:
        sink.ready()


def _child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def _worker_exit(server: Any, worker: Any) -> None:
    app = getattr(worker, "wsgi", None)
    sink = app.extensions.get("eventsink_sink") if isinstance(app, Flask) else None
    if sink is not None:
        sink.close(timeout=10.0)


class ApiServer(BaseApplication):
    """gunicorn running the app built by ``factory`` in each worker."""

    def __init__(self, factory: Callable[[], Flask], base: Mapping[str, Any],
                 overrides: Mapping[str, Any]) -> None:
        self.factory = factory
        self.base = dict(base)
        self.overrides = dict(overrides)
        super().__init__()

    def load_config(self) -> None:
        """Apply defaults and hooks, then GUNICORN_CMD_ARGS, then the explicit overrides."""
        hooks = {"post_fork": _post_fork, "post_worker_init": _post_worker_init, "child_exit": _child_exit,
                 "worker_exit": _worker_exit}
        for key, value in {**DEFAULTS, **hooks, **self.base}.items():
            if key in self.cfg.settings:  # settings this gunicorn version knows
                self.cfg.set(key, value)
        env_args = self.cfg.parser().parse_args(self.cfg.get_cmd_args_from_env())
        for key, value in vars(env_args).items():
            if value is not None and key in self.cfg.settings:
                self.cfg.set(key.lower(), value)
        for key, value in self.overrides.items():
            name = key.replace("-", "_").lower()
            if name not in self.cfg.settings:
                raise ValueError(f"unknown gunicorn setting {key!r}")
            self.cfg.set(name, value)
        worker_class = self.cfg.settings["worker_class"].get()
        if isinstance(worker_class, str) and worker_class in WORKER_CLASSES:
            self.cfg.set("worker_class", WORKER_CLASSES[worker_class])

    def prepare_listening(self) -> None:
        """With ``reuse_port`` (the default): off for ``unix:`` binds (each worker would replace the
        socket file) and for sockets handed over by systemd (``LISTEN_FDS``) or as ``fd://`` (gunicorn
        would ignore them and let each worker bind its own), else refuse an address already in use
        (AddressInUseError)."""
        if self.cfg.reuse_port:
            binds = [str(b) for b in self.cfg.bind]
            if os.environ.get("LISTEN_FDS") or any(b.startswith(("unix:", "fd://")) for b in binds):
                self.cfg.set("reuse_port", False)
            else:
                check_addresses_free(binds)

    def run(self) -> None:
        """Serve until stopped."""
        self.prepare_listening()
        super().run()

    def load(self) -> Flask:
        """Build the app; called in each worker after the fork."""
        return self.factory()
