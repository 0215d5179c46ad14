"""Pydantic models for the ``data`` of the built-in event types (see DESIGN.md).

Validation is strict: ``"10"`` is not an integer, and fields a type does not define are refused, so a
typo (``byte`` for ``bytes``) is an error in the caller instead of a silent loss downstream.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

NonEmpty = Field(min_length=1, max_length=1024)


class EventData(BaseModel):
    """Base of every built-in ``data`` model: strict, no undeclared fields."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class FileStored(EventData):
    """``storage.file.deleted`` / ``storage.file.archived`` / ``storage.file.unarchived``: one file and its size."""

    file_id: str = NonEmpty
    dataset_id: str | None = None
    space_id: str | None = None
    bytes: int = Field(ge=0)


class FileUploaded(FileStored):
    """``storage.file.uploaded``: like :class:`FileStored`, but ``file_id`` may be absent.

    Some producers announce an upload before the file has an id of its own (Clowder's upload events
    name the dataset and the size, not the file).
    """

    file_id: str | None = Field(None, min_length=1, max_length=1024)  # type: ignore[assignment]


class Extraction(EventData):
    """``extraction.*``: an extractor's run on a file or dataset."""

    extractor: str = NonEmpty
    file_id: str | None = None
    dataset_id: str | None = None
    message: str | None = Field(None, max_length=8192)
    duration_s: float | None = Field(None, ge=0)


class PageViewed(EventData):
    """``traffic.page.viewed``: a page of the application was shown."""

    url: str = NonEmpty
    resource_id: str | None = None
    resource_type: str | None = None


class ResourceDownloaded(EventData):
    """``traffic.resource.downloaded``: a file or dataset was downloaded."""

    resource_id: str = NonEmpty
    resource_type: str | None = None
    bytes: int | None = Field(None, ge=0)


ResourceType = Literal["file", "dataset", "collection", "space"]


class ResourceViewed(EventData):
    """``activity.resource.viewed``: a user looked at a resource."""

    resource_type: ResourceType
    resource_id: str = NonEmpty


class ExtractorSubmitted(EventData):
    """``activity.extractor.submitted``: a user sent a resource to an extractor."""

    extractor: str = NonEmpty
    resource_type: ResourceType
    resource_id: str = NonEmpty


class UserActivity(EventData):
    """``activity.user.signed_up`` / ``activity.user.logged_in``: the user is the event's ``userid``.

    ``data`` is an empty object: who signed up or logged in is the envelope's ``userid`` extension,
    so privacy rules for user ids apply to it like to every other event.
    """


class ApiCalled(EventData):
    """``traffic.api.called``: one request handled by the host application."""

    method: str = Field(min_length=1, max_length=16)
    route: str = NonEmpty
    status: int = Field(ge=100, le=599)
    duration_ms: float = Field(ge=0)


class Ping(EventData):
    """``health.ping``: ICMP echo round-trip times and loss to a target."""

    target: str = NonEmpty
    rtt_min_ms: float | None = Field(None, ge=0)
    rtt_avg_ms: float | None = Field(None, ge=0)
    rtt_max_ms: float | None = Field(None, ge=0)
    loss_pct: float = Field(ge=0, le=100)
    ok: bool


class HttpCheck(EventData):
    """``health.http``: one HTTP probe with its time split into phases."""

    url: str = NonEmpty
    ok: bool
    status: int | None = Field(None, ge=100, le=599)
    error: str | None = Field(None, max_length=2048)
    dns_ms: float = Field(ge=0)
    connect_ms: float = Field(ge=0)
    tls_ms: float = Field(ge=0)
    ttfb_ms: float = Field(ge=0)
    total_ms: float = Field(ge=0)
    bytes: int = Field(ge=0)
    cert_expires_in_days: float | None = None


class ServiceStatus(EventData):
    """``health.status``: the state of a service as a monitor sees it."""

    service: str = NonEmpty
    state: Literal["up", "down", "degraded", "maintenance"]
    message: str | None = Field(None, max_length=2048)


class Connections(EventData):
    """``health.connections``: requests and distinct client connections over a window."""

    service: str = NonEmpty
    active: int = Field(ge=0)
    requests: int = Field(ge=0)
    window_s: float = Field(gt=0)


BUILTIN_TYPES: dict[str, type[EventData]] = {
    "storage.file.uploaded": FileUploaded,
    "storage.file.deleted": FileStored,
    "storage.file.archived": FileStored,
    "storage.file.unarchived": FileStored,
    "extraction.queued": Extraction,
    "extraction.started": Extraction,
    "extraction.finished": Extraction,
    "extraction.failed": Extraction,
    "traffic.page.viewed": PageViewed,
    "traffic.resource.downloaded": ResourceDownloaded,
    "activity.resource.viewed": ResourceViewed,
    "activity.extractor.submitted": ExtractorSubmitted,
    "activity.user.signed_up": UserActivity,
    "activity.user.logged_in": UserActivity,
    "traffic.api.called": ApiCalled,
    "health.ping": Ping,
    "health.http": HttpCheck,
    "health.status": ServiceStatus,
    "health.connections": Connections,
}
