"""Settings of the influxdb worker: ``EVENTSINK_INFLUXDB_*`` environment variables."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from sink_lib.errors import ConfigurationError
from workers.plugin import WorkerSettings

from .mapping import TypeRule


class InfluxDBSettings(WorkerSettings):
    """Where and how the influxdb worker writes. Defaults fit a local InfluxDB 1.x out of the box."""

    model_config = SettingsConfigDict(env_prefix="EVENTSINK_INFLUXDB_", extra="ignore")

    batch_size: int = Field(5000, gt=0, description="Points per write request (InfluxDB advises 5,000).")
    url: str = Field("http://127.0.0.1:8086", description="Base URL of the InfluxDB HTTP API.")
    api_version: int = Field(1, ge=1, le=2, description="1: /write (1.x); 2: /api/v2/write (2.x, 1.8+).")
    database: str = Field("eventsink", min_length=1, description="1.x database (created at start if missing).")
    retention_policy: str | None = Field(None, description="1.x retention policy; default: the database's.")
    username: str | None = Field(None, description="1.x user (HTTP basic auth).")
    password: SecretStr | None = Field(None, description="1.x password.")
    org: str | None = Field(None, description="2.x organisation (required with api_version 2; `-` for 1.8).")
    bucket: str | None = Field(None, description="2.x bucket (required with api_version 2).")
    token: SecretStr | None = Field(None, description="2.x API token (required with api_version 2).")
    create_database: bool = Field(True, description="1.x: CREATE DATABASE at start when permitted.")
    timeout_s: float = Field(10.0, gt=0, description="HTTP timeout of one write request.")
    gzip: bool = Field(False, description="Compress write bodies (saves bandwidth, costs CPU).")
    mapping_file: Path | None = Field(None, description="JSON or TOML file of per-type mapping rules.")
    mapping: dict[str, TypeRule] = Field(
        default_factory=dict, description="Per-type mapping rules as JSON; applied over mapping_file."
    )
    store_userid: bool = Field(False, description="Store the event's userid as field `userid` (never a tag).")
    id_digits: int = Field(
        6, ge=0, le=9, description="Last decimal digits of the ns timestamp taken from a hash of the event id."
    )
    id_shards: int = Field(
        0, ge=0, le=1000, description="Values of tag `id_shard` (from a hash of the id); 0: no such tag."
    )
    max_string_length: int = Field(1024, ge=0, description="String fields are cut to this many characters.")

    @model_validator(mode="after")
    def _v2_needs_bucket_and_token(self) -> InfluxDBSettings:
        if self.api_version == 2:
            missing = [n for n in ("org", "bucket", "token") if getattr(self, n) is None]
            if missing:
                names = ", ".join(f"EVENTSINK_INFLUXDB_{n.upper()}" for n in missing)
                raise ValueError(f"api_version 2 needs {names}")
        return self

    def rules(self) -> dict[str, TypeRule]:
        """The mapping rules: those of ``mapping_file``, then those of ``mapping`` over them."""
        rules: dict[str, TypeRule] = {}
        if self.mapping_file is not None:
            rules.update(load_rules(self.mapping_file))
        rules.update(self.mapping)
        return rules


def load_rules(path: Path) -> dict[str, TypeRule]:
    """Read a mapping file: ``{"types": {"<type or pattern>": {rule}}}`` in JSON, or ``[types."..."]`` TOML."""
    try:
        text = path.read_text(encoding="utf-8")
        raw = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        types = raw.get("types", {})
        if not isinstance(types, dict):
            raise ValueError("'types' must be a table/object")
        return {name: TypeRule.model_validate(rule) for name, rule in types.items()}
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"EVENTSINK_INFLUXDB_MAPPING_FILE {path}: {exc}") from exc
