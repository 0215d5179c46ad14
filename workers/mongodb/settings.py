"""Settings of the mongodb worker: ``EVENTSINK_MONGODB_*`` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from workers.plugin import WorkerSettings


class MongoDBSettings(WorkerSettings):
    """Where the mongodb worker stores events, and how long it waits for the server."""

    model_config = SettingsConfigDict(env_prefix="EVENTSINK_MONGODB_", extra="ignore")

    url: str = Field(
        "mongodb://localhost:27017",
        description="MongoDB connection string; write concern options (w, journal) may be set in it.",
    )
    database: str = Field("eventsink", min_length=1, description="Database the events are stored in.")
    collection: str = Field(
        "events", min_length=1, description="Collection of the events, or prefix of the per-family ones."
    )
    collection_per_family: bool = Field(
        False, description="Store each type family in its own collection: <collection>_<family>."
    )
    server_selection_timeout_ms: int = Field(
        10_000, gt=0, description="How long an operation waits for a usable server before retrying later."
    )
    connect_timeout_ms: int = Field(10_000, gt=0, description="TCP connect timeout to each server.")
    socket_timeout_ms: int = Field(
        60_000, gt=0, description="Longest wait for a server reply; past it the batch is retried later."
    )
