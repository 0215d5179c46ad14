"""Counts events and drops them: the smallest complete plugin, and the template for new ones.

Copy this folder to ``workers/<name>/``, rename the classes and the env prefix, write the destination
call in ``write``, and register the class under ``[project.entry-points."eventsink.workers"]``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from sink_lib.event import Event
from workers.plugin import WorkerPlugin, WorkerSettings

log = logging.getLogger(__name__)


class DiscardSettings(WorkerSettings):
    """Settings of the discard worker (``EVENTSINK_DISCARD_*``)."""

    model_config = SettingsConfigDict(env_prefix="EVENTSINK_DISCARD_", extra="ignore")

    log_every: int = Field(0, ge=0, description="Log a line every N events dropped; 0 never.")


class DiscardWorker(WorkerPlugin):
    """Counts and drops every event (for testing pipelines and measuring the runtime)."""

    name = "discard"
    settings_model = DiscardSettings

    def __init__(self, settings: DiscardSettings) -> None:
        super().__init__(settings)
        self.log_every = settings.log_every
        self.count = 0

    def write(self, batch: Sequence[Event]) -> None:
        """Drop the batch, counting it."""
        before, self.count = self.count, self.count + len(batch)
        if self.log_every and before // self.log_every != self.count // self.log_every:
            log.info("discard: %d events dropped so far", self.count)
