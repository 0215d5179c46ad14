"""The http probe: GET or HEAD with DNS, connect, TLS, time-to-first-byte and total timed separately.

Each phase is measured with ``time.perf_counter_ns`` around the step that makes it (``getaddrinfo``,
``connect``, the TLS handshake, the wait for the first response byte), so a phase is that step's time
alone and ``total_ms`` runs from before the lookup to the last body byte:

- ``dns_ms``: ``socket.getaddrinfo``
- ``connect_ms``: TCP connect (every address tried, in resolver order)
- ``tls_ms``: TLS handshake, certificate verification included (0 for http://)
- ``ttfb_ms``: from the request written to the first response byte (the server's think time + 1 RTT,
  what blackbox_exporter calls "processing")
- ``total_ms``: everything, body read included; with redirects followed, phases add up over the hops.
"""

from __future__ import annotations

import re
import socket
import ssl
import time
from datetime import datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

from ..targets import HttpTarget
from .base import Deadline, ProbeResult, describe, ms, resolve, utcnow
from .http1 import ProtocolError, Response, exchange

USER_AGENT = "eventsink-monitor/0.1"
REDIRECTS = (301, 302, 303, 307, 308)
PHASES = ("dns_ms", "connect_ms", "tls_ms", "ttfb_ms", "total_ms")


class HttpProbe:
    """Probes one HTTP(S) target; the TLS context is built once and reused."""

    def __init__(self, target: HttpTarget) -> None:
        self.target = target
        self._pattern = re.compile(target.body_pattern.encode()) if target.body_pattern else None
        self._tls: ssl.SSLContext | None = None

    def _context(self) -> ssl.SSLContext:
        if self._tls is None:
            if self.target.tls_verify:
                ctx = ssl.create_default_context(cafile=str(self.target.ca_file) if self.target.ca_file else None)
            else:
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(["http/1.1"])
            self._tls = ctx
        return self._tls

    def run(self) -> ProbeResult:
        """Probe the URL (following redirects when configured) and build the health.http result."""
        started = utcnow()
        deadline = Deadline(self.target.timeout_s)
        totals = dict.fromkeys(PHASES, 0.0)
        url, hops, cert_days = self.target.url, 0, None
        error: str | None = None
        resp: Response | None = None
        while True:
            phases, resp, hop_cert, error = self._one(url, deadline)
            for key in PHASES:
                totals[key] = round(totals[key] + phases[key], 3)
            if cert_days is None:
                cert_days = hop_cert
            location = resp.headers.get("location") if resp else None
            if error or not (self.target.follow_redirects and resp and resp.status in REDIRECTS and location):
                break
            if hops >= self.target.max_redirects:
                error = f"more than {self.target.max_redirects} redirects"
                break
            hops += 1
            url = urljoin(url, location)
        if error is None and resp is not None:
            error = self._check(resp)
        data: dict[str, Any] = {
            "url": self.target.url,
            "ok": error is None,
            "status": resp.status if resp and resp.status else None,
            "error": error,
            **totals,
            "bytes": resp.body_bytes if resp else 0,
            "cert_expires_in_days": cert_days,
        }
        return ProbeResult(
            target=self.target.name, kind="http", ok=error is None, event_type="health.http", data=data,
            started=started, latency_ms=totals["total_ms"], error=error,
        )

    def failed(self, error: str, started: datetime) -> ProbeResult:
        """A failed health.http result with no phase measured."""
        data: dict[str, Any] = {"url": self.target.url, "ok": False, "status": None, "error": error,
                                **dict.fromkeys(PHASES, 0.0), "bytes": 0, "cert_expires_in_days": None}
        return ProbeResult(self.target.name, "http", False, "health.http", data, started, None, error)

    def _check(self, resp: Response) -> str | None:
        expected = self.target.expect_status
        if expected is not None and resp.status not in expected:
            return f"status {resp.status}, expected {', '.join(map(str, expected))}"
        if expected is None and not 200 <= resp.status < 400:
            return f"status {resp.status}"
        if self._pattern is not None and not self._pattern.search(resp.body):
            return f"body does not match {self.target.body_pattern!r}"
        return None

    def _one(self, url: str, deadline: Deadline) -> tuple[dict[str, float], Response | None, float | None, str | None]:
        """One request without redirects: (phases, response, cert days, error)."""
        parts = urlsplit(url)
        tls = parts.scheme == "https"
        host = parts.hostname or ""
        port = parts.port or (443 if tls else 80)
        phases = dict.fromkeys(PHASES, 0.0)
        step, resp, cert_days = "dns", None, None
        sock: socket.socket | None = None
        t0 = time.perf_counter_ns()
        try:
            infos = resolve(host, port)
            t_dns = time.perf_counter_ns()
            phases["dns_ms"] = ms(t0, t_dns)
            step = "connect"
            sock = _connect(infos, deadline)
            t_conn = time.perf_counter_ns()
            phases["connect_ms"] = ms(t_dns, t_conn)
            t_ready = t_conn
            if tls:
                step = "tls"
                sock = self._context().wrap_socket(sock, server_hostname=host, do_handshake_on_connect=False)
                sock.settimeout(deadline.remaining())
                sock.do_handshake()
                t_ready = time.perf_counter_ns()
                phases["tls_ms"] = ms(t_conn, t_ready)
                cert_days = _cert_days(sock)
            step = "response"
            sent_ns, resp = exchange(sock, self._request(parts, host, port, tls), deadline,
                                     head=self.target.method == "HEAD", keep=self.target.max_body_bytes)
            phases["ttfb_ms"] = ms(sent_ns, resp.first_byte_ns)
            phases["total_ms"] = ms(t0, resp.end_ns)
            return phases, resp, cert_days, None
        except (OSError, ssl.SSLError, ProtocolError) as exc:
            phases["total_ms"] = ms(t0, time.perf_counter_ns())
            return phases, resp, cert_days, _explain(step, exc)
        finally:
            if sock is not None:
                sock.close()

    def _request(self, parts: Any, host: str, port: int, tls: bool) -> bytes:
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        default_port = 443 if tls else 80
        host_header = (f"[{host}]" if ":" in host else host) + ("" if port == default_port else f":{port}")
        headers = {"Host": host_header, "User-Agent": USER_AGENT, "Accept": "*/*", "Connection": "close"}
        headers.update(self.target.headers)
        head = f"{self.target.method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        return (head + "\r\n").encode("latin-1")


def _connect(infos: list[Any], deadline: Deadline) -> socket.socket:
    last: OSError | None = None
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(deadline.remaining())
            sock.connect(address)
            return sock
        except OSError as exc:
            sock.close()
            last = exc
            if isinstance(exc, TimeoutError):
                break
    raise last or OSError("no address to connect to")


def _cert_days(sock: ssl.SSLSocket) -> float | None:
    """Days until the server certificate expires (negative once expired)."""
    cert = sock.getpeercert()
    not_after: float
    if cert and cert.get("notAfter"):
        not_after = ssl.cert_time_to_seconds(str(cert["notAfter"]))
    else:
        der = sock.getpeercert(binary_form=True)
        if not der:
            return None
        try:  # without verification the parsed form is empty; cryptography reads the raw certificate
            from cryptography import x509
        except ImportError:
            return None
        not_after = x509.load_der_x509_certificate(der).not_valid_after_utc.timestamp()
    return round((not_after - time.time()) / 86400, 3)


def _explain(step: str, exc: BaseException) -> str:
    if isinstance(exc, socket.gaierror):
        return describe(exc)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"tls: certificate verify failed: {exc.verify_message}"
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"timed out during {step}"
    return f"{step}: {describe(exc)}"
