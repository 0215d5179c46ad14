"""The plugin surface: what a worker plugin implements. The runtime does everything else.

A plugin is a class registered under the entry-point group ``eventsink.workers``::

    [project.entry-points."eventsink.workers"]
    discard = "workers.discard:DiscardWorker"

It declares a settings model (pydantic-settings, env prefix ``EVENTSINK_<NAME>_``), opens its
destination, writes batches of parsed events, and closes. Outcomes other than success are signalled
with :class:`~workers.errors.RetryLater` and :class:`~workers.errors.RejectEvents`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from typing import ClassVar

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sink_lib.event import Event

#: Where every metrics endpoint listens unless told otherwise: this host only, like the emergency API.
LOOPBACK = "127.0.0.1"


class WorkerSettings(BaseSettings):
    """Settings every worker has; a plugin's settings model subclasses this with its own env prefix."""

    model_config = SettingsConfigDict(env_prefix="EVENTSINK_WORKER_", extra="ignore")

    batch_size: int = Field(500, gt=0, description="Largest batch handed to write().")
    batch_timeout_s: float = Field(1.0, gt=0, description="Longest wait to fill a batch before writing it.")
    prefetch: int = Field(0, ge=0, description="AMQP prefetch; 0 means 2 x batch_size.")
    metrics_port: int | None = Field(None, ge=0, le=65535, description="Port of the worker's /metrics.")
    metrics_address: str = Field(
        LOOPBACK, min_length=1, description="Address /metrics listens on; 0.0.0.0 (or ::) to serve other hosts."
    )
    types: list[str] | None = Field(None, description="Type patterns (fnmatch) this worker takes; default all.")
    backoff_min_s: float = Field(0.5, gt=0, description="First retry delay while the destination is down.")
    backoff_max_s: float = Field(30.0, gt=0, description="Longest retry delay while the destination is down.")
    privacy_drop: list[str] = Field(
        default_factory=list, description="Fields removed before write (patterns over data keys and userid)."
    )
    privacy_hash: list[str] = Field(
        default_factory=list, description="Fields replaced by HMAC-SHA256(privacy_secret, value) before write."
    )
    privacy_keep: list[str] = Field(
        default_factory=list, description="Fields left as they are even when a drop/hash pattern matches."
    )
    privacy_secret: SecretStr | None = Field(None, description="Key of the privacy hash; required to hash.")
    clowder_keep: list[str] = Field(
        default_factory=list,
        description="Keys of Clowder's messages kept in data (user_name, author_name, resource_name, dataset_name, "
        "author_id); none by default.",
    )

    @field_validator("clowder_keep")
    @classmethod
    def _clowder_keep(cls, value: list[str]) -> list[str]:
        from .runtime.clowder import KEEPABLE

        unknown = sorted(set(value) - KEEPABLE)
        if unknown:
            raise ValueError(f"{', '.join(unknown)} cannot be kept; choose from {', '.join(sorted(KEEPABLE))}")
        return value


class WorkerPlugin:
    """Base class of worker plugins: override ``write``, and ``open``/``close`` when needed.

    ``accepts`` is the default list of type patterns the plugin takes (``None``: every type); the
    ``types`` setting overrides it. Events the plugin does not take are acked and counted, never written.

    Optionally define ``register_metrics(self, registry: CollectorRegistry) -> None`` to add the
    plugin's own metrics to the worker's /metrics; the runtime calls it once, before ``open()`` (see
    workers/README.md, "Plugin metrics").
    """

    name: ClassVar[str] = ""
    settings_model: ClassVar[type[WorkerSettings]] = WorkerSettings
    accepts: ClassVar[Sequence[str] | None] = None

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        patterns = settings.types if settings.types is not None else self.accepts
        self._patterns = None if patterns is None else tuple(patterns)
        from .privacy import PrivacyFilter

        self._privacy = PrivacyFilter.from_settings(settings)

    def takes(self, event: Event) -> bool:
        """True when this worker handles events of ``event.type``."""
        if self._patterns is None:
            return True
        return any(fnmatch.fnmatchcase(event.type, p) for p in self._patterns)

    def deliver(self, batch: Sequence[Event]) -> None:
        """What the runtime calls: apply the privacy rules, then ``write``."""
        if self._privacy is not None:
            batch = [self._privacy.apply(event) for event in batch]
        self.write(batch)

    def open(self) -> None:
        """Connect to the destination; raise RetryLater when it is not reachable yet."""

    def write(self, batch: Sequence[Event]) -> None:
        """Deliver ``batch`` (events with distinct ids) to the destination, idempotently by event id."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the destination's resources; called once, also after a failed open."""
