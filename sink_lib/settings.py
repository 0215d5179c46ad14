"""Settings shared by every component, read from ``EVENTSINK_*`` environment variables.

Settings are built at the edge (CLI, ``create_app``, worker main, or the application that creates an
``EventSink``) and passed in; no other module reads the environment.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigurationError
from .nodes import split_amqp_urls

ENV_PREFIX = "EVENTSINK_"
_S = TypeVar("_S", bound=BaseSettings)


def _default_spool_dir() -> Path:
    home = os.path.expanduser("~")
    base = os.path.join(home, ".local", "state") if os.access(home, os.W_OK) else tempfile.gettempdir()
    return Path(base) / "eventsink" / "spool"


class SinkSettings(BaseSettings):
    """How sink_lib reaches RabbitMQ, where it spools, and its limits and policies."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", validate_default=True)

    amqp_url: str = Field(
        "amqp://guest:guest@localhost:5672/%2F",
        description="RabbitMQ URL (pika URLParameters syntax), or a comma-separated list of the URLs of a "
        "cluster's nodes: clients use one and fail over to the others.",
    )
    amqp_shuffle: bool = Field(
        True, description="Shuffle the URL list per client, so clients spread over a cluster's nodes."
    )
    quorum_group_size: int | None = Field(
        None, ge=1, description="Replicas of new quorum queues; default 3 when 3+ URLs are given, else all nodes."
    )
    exchange: str = Field("events", min_length=1, description="Name of the fanout exchange events go to.")
    source: str = Field("/eventsink", min_length=1, description="Default CloudEvents `source` of emitted events.")
    spool_dir: Path = Field(
        default_factory=_default_spool_dir, description="Folder of the SQLite spool used while RabbitMQ is away."
    )
    spool_max_bytes: int = Field(
        1 << 30, gt=0, description="Spool size limit; past it emit() raises SpoolFullError when it must spool."
    )
    strict_types: bool = Field(False, description="Refuse event types the registry does not know.")
    max_event_bytes: int = Field(1 << 20, gt=0, description="Largest serialised event accepted, in bytes.")
    max_queue: int = Field(
        100_000, gt=0, description="In-memory queue length; past it events go to the spool (full_policy)."
    )
    full_policy: Literal["spool", "block", "raise"] = Field(
        "spool", description="What emit() does when the in-memory queue is full."
    )
    block_timeout_s: float = Field(5.0, ge=0, description="How long emit() may wait with full_policy=block.")
    confirm_window: int = Field(1000, gt=0, description="Publisher confirms outstanding at once.")
    exit_timeout_s: float = Field(5.0, ge=0, description="How long interpreter exit waits for unsent events.")
    reconnect_min_s: float = Field(0.2, gt=0, description="First reconnect delay; doubles up to reconnect_max_s.")
    reconnect_max_s: float = Field(10.0, gt=0, description="Longest delay between reconnect attempts.")
    heartbeat_s: int = Field(30, ge=0, description="AMQP heartbeat interval.")
    queue_type: Literal["quorum", "classic"] = Field("quorum", description="Type of the per-worker queues.")
    delivery_limit: int = Field(5, gt=0, description="Quorum delivery limit before a message is dead-lettered.")
    api_keys_file: Path | None = Field(None, description="Keys file of the emergency API.")
    management_url: str | None = Field(
        None,
        description="RabbitMQ management API (http://user:password@host:15672), read by `eventsink status` to "
        "list other queues bound to the exchange; default: the first AMQP host, port 15672, same credentials.",
    )

    @field_validator("amqp_url")
    @classmethod
    def _amqp_urls(cls, value: str) -> str:
        return ",".join(split_amqp_urls(value))

    @field_validator("exchange")
    @classmethod
    def _exchange_name(cls, value: str) -> str:
        if value.startswith("amq."):
            raise ValueError("names starting with 'amq.' are reserved by RabbitMQ")
        return value

    @classmethod
    def load(cls, **overrides: Any) -> SinkSettings:
        """Read the environment and raise ConfigurationError naming the bad variable."""
        return build_settings(cls, **overrides)


def build_settings(model: type[_S], **overrides: Any) -> _S:
    """Instantiate a settings model, turning pydantic errors into a ConfigurationError.

    The message names the environment variable (``EVENTSINK_...``) and the reason, so a bad deployment
    fails at start with an error an operator can act on.
    """
    try:
        return model(**overrides)
    except ValidationError as exc:
        prefix = str(model.model_config.get("env_prefix", ENV_PREFIX))
        parts = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"])
            # errors of a model-level validator have no field: their message names the variables
            parts.append(f"{prefix}{name.upper()}: {err['msg']}" if name else str(err["msg"]))
        raise ConfigurationError("invalid configuration: " + "; ".join(parts)) from exc
