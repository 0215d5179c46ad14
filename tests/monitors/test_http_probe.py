"""The http probe against real local servers with known delays, sizes, certificates and failures.

Tolerance: the server sleeps ``delay`` after reading the request before writing any byte, and sleep
never returns early. The probe starts its clock when ``sendall`` returns, so ``ttfb >= delay`` holds
unless the probe's thread is descheduled between the send and reading the clock while the server
already reads (seen: 99.982 ms for a 100 ms delay on a loaded machine); the lower bound is therefore
retried like the upper ones. Above it there is one
loopback round trip (~0.1 ms) plus thread wake-ups on a shared 2-core machine where other test suites
run at the same time. Noise only ever adds time, so the upper bounds (delay + ``SLACK_MS``) are checked
with retries: a probe passes when one of ``ATTEMPTS`` runs is within them. A probe that times the wrong
step (e.g. includes the connect, or stops at the headers when the body is delayed) is off by the
injected delay on every run and still fails. Precision itself is measured by
bench/monitors_accuracy.py, not asserted here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from monitors.probes.http import HttpProbe
from monitors.targets import HttpTarget

from .targets import CLOCK_LEAD_MS, DelayServer, closed_port

SLACK_MS = 50.0
ATTEMPTS = 5


def probe(url: str, **options: object) -> dict:
    target = HttpTarget(name="t", kind="http", url=url, **options)
    result = HttpProbe(target).run()
    assert result.ok is result.data["ok"]
    return result.data


def probe_within(url: str, bounds: Callable[[dict], list[str]], **options: object) -> dict:
    """Probe until the upper bounds hold (``bounds`` lists what is over), at most ATTEMPTS times."""
    over: list[list[str]] = []
    for _ in range(ATTEMPTS):
        data = probe(url, **options)
        problems = bounds(data)
        if not problems:
            return data
        over.append(problems)
    raise AssertionError(f"over the bound in all {ATTEMPTS} attempts: {over}")


def at_least(data: dict, **limits: float) -> list[str]:
    """The fields of ``data`` below their limit."""
    return [f"{name}={data[name]:.3f} < {limit:.1f}" for name, limit in limits.items() if data[name] < limit]


def at_most(data: dict, **limits: float) -> list[str]:
    """The fields of ``data`` above their limit."""
    return [f"{name}={data[name]:.1f} > {limit:.1f}" for name, limit in limits.items() if data[name] > limit]


@pytest.mark.parametrize("delay_ms", [0, 100, 250])
def test_ttfb_and_total_follow_the_injected_delay(http_server: DelayServer, delay_ms: int) -> None:
    # Given a server that waits delay_ms before its first byte
    # When the URL is probed
    def bounds(data: dict) -> list[str]:
        assert data["ok"] and data["status"] == 200 and data["bytes"] == 2000
        assert data["ttfb_ms"] <= data["total_ms"]
        upper = at_most(data, ttfb_ms=delay_ms + SLACK_MS, total_ms=delay_ms + SLACK_MS)
        return at_least(data, ttfb_ms=delay_ms) + upper

    data = probe_within(f"{http_server.base}/?delay_ms={delay_ms}&size=2000", bounds)
    # Then the time to first byte is the delay (within the slack) and the total covers it
    assert data["total_ms"] >= data["dns_ms"] + data["connect_ms"] + data["ttfb_ms"]
    assert data["tls_ms"] == 0 and data["cert_expires_in_days"] is None


@pytest.mark.parametrize("chunked", ["0", "1"])
def test_a_delay_inside_the_body_counts_in_total_not_ttfb(http_server: DelayServer, chunked: str) -> None:
    def bounds(data: dict) -> list[str]:
        assert data["bytes"] == 100000
        assert data["ttfb_ms"] >= 50 - CLOCK_LEAD_MS and data["total_ms"] >= 200
        return at_most(data, ttfb_ms=50 + SLACK_MS, total_ms=200 + SLACK_MS)

    probe_within(f"{http_server.base}/?delay_ms=50&body_delay_ms=150&size=100000&chunked={chunked}", bounds)


def test_head_reads_no_body(http_server: DelayServer) -> None:
    data = probe(f"{http_server.base}/?size=5000", method="HEAD")
    assert data["ok"] and data["status"] == 200 and data["bytes"] == 0


def test_https_reports_tls_time_and_certificate_expiry(
    https_server: DelayServer, certificate: tuple[Path, Path]
) -> None:
    # Given a TLS server whose certificate expires in 30 days, trusted through ca_file
    def bounds(data: dict) -> list[str]:
        assert data["ok"] and data["bytes"] == 300
        assert data["tls_ms"] > 0 and data["ttfb_ms"] >= 100 - CLOCK_LEAD_MS
        assert data["cert_expires_in_days"] == pytest.approx(30, abs=0.01)
        return at_most(data, ttfb_ms=100 + SLACK_MS)

    # Then the handshake has its own phase and the expiry is reported in days
    probe_within(f"{https_server.base}/?delay_ms=100&size=300", bounds, ca_file=certificate[0])


def test_untrusted_certificate_fails_unless_verification_is_off(https_server: DelayServer) -> None:
    refused = probe(f"{https_server.base}/")
    assert not refused["ok"] and "certificate verify failed" in refused["error"]
    accepted = probe(f"{https_server.base}/", tls_verify=False)
    assert accepted["ok"] and accepted["cert_expires_in_days"] == pytest.approx(30, abs=0.01)


def test_closed_port_is_a_connect_failure() -> None:
    data = probe(f"http://127.0.0.1:{closed_port()}/")
    assert not data["ok"] and data["status"] is None
    assert data["error"] == "connect: connection refused"


def test_unresolvable_name_is_a_dns_failure() -> None:
    data = probe("http://no-such-host.invalid/")
    assert not data["ok"] and data["error"].startswith("name not resolved")


def test_slow_server_past_the_timeout_fails_at_the_timeout(http_server: DelayServer) -> None:
    def bounds(data: dict) -> list[str]:
        assert not data["ok"] and data["error"] == "timed out during response"
        assert data["total_ms"] >= 500
        return at_most(data, total_ms=500 + SLACK_MS)

    probe_within(f"{http_server.base}/?delay_ms=3000", bounds, timeout_s=0.5)


def test_unexpected_status_and_body_pattern(http_server: DelayServer) -> None:
    assert probe(f"{http_server.base}/?status=503")["error"] == "status 503"
    assert not probe(f"{http_server.base}/?status=200", expect_status=[204])["ok"]
    assert probe(f"{http_server.base}/?marker=HEALTHY", body_pattern="^HEALTHY")["ok"]
    missing = probe(f"{http_server.base}/?marker=BROKEN", body_pattern="^HEALTHY")
    assert not missing["ok"] and "does not match" in missing["error"]


def test_redirects_are_reported_not_followed_unless_asked(http_server: DelayServer) -> None:
    target = "/?delay_ms=100%26size=10"
    url = f"{http_server.base}/?status=302&location={target}"
    direct = probe(url)
    assert direct["status"] == 302 and direct["bytes"] == 100
    followed = probe(url, follow_redirects=True)
    assert followed["status"] == 200 and followed["bytes"] == 10
    assert followed["ttfb_ms"] >= 100 - CLOCK_LEAD_MS
    looping = probe(f"{http_server.base}/?status=302&location=self", follow_redirects=True, max_redirects=2)
    assert not looping["ok"] and "redirects" in looping["error"]
