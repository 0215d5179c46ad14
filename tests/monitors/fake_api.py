"""A stand-in for the emergency API that checks requests the way it does, for reporter unit tests.

It accepts ``POST /api/v1/events`` with ``X-API-Key: good-key`` and a JSON array of events each with
``type`` and ``data``; answers 202 with the ids, 401/415/400/422 as problem+json otherwise. ``mode``
switches it to 503 + Retry-After, or to hanging without an answer; ``reject_if`` refuses (422) any batch
holding an event whose data has that key, as the real API refuses a whole batch for one bad event.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

KEY = "good-key"


class FakeApi:
    """The fake API server; ``events`` lists what it accepted, ``requests`` counts POSTs."""

    def __init__(self, port: int = 0) -> None:
        self.events: list[dict[str, Any]] = []
        self.requests = 0
        self.mode = "ok"
        self.release = threading.Event()  # ends every hanging request (set by close())
        self.retry_after = "1"
        self.reject_if: str | None = None
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                api.handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def handle(self, req: BaseHTTPRequestHandler) -> None:
        """Answer one request like the real API would."""
        body = req.rfile.read(int(req.headers.get("Content-Length", 0)))
        with self.lock:
            self.requests += 1
        if self.mode == "hang":
            self.release.wait(300)
            return
        if self.mode == "unavailable":
            return self.problem(req, 503, "unavailable", {"Retry-After": self.retry_after})
        if req.path != "/api/v1/events":
            return self.problem(req, 404, "not found")
        if req.headers.get("X-API-Key") != KEY:
            return self.problem(req, 401, "the API key is invalid or revoked")
        if req.headers.get("Content-Type") != "application/json":
            return self.problem(req, 415, "send JSON")
        try:
            events = json.loads(body)
        except ValueError:
            return self.problem(req, 400, "not JSON")
        events = events if isinstance(events, list) else [events]
        errors = [{"index": i, "field": f, "message": "field required"}
                  for i, e in enumerate(events) for f in ("type", "data") if f not in e]
        if self.reject_if:
            errors += [{"index": i, "field": f"data.{self.reject_if}", "message": "refused"}
                       for i, e in enumerate(events) if self.reject_if in e.get("data", {})]
        if errors:
            return self.problem(req, 422, "invalid events", {}, errors)
        with self.lock:
            self.events.extend(events)
        self.reply(req, 202, {"accepted": len(events), "ids": [e.get("id") for e in events]}, "application/json")

    def problem(self, req: BaseHTTPRequestHandler, status: int, detail: str, headers: dict[str, str] | None = None,
                errors: list[dict[str, Any]] | None = None) -> None:
        """Send an application/problem+json answer."""
        doc: dict[str, Any] = {"type": "about:blank", "title": str(status), "status": status, "detail": detail}
        if errors:
            doc["errors"] = errors
        self.reply(req, status, doc, "application/problem+json", headers)

    @staticmethod
    def reply(req: BaseHTTPRequestHandler, status: int, doc: Any, ctype: str,
              headers: dict[str, str] | None = None) -> None:
        """Write a JSON answer."""
        data = json.dumps(doc).encode()
        req.send_response(status)
        req.send_header("Content-Type", ctype)
        req.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            req.send_header(name, value)
        req.end_headers()
        req.wfile.write(data)

    def close(self) -> None:
        """Stop serving and free the port."""
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
