"""The monitor's configuration: a TOML file validated with pydantic, plus ``EVENTSINK_MONITOR_*`` settings.

:func:`load_config` reads the file and raises :class:`MonitorConfigError` whose problems name each bad
key the way it appears in the file (``targets[2].url: ...``). The API key comes from ``api_key`` in the
file, from the file named by ``api_key_file``, or from ``EVENTSINK_MONITOR_API_KEY`` (which wins, so a
deployment can keep the secret out of the file).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import MonitorConfigError
from .targets import HttpTarget, NginxLogTarget, PingTarget, TcpTarget, check_http_url

Target = Annotated[HttpTarget | PingTarget | TcpTarget | NginxLogTarget, Field(discriminator="kind")]
KINDS = ("http", "ping", "tcp", "nginx_log")


class MonitorSettings(BaseSettings):
    """Environment settings of the monitor process (built by the CLI and passed to :func:`load_config`)."""

    model_config = SettingsConfigDict(env_prefix="EVENTSINK_MONITOR_", extra="ignore")

    api_key: SecretStr | None = Field(None, description="Key for the emergency API; overrides the file's.")


def _default_spool_dir() -> Path:
    return Path.home() / ".local" / "state" / "eventsink" / "monitor"


class MonitorConfig(BaseModel):
    """One region's monitor: where to report, how, and what to probe."""

    model_config = ConfigDict(extra="forbid")

    region: str = Field(min_length=1, max_length=64, description="Region name carried by every event.")
    api_url: str = Field("http://127.0.0.1:8000", description="Base URL of the emergency API.")
    api_key: SecretStr | None = Field(None, description="API key (or api_key_file, or EVENTSINK_MONITOR_API_KEY).")
    api_key_file: Path | None = Field(None, description="File whose first line is the API key.")
    api_timeout_s: float = Field(5.0, gt=0, description="Timeout of one POST to the API.")
    source: str | None = Field(None, description="CloudEvents source; default /monitor/<region>.")
    spool_dir: Path = Field(default_factory=_default_spool_dir, description="Folder of the durable spool.")
    spool_max_bytes: int = Field(64 << 20, gt=0, description="Spool size limit; past it new events are dropped.")
    rejected_file: Path | None = Field(
        None, description="JSON-lines file of events the API refused for good; default <spool_dir>/rejected.jsonl."
    )
    queue_size: int = Field(10_000, gt=0, description="Events held in memory before the spool write.")
    batch_size: int = Field(100, gt=0, le=1000, description="Events per POST.")
    flush_interval_s: float = Field(1.0, gt=0, description="Longest wait before queued events are sent.")
    retry_max_s: float = Field(60.0, gt=0, description="Longest pause between attempts while the API is away.")
    heartbeat_s: float = Field(60.0, gt=0, description="Period of health.status heartbeats per target.")
    max_concurrency: int = Field(64, gt=0, le=1024, description="Probes running at the same time at most.")
    jitter_s: float = Field(1.0, ge=0, description="Random delay (0..jitter_s) added to each scheduled probe.")
    shutdown_timeout_s: float = Field(5.0, ge=0, description="How long SIGTERM waits to send what is queued.")
    targets: list[Target] = Field(min_length=1)

    @field_validator("api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return check_http_url(value).rstrip("/")

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", value):
            raise ValueError("letters, digits, '.', '_' and '-' only, e.g. 'us-east'")
        return value

    @model_validator(mode="after")
    def _unique_names(self) -> MonitorConfig:
        seen: dict[str, int] = {}
        for index, target in enumerate(self.targets):
            if target.name in seen:
                first = seen[target.name]
                raise ValueError(f"targets[{index}].name: {target.name!r} is already used by targets[{first}]")
            seen[target.name] = index
        return self

    @property
    def event_source(self) -> str:
        """The CloudEvents source of this monitor's events."""
        return self.source or f"/monitor/{self.region}"

    @property
    def rejected_path(self) -> Path:
        """Where refused events are written."""
        return self.rejected_file or self.spool_dir / "rejected.jsonl"

    def key(self) -> str | None:
        """The API key, or None when none is configured."""
        return self.api_key.get_secret_value() if self.api_key else None


def load_config(path: Path | str, settings: MonitorSettings | None = None) -> MonitorConfig:
    """Read and validate a TOML file; raise MonitorConfigError naming each bad key."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MonitorConfigError([f"cannot read the file: {exc.strerror or exc}"], str(path)) from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise MonitorConfigError([f"not valid TOML: {exc}"], str(path)) from exc
    return parse_config(raw, settings, base_dir=path.parent, source=str(path))


def parse_config(
    raw: dict[str, Any], settings: MonitorSettings | None = None, *, base_dir: Path | None = None, source: str = ""
) -> MonitorConfig:
    """Validate an already parsed mapping (relative paths resolve against ``base_dir``)."""
    try:
        config = MonitorConfig.model_validate(raw)
    except ValidationError as exc:
        raise MonitorConfigError(format_errors(exc), source) from None
    base = base_dir or Path.cwd()
    updates: dict[str, Any] = {"spool_dir": base / config.spool_dir}
    if config.rejected_file is not None:
        updates["rejected_file"] = base / config.rejected_file
    updates["targets"] = [_resolve_paths(target, base) for target in config.targets]
    if settings is not None and settings.api_key is not None:
        updates["api_key"] = settings.api_key
    elif config.api_key is None and config.api_key_file is not None:
        key_path = base / config.api_key_file
        try:
            lines = key_path.read_text(encoding="utf-8").strip().splitlines()
        except OSError as exc:
            raise MonitorConfigError([f"api_key_file: cannot read {key_path}: {exc.strerror or exc}"], source) from exc
        if not lines or not lines[0].strip():
            raise MonitorConfigError([f"api_key_file: {key_path} is empty"], source)
        updates["api_key"] = SecretStr(lines[0].strip())
    return config.model_copy(update=updates)


def _resolve_paths(target: Any, base: Path) -> Any:
    paths = {}
    for attr in ("ca_file", "path"):
        value = getattr(target, attr, None)
        if isinstance(value, Path):
            paths[attr] = base / value
    return target.model_copy(update=paths) if paths else target


def format_errors(exc: ValidationError) -> list[str]:
    """``targets[2].url: reason`` strings from a pydantic error (the kind tag left out of paths)."""
    out = []
    for err in exc.errors(include_url=False):
        loc = list(err["loc"])
        # the discriminated union adds the kind as a path element after the list index
        if len(loc) >= 3 and loc[0] == "targets" and isinstance(loc[1], int) and loc[2] in KINDS:
            del loc[2]
        path = ""
        for part in loc:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "union_tag_not_found":
            path, message = f"{path}.kind", f"missing; one of {', '.join(KINDS)}"
        elif err["type"] == "union_tag_invalid":
            path, message = f"{path}.kind", f"{err['input'].get('kind')!r} is not one of {', '.join(KINDS)}"
        elif err["type"] == "extra_forbidden":
            message = "unknown key"
        elif err["type"] == "missing":
            message = "required key missing"
        if not path and message.startswith("targets["):
            path, _, message = message.partition(": ")
        out.append(f"{path or '(top level)'}: {message}")
    return out
