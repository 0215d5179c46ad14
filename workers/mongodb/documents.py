"""How an event becomes a MongoDB document, and which collection it goes to."""

from __future__ import annotations

from typing import Any

from sink_lib.event import Event

from .settings import MongoDBSettings

# Core attributes that are constant on the wire or stored under another name.
_SKIPPED = frozenset({"id", "specversion", "datacontenttype"})


def to_document(event: Event) -> dict[str, Any]:
    """The stored document: ``_id`` = event id, ``time`` as a UTC datetime, plus ``family``.

    Optional attributes that are absent (subject, userid, region) are left out rather than stored as
    null; extension attributes are kept under their own names.
    """
    document: dict[str, Any] = {"_id": event.id}
    for name, value in event.model_dump(exclude_none=True).items():
        if name not in _SKIPPED:
            document[name] = value
    document["family"] = event.family
    return document


def collection_name(event: Event, settings: MongoDBSettings) -> str:
    """``<collection>`` or, with ``collection_per_family``, ``<collection>_<family>``."""
    if settings.collection_per_family:
        return f"{settings.collection}_{event.family}"
    return settings.collection
