"""RFC 7807 problem details: every error the API returns is ``application/problem+json``.

Views raise :class:`Problem`; HTTP errors raised by Flask and werkzeug (404, 405, 413, ...) and
unexpected exceptions are turned into problems here, in one place. A 500 never carries details. An
``errors`` list is cut to its first :data:`MAX_ERRORS` entries and ``errors_omitted`` counts the rest,
so a request of thousands of bad events cannot make an answer of megabytes.
"""

from __future__ import annotations

import json as stdlib_json
import logging
from typing import Any

from flask import Flask, Response, json
from werkzeug.exceptions import HTTPException

PROBLEM_TYPE_BASE = "https://eventsink.dev/problems/"
PROBLEM_CONTENT_TYPE = "application/problem+json"
#: most entries of ``errors`` in one answer; ``errors_omitted`` says how many more there were
MAX_ERRORS = 100

log = logging.getLogger(__name__)

# status -> (slug, title); the slug is also the "reason" label of the rejected-requests metric
KNOWN: dict[int, tuple[str, str]] = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Missing or invalid API key"),
    403: ("forbidden", "Event type outside the key's scopes"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    413: ("too-large", "Request body too large"),
    414: ("request-line-too-large", "Request line too large"),
    415: ("unsupported-media-type", "Unsupported content type"),
    422: ("invalid-event", "Invalid event"),
    429: ("rate-limited", "Too many requests"),
    431: ("headers-too-large", "Request header fields too large"),
    500: ("internal-error", "Internal server error"),
    503: ("unavailable", "Events could not be accepted now"),
}


class Problem(Exception):
    """An error response: raise it from a view to answer with problem+json."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        slug: str | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.extensions = extensions
        self.status = status
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}
        self.slug = slug


def problem_document(
    status: int,
    detail: str,
    *,
    errors: list[dict[str, Any]] | None = None,
    slug: str | None = None,
    extensions: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The problem+json body; ``extensions`` are extra members (RFC 7807 section 3.2)."""
    known_slug, title = KNOWN.get(status, ("error", "Error"))
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + (slug or known_slug),
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors[:MAX_ERRORS]
        if len(errors) > MAX_ERRORS:
            body["errors_omitted"] = len(errors) - MAX_ERRORS
    body.update(extensions or {})
    return body


def problem_response(
    status: int,
    detail: str,
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    slug: str | None = None,
    extensions: dict[str, Any] | None = None,
) -> Response:
    """The problem as a Flask response."""
    body = problem_document(status, detail, errors=errors, slug=slug, extensions=extensions)
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def problem_bytes(exc: Problem) -> bytes:
    """A raised Problem's body, outside Flask (the same JSON as :func:`problem_response` writes)."""
    return stdlib_json.dumps(problem_document(exc.status, exc.detail, errors=exc.errors, slug=exc.slug,
                                              extensions=exc.extensions)).encode()


def reason_of(status: int) -> str:
    """The short reason a response of ``status`` rejected a request (for metrics)."""
    return KNOWN.get(status, ("error", ""))[0]


def _from_problem(exc: Problem) -> Response:
    return problem_response(exc.status, exc.detail, errors=exc.errors, headers=exc.headers, slug=exc.slug,
                            extensions=exc.extensions)


def _from_http(exc: HTTPException) -> Response:
    status = exc.code or 500
    if status >= 500:
        return problem_response(500, "The server could not handle the request.")
    detail = exc.description or KNOWN.get(status, ("", "Error"))[1]
    headers = {}
    if exc.response is not None:
        headers = {k: v for k, v in exc.response.headers.items() if k in ("Retry-After", "Allow")}
    valid_methods = getattr(exc, "valid_methods", None)
    if status == 405 and valid_methods:
        headers["Allow"] = ", ".join(valid_methods)
    return problem_response(status, detail, headers=headers)


def _from_unexpected(exc: Exception) -> Response:
    if isinstance(exc, HTTPException):
        return _from_http(exc)
    log.exception("unhandled error")
    return problem_response(500, "The server could not handle the request.")


def register(app: Flask) -> None:
    """Route every error of the app through problem+json."""
    app.register_error_handler(Problem, _from_problem)
    app.register_error_handler(HTTPException, _from_http)
    app.register_error_handler(Exception, _from_unexpected)
