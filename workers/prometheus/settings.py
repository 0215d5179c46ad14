"""Settings of the prometheus worker: ``EVENTSINK_PROMETHEUS_*`` environment variables."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from workers.plugin import LOOPBACK, WorkerSettings

StorageLabel = Literal["source", "region", "space_id"]


def _default_state_dir() -> Path:
    home = os.path.expanduser("~")
    base = os.path.join(home, ".local", "state") if os.access(home, os.W_OK) else tempfile.gettempdir()
    return Path(base) / "eventsink" / "prometheus"


class PrometheusSettings(WorkerSettings):
    """Where the prometheus worker serves its metrics and keeps the state they are rebuilt from."""

    model_config = SettingsConfigDict(env_prefix="EVENTSINK_PROMETHEUS_", extra="ignore")

    port: int = Field(9108, ge=0, le=65535, description="Port Prometheus scrapes (/metrics); 0 picks a free one.")
    address: str = Field(
        LOOPBACK, min_length=1, description="Address the metrics endpoint listens on; 0.0.0.0 to serve other hosts."
    )
    state_dir: Path = Field(
        default_factory=_default_state_dir, description="Folder of the state file (used when STATE_FILE is unset)."
    )
    state_file: Path | None = Field(
        None, description="SQLite file the totals and the processed event ids are kept in."
    )
    dedupe_window_s: float = Field(
        7 * 24 * 3600.0, gt=0, description="How long processed event ids are remembered to ignore redeliveries."
    )
    dedupe_max_ids: int = Field(
        2_000_000, gt=0, description="Most processed event ids remembered; the oldest are forgotten first."
    )
    storage_labels: list[StorageLabel] = Field(
        default_factory=list, description="Labels of the storage metrics: any of source, region, space_id."
    )

    @property
    def state_path(self) -> Path:
        """The state file: ``state_file``, or ``prometheus-state.sqlite3`` in ``state_dir``."""
        return self.state_file if self.state_file is not None else self.state_dir / "prometheus-state.sqlite3"
