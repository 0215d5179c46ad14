"""Per-key rate limits shared by every ``/api/`` route, with the ``limits`` library.

``limits`` is the engine under Flask-Limiter: same rate syntax (``600/minute``, ``;`` between several)
and the same storages (``memory://``, ``redis://``, ``memcached://``). It is called directly, once
per request, because Flask-Limiter's per-request resolution of decorators, blueprints and exemptions
cost more CPU than a whole bare Flask request (measured in bench/api_ingest.py).

Requests are counted per authenticated key id; requests without a valid key are counted per client
address, which also slows down key guessing. With ``memory://`` each gunicorn worker process counts
on its own, so the effective limit is the configured one times the number of workers; use a shared
storage (``redis://host:6379``, needs the ``redis`` package) for an exact limit.
"""

from __future__ import annotations

import time

from flask import Flask
from limits import parse_many
from limits.errors import ConfigurationError as LimitsConfigurationError
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

from sink_lib.errors import ConfigurationError

from .problems import Problem
from .settings import ApiSettings


class SweepingMemoryStorage(MemoryStorage):
    """limits' memory storage without its timer thread per burst of requests.

    The stock storage starts a ``threading.Timer`` whenever none is alive, so under steady traffic it
    starts a thread every ~10 ms, which costs more than the rest of the request. Fixed-window counters
    already expire when read, so here stale keys are swept inline at most every ``SWEEP_S`` seconds.
    ``memory://`` in the settings selects this storage.
    """

    STORAGE_SCHEME = ["eventsink-memory"]
    SWEEP_S = 10.0
    _last_sweep = 0.0

    def _MemoryStorage__schedule_expiry(self) -> None:
        now = time.monotonic()
        if now - self._last_sweep >= self.SWEEP_S:
            self._last_sweep = now
            self._MemoryStorage__expire_events()  # type: ignore[attr-defined]


def storage_uri(configured: str) -> str:
    """The storage to use: ours for ``memory://``, else as configured."""
    return "eventsink-memory://" if configured == "memory://" else configured


class RateLimiter:
    """Counts ``/api/`` requests per key (or address) and refuses them past the limit with 429."""

    def __init__(self, settings: ApiSettings) -> None:
        self.items = parse_many(settings.rate_limit)
        try:
            storage = storage_from_string(storage_uri(settings.rate_limit_storage_uri))
        except LimitsConfigurationError as exc:
            raise ConfigurationError(
                f"EVENTSINK_API_RATE_LIMIT_STORAGE_URI={settings.rate_limit_storage_uri!r}: {exc} "
                "(redis:// needs the 'redis' package: pip install redis)"
            ) from exc
        self.strategy = FixedWindowRateLimiter(storage)

    def check(self, bucket: str) -> None:
        """Count a request of ``bucket``; raise a 429 Problem with Retry-After when it is over a limit."""
        for item in self.items:
            if not self.strategy.hit(item, "api", bucket):
                reset_at = self.strategy.get_window_stats(item, "api", bucket).reset_time
                retry = max(1, int(reset_at - time.time() + 0.999))
                raise Problem(429, f"rate limit {item} exceeded", headers={"Retry-After": str(retry)})


def init_limits(app: Flask, settings: ApiSettings) -> RateLimiter | None:
    """Build the limiter of ``app`` (None when rate limiting is off)."""
    if not settings.rate_limit_enabled:
        return None
    limiter = RateLimiter(settings)
    app.extensions["eventsink_limiter"] = limiter
    return limiter
