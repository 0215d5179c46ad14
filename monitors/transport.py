"""How the reporter reaches the API: a tiny transport interface and its ``requests`` implementation.

Tests and embedders can pass their own :class:`Transport`; only :class:`TransportError` (the API could
not be reached) and the :class:`Answer` of a request matter to the reporter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Answer:
    """What the API answered to one POST."""

    status: int
    headers: dict[str, str]
    body: bytes


class Transport(Protocol):
    """Posts one JSON body; raises OSError-like ``TransportError`` when the API cannot be reached."""

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
        """POST ``body`` to ``url``."""
        ...


class TransportError(Exception):
    """The API could not be reached (connection refused, reset, timeout)."""


class RequestsTransport:
    """The default transport: a ``requests`` session with connection reuse.

    Redirects are never followed: ``requests`` would resend the ``X-API-Key`` header to whatever host
    a redirect names. A 3xx comes back as the answer and the reporter keeps the events.
    """

    def __init__(self) -> None:
        import requests

        self._requests = requests
        self._session = requests.Session()

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
        """POST with the session, turning requests' errors into TransportError."""
        try:
            resp = self._session.post(url, data=body, headers=headers, timeout=timeout, allow_redirects=False)
        except self._requests.RequestException as exc:
            raise TransportError(str(exc)) from exc
        return Answer(resp.status_code, {k.lower(): v for k, v in resp.headers.items()}, resp.content)
