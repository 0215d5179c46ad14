"""A TCP door in front of the real RabbitMQ: closed, the broker looks away; opened, it is back.

Lets a test take the broker away from one client only, without stopping the shared broker.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from urllib.parse import urlsplit


class BrokerDoor:
    """Listens on a free local port once opened and forwards each connection to the broker."""

    def __init__(self, broker_url: str) -> None:
        parts = urlsplit(broker_url)
        self.target = (parts.hostname or "localhost", parts.port or 5672)
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()  # nothing listens until open(): connections are refused
        self.url = broker_url.replace(f"{parts.netloc.rsplit('@', 1)[-1]}", f"127.0.0.1:{self.port}", 1)
        self._server: socket.socket | None = None
        self._sockets: list[socket.socket] = []

    def open(self) -> None:
        """Start accepting connections (the broker is back)."""
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(16)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def close(self) -> None:
        """Stop listening and cut every forwarded connection."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()
        self._sockets.clear()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)
