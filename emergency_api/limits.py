"""Per-key rate limits (Flask-Limiter) shared by every ``/api/`` route.

Requests are counted per authenticated key id; requests without a valid key are counted per client
address, which also slows down key guessing. With ``memory://`` storage each gunicorn worker process
counts on its own, so the effective limit is the configured one times the number of workers; use a
shared storage (``redis://host:6379``) for an exact limit.
"""

from __future__ import annotations

import time

from flask import Blueprint, Flask, Response
from flask_limiter import Limiter, RateLimitExceeded
from flask_limiter.util import get_remote_address

from .auth import current_key
from .problems import problem_response
from .settings import ApiSettings


def rate_key() -> str:
    """The rate-limit bucket of this request: the key id, else the client address."""
    key = current_key()
    return f"key:{key.id}" if key is not None else f"addr:{get_remote_address()}"


def init_limits(app: Flask, settings: ApiSettings, blueprints: list[Blueprint]) -> Limiter:
    """Attach the limiter to ``app`` with one limit shared by ``blueprints``."""
    limiter = Limiter(
        rate_key,
        app=app,
        storage_uri=settings.rate_limit_storage_uri,
        strategy="fixed-window",
        enabled=settings.rate_limit_enabled,
        headers_enabled=False,
        swallow_errors=False,
    )
    shared = limiter.shared_limit(settings.rate_limit, scope="api")
    for bp in blueprints:
        shared(bp)

    def too_many(exc: RateLimitExceeded) -> Response:
        current = limiter.current_limit
        retry = max(1, int(current.reset_at - time.time())) if current else 1
        return problem_response(
            429, f"rate limit {exc.limit.limit} exceeded", headers={"Retry-After": str(retry)}
        )

    app.register_error_handler(RateLimitExceeded, too_many)
    return limiter
