"""Event types the monitors add to the registry (entry point group ``eventsink.types``).

``health.tcp`` is its own type rather than a ``health.http`` with empty HTTP fields, so dashboards and
sinks never mistake a port check for a web check.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from sink_lib.registry import TypeRegistry, default_registry
from sink_lib.types import EventData


class TcpCheck(EventData):
    """``health.tcp``: one TCP connect to host:port."""

    target: str = Field(min_length=1, max_length=1024)
    ok: bool
    error: str | None = Field(None, max_length=2048)
    dns_ms: float = Field(ge=0)
    connect_ms: float = Field(ge=0)


TYPES: dict[str, type[BaseModel]] = {"health.tcp": TcpCheck}


def monitor_registry() -> TypeRegistry:
    """The default registry, with the monitors' types even when the entry point is not installed."""
    registry = default_registry()
    for name, model in TYPES.items():
        if name not in registry:
            registry.register(name, model)
    return registry
