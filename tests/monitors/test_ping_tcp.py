"""The ping and tcp probes against loopback, and their failures."""

from __future__ import annotations

import socket

import pytest

from monitors.errors import ProbeError
from monitors.probes import ping as ping_module
from monitors.probes.ping import PingProbe, checksum, open_icmp_socket
from monitors.probes.tcp import TcpProbe
from monitors.targets import PingTarget, TcpTarget

from ..support import not_here
from .targets import closed_port


def icmp_allowed() -> bool:
    try:
        open_icmp_socket(socket.AF_INET)[0].close()
    except ProbeError:
        return False
    return True


def test_checksum_of_a_known_echo_request() -> None:
    # RFC 1071 example bytes: 0001 f203 f4f5 f6f7 -> sum 0xddf2, checksum 0x220d
    assert checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_ping_loopback_gets_every_reply(host: str) -> None:
    if not icmp_allowed():
        not_here("neither unprivileged nor raw ICMP sockets are allowed (net.ipv4.ping_group_range, or root)")
    result = PingProbe(PingTarget(name="lo", kind="ping", host=host, count=4, spacing_s=0.02)).run()
    assert result.ok and result.error is None
    data = result.data
    assert data["loss_pct"] == 0.0
    assert 0 < data["rtt_min_ms"] <= data["rtt_avg_ms"] <= data["rtt_max_ms"] < 100


def test_ping_without_icmp_permission_explains_how_to_allow_it(monkeypatch: pytest.MonkeyPatch) -> None:
    real_socket = socket.socket

    def refuse(family: int = -1, kind: int = -1, proto: int = -1) -> socket.socket:
        if kind in (socket.SOCK_DGRAM, socket.SOCK_RAW) and proto in (socket.IPPROTO_ICMP, socket.IPPROTO_ICMPV6):
            raise PermissionError(1, "Operation not permitted")
        return real_socket(family, kind, proto)

    monkeypatch.setattr(ping_module.socket, "socket", refuse)
    result = PingProbe(PingTarget(name="lo", kind="ping", host="127.0.0.1")).run()
    assert not result.ok and result.data["loss_pct"] == 100.0
    assert "ping_group_range" in (result.error or "") and "CAP_NET_RAW" in (result.error or "")


def test_ping_unresolvable_name() -> None:
    result = PingProbe(PingTarget(name="x", kind="ping", host="no-such-host.invalid")).run()
    assert not result.ok and (result.error or "").startswith("name not resolved")


def test_tcp_connect_to_a_listening_port() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        result = TcpProbe(TcpTarget(name="svc", kind="tcp", host="127.0.0.1", port=port)).run()
    assert result.ok and result.event_type == "health.tcp"
    assert result.data["target"] == f"127.0.0.1:{port}"
    assert 0 < result.data["connect_ms"] < 1000 and result.latency_ms == result.data["connect_ms"]


def test_tcp_closed_port_and_unresolvable_name() -> None:
    refused = TcpProbe(TcpTarget(name="svc", kind="tcp", host="127.0.0.1", port=closed_port())).run()
    assert not refused.ok and refused.error == "connection refused"
    unknown = TcpProbe(TcpTarget(name="svc", kind="tcp", host="db.invalid", port=5432)).run()
    assert not unknown.ok and (unknown.error or "").startswith("name not resolved")
