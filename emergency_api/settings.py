"""Settings of the emergency API, read from ``EVENTSINK_API_*`` environment variables.

Built at the edge (``eventsink api``, ``eventsink keys``, ``create_app``) and passed in. The keys file
is ``EVENTSINK_API_KEYS_FILE`` (docs/architecture.md, "Configuration").
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sink_lib.settings import build_settings

API_ENV_PREFIX = "EVENTSINK_API_"


def _default_keys_file() -> Path:
    return Path("~/.config/eventsink/api_keys.json").expanduser()


class ApiSettings(BaseSettings):
    """Limits, auth and serving options of the emergency API."""

    model_config = SettingsConfigDict(env_prefix=API_ENV_PREFIX, extra="ignore", validate_default=True)

    keys_file: Path = Field(
        default_factory=_default_keys_file,
        description="JSON file of hashed API keys (EVENTSINK_API_KEYS_FILE); reloaded when it changes.",
    )
    max_body_bytes: int = Field(
        4 << 20, gt=0, description="Largest request body in bytes; larger bodies get 413."
    )
    max_batch: int = Field(
        1000, gt=0, description="Most events in one POST /api/v1/events."
    )
    max_lines: int = Field(
        5000, gt=0, description="Most lines in one POST /api/v1/write (Telegraf sends 1000 by default)."
    )
    max_time_past_s: int = Field(
        30 * 86400, gt=0,
        description="Oldest event time accepted, in seconds before now (default 30 days); older gets 422.",
    )
    max_time_future_s: int = Field(
        600, gt=0,
        description="Latest event time accepted, in seconds after now (clock skew; default 10 min); later gets 422.",
    )
    max_line_length: int = Field(
        64 * 1024, gt=0, description="Longest line of line protocol in characters; longer lines are refused."
    )
    publish_timeout_s: float = Field(
        10.0, gt=0, description="How long a request waits for its events to be confirmed or spooled."
    )
    accept_on: Literal["confirm", "spool"] = Field(
        "confirm",
        description="What a 2xx waits for: every event broker-confirmed (confirm), or every event fsync'd "
                    "in the local spool, group-committed with concurrent requests, then published from there "
                    "(spool).",
    )
    retry_after_s: int = Field(
        5, ge=1, description="Retry-After seconds sent with 503 when events could not be accepted."
    )
    rate_limit: str = Field(
        "600/minute", description="Per-key request limit (Flask-Limiter syntax, ';' separates several)."
    )
    rate_limit_storage_uri: str = Field(
        "memory://", description="Where rate-limit counters live: memory:// (per process) or redis://..."
    )
    rate_limit_enabled: bool = Field(True, description="Turn per-key rate limiting on or off.")
    bind: str = Field("127.0.0.1:8000", description="HOST:PORT gunicorn listens on.")
    workers: int = Field(2, gt=0, description="gunicorn worker processes.")
    worker_class: str = Field(
        "eventsink",
        description="gunicorn worker class: eventsink (an event loop per worker, emergency_api/loopworker.py), "
                    "gthread, sync, or any class gunicorn accepts.",
    )
    threads: int = Field(16, gt=0, description="Threads per gunicorn worker (gthread; eventsink: for the routes "
                                               "served through WSGI).")
    max_buffered_body_bytes: int = Field(
        64 * 1024 * 1024, gt=0, description="eventsink worker class: request bodies one worker holds at once "
                                            "(read or being read, until answered); more wait before being read.",
    )
    request_read_timeout_s: float = Field(
        30.0, gt=0, description="eventsink worker class: seconds a request's head and body may take to arrive "
                                "(408 after that).",
    )
    swagger: bool = Field(True, description="Serve the OpenAPI spec at /apispec.json.")
    swagger_ui: bool = Field(
        False,
        description="Serve the Swagger UI at /apidocs/ (development: the bundled swagger-ui reads ?url=, so the "
                    "page is sent with a policy that lets it fetch from the API's own origin only).",
    )

    @field_validator("rate_limit")
    @classmethod
    def _rate_limit_syntax(cls, value: str) -> str:
        from limits import parse_many

        try:
            parse_many(value)
        except ValueError as exc:
            raise ValueError(f"not a rate limit such as '600/minute': {exc}") from None
        return value

    @classmethod
    def load(cls, **overrides: object) -> ApiSettings:
        """Read the environment and raise ConfigurationError naming the bad variable."""
        return build_settings(cls, **overrides)
