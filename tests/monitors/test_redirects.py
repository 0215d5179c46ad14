"""The monitor's API key goes to the configured API only: redirects are not followed with it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from monitors.reporter import Reporter, ReporterSettings
from monitors.transport import RequestsTransport

from ..support import wait_for
from .test_reporter import event


class Recorder:
    """An HTTP server on its own port that records each request's headers; answers ``status``."""

    def __init__(self, status: int = 202, location: str | None = None) -> None:
        self.headers: list[dict[str, str]] = []
        self.lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with recorder.lock:
                    recorder.headers.append(dict(self.headers.items()))
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            do_POST = do_GET = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def elsewhere() -> Iterator[Recorder]:
    """The host a redirect points at: it must never see the key."""
    server = Recorder(202)
    yield server
    server.close()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_the_transport_does_not_follow_a_redirect_with_the_key(elsewhere: Recorder, status: int) -> None:
    # Given an API URL that answers with a redirect to another port
    redirector = Recorder(status, location=elsewhere.url + "/api/v1/events")
    try:
        # When the transport posts with the key
        answer = RequestsTransport().post(redirector.url + "/api/v1/events", b"[]",
                                          {"X-API-Key": "secret-key", "Content-Type": "application/json"}, 5.0)
        # Then it gets the redirect itself, and the other host saw nothing
        assert answer.status == status
        assert redirector.headers[0]["X-API-Key"] == "secret-key"
        assert elsewhere.headers == []
    finally:
        redirector.close()


def test_the_reporter_keeps_events_spooled_when_the_api_redirects(elsewhere: Recorder, tmp_path: Path) -> None:
    # Given a monitor whose api_url now redirects (say, to a new host)
    redirector = Recorder(307, location=elsewhere.url + "/api/v1/events")
    settings = ReporterSettings(api_url=redirector.url, api_key="secret-key", spool_dir=tmp_path / "spool",
                                flush_interval_s=0.05, retry_min_s=0.05, retry_max_s=0.2, timeout_s=2.0)
    reporter = Reporter(settings)
    reporter.start()
    try:
        # When it reports events and retries
        reporter.submit([event(i) for i in range(3)])
        wait_for(lambda: len(redirector.headers) >= 2, timeout=20, what="a retried POST")
        # Then the key never reached the other host, and the events wait in the spool (not refused)
        assert elsewhere.headers == []
        stats = reporter.stats()
        assert stats["rejected"] == 0 and stats["sent"] == 0 and stats["spooled"] == 3
        assert "redirect" in (stats["last_error"] or "") and elsewhere.url in stats["last_error"]
    finally:
        reporter.close(timeout=0.2)
        redirector.close()
