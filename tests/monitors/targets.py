"""Local probe targets for the monitor tests and benchmarks: HTTP(S) servers with injected delays.

The server answers ``GET /?delay_ms=D&size=N&body_delay_ms=B&chunked=1&status=S&location=L`` (L=self: itself): it waits
D ms after reading the request before writing any byte (so time-to-first-byte is D plus loopback
overhead), sends the headers and half of an N-byte body, waits B ms, then sends the rest.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

# A client starts its first-byte clock when sendall returns; if its thread is descheduled right then, the
# server may already be sleeping: on a loaded 2-core machine a 100 ms delay was once measured 99.982 ms.
# Lower bounds on measured delays allow this much; it is far below every delay the tests inject.
CLOCK_LEAD_MS = 5.0


def _read_head(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def _answer(conn: socket.socket) -> None:
    head = _read_head(conn)
    if not head:
        return
    method, target = head.split(b" ", 2)[:2]
    query = {k: v[0] for k, v in parse_qs(urlsplit(target.decode()).query).items()}
    delay = float(query.get("delay_ms", 0)) / 1000
    body_delay = float(query.get("body_delay_ms", 0)) / 1000
    size = int(query.get("size", 100))
    status = int(query.get("status", 200))
    body = (b"0123456789abcdef" * (size // 16 + 1))[:size]
    if "marker" in query:
        body = query["marker"].encode() + body[len(query["marker"]):]
    if delay:
        time.sleep(delay)
    headers = [f"HTTP/1.1 {status} X", "Connection: close", "Content-Type: text/plain"]
    if "location" in query:
        location = target.decode() if query["location"] == "self" else query["location"]
        headers.append(f"Location: {location}")
    chunked = query.get("chunked") == "1"
    headers.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}")
    conn.sendall(("\r\n".join(headers) + "\r\n\r\n").encode())
    if method == b"HEAD":
        return
    half = size // 2
    parts = [body[:half], body[half:]]
    for index, part in enumerate(parts):
        if index == 1 and body_delay:
            time.sleep(body_delay)
        if chunked:
            if part:
                conn.sendall(f"{len(part):x}\r\n".encode() + part + b"\r\n")
        else:
            conn.sendall(part)
    if chunked:
        conn.sendall(b"0\r\n\r\n")


class DelayServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 (TLS when given a context) for latency tests."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.port = self.sock.getsockname()[1]
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def base(self) -> str:
        """Base URL (``http://127.0.0.1:port`` or ``https://localhost:port``)."""
        return f"https://localhost:{self.port}" if self.tls else f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            if self.tls:
                conn = self.tls.wrap_socket(conn, server_side=True)
            _answer(conn)
        except (OSError, ssl.SSLError, ValueError):
            pass
        finally:
            conn.close()

    def close(self) -> None:
        """Stop accepting."""
        self._stop = True
        self.sock.close()


@contextmanager
def delay_server(tls: ssl.SSLContext | None = None) -> Iterator[DelayServer]:
    """A running DelayServer for the duration of the block."""
    server = DelayServer(tls)
    try:
        yield server
    finally:
        server.close()


def make_certificate(directory: Path, days: float) -> tuple[Path, Path]:
    """A self-signed certificate for localhost/127.0.0.1 expiring in ``days``; returns (cert, key) paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server-side TLS context for the certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


def closed_port() -> int:
    """A local TCP port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
