"""Target models: one per probe kind, with the keys a ``[[targets]]`` table may carry."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator


def check_http_url(value: str) -> str:
    """``value`` when it is an http(s) URL with a host and a valid port; ValueError says why not."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    return value

class TargetBase(BaseModel):
    """Keys every target has: name, schedule, and how results become up/down/degraded."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=256, description="Service name in health.status events.")
    interval_s: float = Field(30.0, gt=0, description="Seconds between probes.")
    timeout_s: float = Field(10.0, gt=0, description="A probe taking longer fails.")
    down_after: int = Field(3, ge=1, description="Consecutive failures before the state becomes 'down'.")
    degraded_ms: float | None = Field(None, gt=0, description="Latency above which a success is 'degraded'.")


class HttpTarget(TargetBase):
    """An HTTP(S) URL probed with GET or HEAD, its time split into phases."""

    kind: Literal["http"]
    url: str
    method: Literal["GET", "HEAD"] = "GET"
    expect_status: list[int] | None = Field(
        None, description="Accepted status codes; default any 2xx or 3xx."
    )
    body_pattern: str | None = Field(None, description="Regular expression the body must match.")
    follow_redirects: bool = False
    max_redirects: int = Field(5, ge=0, le=20)
    tls_verify: bool = True
    ca_file: Path | None = Field(None, description="CA bundle (PEM) to trust instead of the system's.")
    headers: dict[str, str] = Field(default_factory=dict)
    max_body_bytes: int = Field(1 << 20, gt=0, description="Body bytes kept for body_pattern; the rest is counted.")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_http_url(value)

    @field_validator("body_pattern")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
        return value

    @field_validator("expect_status")
    @classmethod
    def _statuses(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and (not value or any(not 100 <= s <= 599 for s in value)):
            raise ValueError("a non-empty list of status codes between 100 and 599")
        return value


class PingTarget(TargetBase):
    """A host probed with ICMP echo requests."""

    kind: Literal["ping"]
    host: str = Field(min_length=1, max_length=255)
    count: int = Field(3, ge=1, le=100, description="Echo requests per probe.")
    spacing_s: float = Field(0.2, ge=0.01, description="Pause between echo requests.")
    max_loss_pct: float = Field(50.0, ge=0, lt=100, description="The probe fails above this loss.")


class TcpTarget(TargetBase):
    """A host:port probed by opening a TCP connection."""

    kind: Literal["tcp"]
    host: str = Field(min_length=1, max_length=255)
    port: int = Field(ge=1, le=65535)


class NginxLogTarget(TargetBase):
    """An nginx access log read incrementally; each interval is one window of health.connections."""

    kind: Literal["nginx_log"]
    path: Path
    pattern: str = Field(
        r"^(?P<client>\S+) ",
        description="Regex with a 'client' group (and optionally 'connection', e.g. from $connection).",
    )

    @field_validator("pattern")
    @classmethod
    def _groups(cls, value: str) -> str:
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        if "client" not in compiled.groupindex and "connection" not in compiled.groupindex:
            raise ValueError("needs a named group 'client' or 'connection'")
        return value
