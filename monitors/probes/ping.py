"""The ping probe: ICMP echo requests with round-trip times and loss.

It opens an unprivileged ICMP datagram socket where ``net.ipv4.ping_group_range`` lets this process's
group do so (the kernel then fills in the identifier and only hands us our own replies), and falls back
to a raw socket, which needs root or CAP_NET_RAW. With neither, the probe fails with an error that
says how to allow it. Replies are matched by identifier, sequence number and a random token in the
payload, so concurrent pings of the same host do not see each other's replies.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import struct
import time
from datetime import datetime
from typing import Any

from ..errors import ProbeError
from ..targets import PingTarget
from .base import Deadline, ProbeResult, describe, resolve, utcnow

ECHO_REQUEST: dict[int, int] = {socket.AF_INET: 8, socket.AF_INET6: 128}
ECHO_REPLY: dict[int, int] = {socket.AF_INET: 0, socket.AF_INET6: 129}
PROTO: dict[int, int] = {socket.AF_INET: socket.IPPROTO_ICMP, socket.AF_INET6: socket.IPPROTO_ICMPV6}
REPLY_WAIT_S = 2.0  # how long replies are awaited after the last request (within the timeout)


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def open_icmp_socket(family: int) -> tuple[socket.socket, bool]:
    """An ICMP socket and whether it is raw; ProbeError when the system allows neither kind."""
    try:
        return socket.socket(family, socket.SOCK_DGRAM, PROTO[family]), False
    except PermissionError:
        pass
    try:
        return socket.socket(family, socket.SOCK_RAW, PROTO[family]), True
    except PermissionError:
        raise ProbeError(
            f"ICMP echo is not allowed for this process (uid {os.getuid()}, gid {os.getgid()}): either add its "
            "group to net.ipv4.ping_group_range (sysctl -w net.ipv4.ping_group_range='0 2147483647') or run "
            "the monitor as root or with CAP_NET_RAW"
        ) from None


class PingProbe:
    """Sends ``count`` echo requests ``spacing_s`` apart and waits for the replies."""

    def __init__(self, target: PingTarget) -> None:
        self.target = target

    def run(self) -> ProbeResult:
        """Ping the host and build the health.ping result."""
        started = utcnow()
        deadline = Deadline(self.target.timeout_s)
        try:
            family, address = self._address()
            rtts = self._echo(family, address, deadline)
        except (OSError, ProbeError) as exc:
            return self.failed(describe(exc) if isinstance(exc, OSError) else str(exc), started)
        lost = self.target.count - len(rtts)
        loss = round(100.0 * lost / self.target.count, 3)
        ok = bool(rtts) and loss <= self.target.max_loss_pct
        error = None if ok else f"{lost} of {self.target.count} echo requests lost"
        data: dict[str, Any] = {
            "target": self.target.host,
            "rtt_min_ms": round(min(rtts), 3) if rtts else None,
            "rtt_avg_ms": round(sum(rtts) / len(rtts), 3) if rtts else None,
            "rtt_max_ms": round(max(rtts), 3) if rtts else None,
            "loss_pct": loss,
            "ok": ok,
        }
        return ProbeResult(self.target.name, "ping", ok, "health.ping", data, started,
                           data["rtt_avg_ms"], error)

    def failed(self, error: str, started: datetime) -> ProbeResult:
        """A health.ping result with every request lost."""
        data: dict[str, Any] = {"target": self.target.host, "rtt_min_ms": None, "rtt_avg_ms": None,
                                "rtt_max_ms": None, "loss_pct": 100.0, "ok": False}
        return ProbeResult(self.target.name, "ping", False, "health.ping", data, started, None, error)

    def _address(self) -> tuple[int, Any]:
        infos = resolve(self.target.host, None, kind=socket.SOCK_DGRAM)
        infos = [i for i in infos if i[0] in PROTO] or infos
        return infos[0][0], infos[0][4]

    def _echo(self, family: int, address: Any, deadline: Deadline) -> list[float]:
        sock, raw = open_icmp_socket(family)
        ident = int.from_bytes(os.urandom(2), "big")
        token = os.urandom(8)
        sent: dict[int, int] = {}
        rtts: dict[int, float] = {}
        try:
            next_send = time.monotonic()
            seq = 0
            last_sent = 0.0
            while True:
                now = time.monotonic()
                if seq < self.target.count and now >= next_send:
                    packet = self._packet(family, ident, seq, token)
                    sent[seq] = time.perf_counter_ns()
                    with contextlib.suppress(OSError):  # unreachable network: that request is lost
                        sock.sendto(packet, address)
                    seq += 1
                    last_sent = now
                    next_send = now + self.target.spacing_s
                done = seq >= self.target.count
                if done and len(rtts) == len(sent):
                    break
                if deadline.expired() or (done and now - last_sent >= REPLY_WAIT_S):
                    break
                wait = (min(next_send, deadline.end) if not done else
                        min(last_sent + REPLY_WAIT_S, deadline.end)) - time.monotonic()
                readable, _, _ = select.select([sock], [], [], max(0.0, wait))
                if readable:
                    self._receive(sock, raw, family, ident, token, sent, rtts)
        finally:
            sock.close()
        return list(rtts.values())

    @staticmethod
    def _packet(family: int, ident: int, seq: int, token: bytes) -> bytes:
        payload = token + b"eventsink-monitor-ping-padding-to-56-bytes!!!!!!"[:48]
        header = struct.pack("!BBHHH", ECHO_REQUEST[family], 0, 0, ident, seq)
        if family == socket.AF_INET6:  # the kernel computes the ICMPv6 checksum
            return header + payload
        return struct.pack("!BBHHH", ECHO_REQUEST[family], 0, checksum(header + payload), ident, seq) + payload

    @staticmethod
    def _receive(sock: socket.socket, raw: bool, family: int, ident: int, token: bytes,
                 sent: dict[int, int], rtts: dict[int, float]) -> None:
        packet = sock.recv(2048)
        received = time.perf_counter_ns()
        if raw and family == socket.AF_INET:
            packet = packet[(packet[0] & 0x0F) * 4:]  # skip the IPv4 header
        if len(packet) < 16:
            return
        kind, _, _, reply_id, seq = struct.unpack("!BBHHH", packet[:8])
        if kind != ECHO_REPLY[family] or packet[8:16] != token or seq not in sent or seq in rtts:
            return
        if raw and reply_id != ident:
            return
        rtts[seq] = (received - sent[seq]) / 1e6
