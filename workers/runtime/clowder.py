"""Clowder's event-sink messages, recognised and turned into CloudEvents of built-in types.

Clowder (clowder-framework/clowder, ``app/services/EventSinkService.scala``) publishes one flat JSON
object per event to the fanout exchange named by its setting ``eventsink.exchangename`` (default
``clowder.metrics``), with no AMQP properties: ``category``, ``type``, ids (``resource_id``,
``dataset_id``, ``author_id``, ``user_id``), names (``resource_name``, ``dataset_name``, ``author_name``,
``user_name``), ``extractor_name``, ``size``, and ``created`` (epoch milliseconds, added at publish).

:class:`ClowderConverter` maps each (``category``, ``type``) to a built-in type (the table is
:data:`ROWS` and the README's "Connect Clowder" section). Such messages carry no id: the event id is a
UUID version 5 of the message's canonical JSON, so every worker derives the same id from the same
message and a duplicate is stored once. Names are left out unless a worker's ``clowder_keep`` lists them.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from pydantic import ValidationError

from sink_lib.event import Event
from sink_lib.registry import pydantic_errors
from sink_lib.types import BUILTIN_TYPES

from ..errors import ClowderMessageError

SOURCE = "/clowder"
#: Clowder's ``User.anonymous`` id: not a person, so it does not become a ``userid``.
ANONYMOUS_USER_ID = "000000000000000000000000"
#: Namespace of the derived event ids (uuid5 of the canonical JSON of the message).
ID_NAMESPACE = uuid.UUID("6f0c3b1e-5b1a-4c4e-9a57-2f1d0c7e8a11")
_NAMESPACE_BYTES = ID_NAMESPACE.bytes
NAME_KEYS = frozenset({"user_name", "author_name", "resource_name", "dataset_name"})
#: Keys an operator may keep in ``data`` with ``clowder_keep`` (never kept by default).
KEEPABLE = NAME_KEYS | {"author_id"}
MAX_TEXT = 1024
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_MS = (2**63 - 1) // 1_000_000  # the last millisecond an InfluxDB (int64 ns) timestamp can hold

Builder = Callable[["_Message", str], dict[str, Any]]


class _Message:
    """Typed access to the keys of one message; each getter names the key when its value is wrong."""

    def __init__(self, raw: Mapping[str, Any], category: str, kind: str | None) -> None:
        self.raw, self.category, self.kind = raw, category, kind

    def error(self, key: str, message: str) -> ClowderMessageError:
        what = f"{self.category}/{self.kind}" if self.kind else self.category
        return ClowderMessageError([{"field": key, "message": message}], f"clowder {what}")

    def text(self, key: str, *, required: bool = True) -> str | None:
        value = self.raw.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value:
            raise self.error(key, "missing" if value is None else "must be a non-empty string")
        if len(value) > MAX_TEXT:
            raise self.error(key, f"longer than {MAX_TEXT} characters")
        return value

    def size(self) -> int:
        value = self.raw.get("size")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.error("size", "missing" if value is None else "must be a non-negative integer")
        return value


def created_time(value: Any) -> datetime:
    """The time of ``created``: epoch milliseconds (a number), or an ISO 8601 string (no offset: UTC).

    Raises ValueError saying why the value is not a time.
    """
    if isinstance(value, bool) or value is None:
        raise ValueError("missing" if value is None else "must be epoch milliseconds or an ISO 8601 string")
    if isinstance(value, int | float):
        if not math.isfinite(value) or not 0 <= value <= _MAX_MS:
            raise ValueError(f"epoch milliseconds out of range (0 to {_MAX_MS})")
        return _EPOCH + timedelta(milliseconds=value)
    if isinstance(value, str):
        text = value.strip()
        try:
            moment = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "Zz" and text else text)
            moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        except (ValueError, OverflowError):
            raise ValueError(f"not an ISO 8601 time: {value[:64]!r}") from None
        if moment < _EPOCH or moment > _EPOCH + timedelta(milliseconds=_MAX_MS):
            raise ValueError("time out of range (1970 to 2262)")
        return moment
    raise ValueError("must be epoch milliseconds or an ISO 8601 string")


def event_id(raw: Mapping[str, Any]) -> str:
    """The deterministic id of a message: the RFC 4122 version 5 UUID (SHA-1, :data:`ID_NAMESPACE`) of
    its canonical JSON (keys sorted, no spaces, UTF-8), the same as ``uuid.uuid5`` and a third the cost."""
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# -- the mapping table -------------------------------------------------------------------------------


def _uploaded(m: _Message, _kind: str) -> dict[str, Any]:
    data: dict[str, Any] = {"bytes": m.size()}
    dataset_id = m.text("dataset_id", required=False)
    if dataset_id is not None:
        data["dataset_id"] = dataset_id
    return data


def _downloaded(m: _Message, kind: str) -> dict[str, Any]:
    data: dict[str, Any] = {"resource_id": m.text("resource_id"), "resource_type": kind}
    if kind == "file" and "size" in m.raw:  # a dataset's "size" counts its files and folders, not bytes
        data["bytes"] = m.size()
    return data


def _viewed(m: _Message, kind: str) -> dict[str, Any]:
    return {"resource_type": kind, "resource_id": m.text("resource_id")}


def _submitted(m: _Message, kind: str) -> dict[str, Any]:
    # a "selection" is files of one dataset; resource_id is that dataset's id
    resource_type = "dataset" if kind == "selection" else kind
    return {"extractor": m.text("extractor_name"), "resource_type": resource_type, "resource_id": m.text("resource_id")}


def _user(_m: _Message, _kind: str) -> dict[str, Any]:
    return {}


def _file(m: _Message, _kind: str) -> dict[str, Any]:
    return {"file_id": m.text("resource_id"), "bytes": m.size()}


#: (category, Clowder ``type`` or None when absent) -> (built-in type, how its ``data`` is built).
ROWS: dict[tuple[str, str | None], tuple[str, Builder]] = {
    ("upload", None): ("storage.file.uploaded", _uploaded),
    ("upload", "file"): ("storage.file.uploaded", _uploaded),
    ("download", "file"): ("traffic.resource.downloaded", _downloaded),
    ("download", "dataset"): ("traffic.resource.downloaded", _downloaded),
    **{("view_resource", k): ("activity.resource.viewed", _viewed) for k in ("file", "dataset", "collection", "space")},
    **{("extraction", k): ("activity.extractor.submitted", _submitted) for k in ("file", "dataset", "selection")},
    ("user_activity", "signup"): ("activity.user.signed_up", _user),
    ("user_activity", "login"): ("activity.user.logged_in", _user),
    ("archive", "file"): ("storage.file.archived", _file),
    ("unarchive", "file"): ("storage.file.unarchived", _file),
}
CATEGORIES = frozenset(category for category, _ in ROWS)


class ClowderConverter:
    """Recognises Clowder's message shape and converts it; ``keep`` lists keys of :data:`KEEPABLE` to keep."""

    def __init__(self, keep: Iterable[str] = ()) -> None:
        self.keep = frozenset(keep)
        unknown = self.keep - KEEPABLE
        if unknown:
            raise ValueError(f"cannot keep {sorted(unknown)}: only {sorted(KEEPABLE)}")

    @staticmethod
    def recognise(body: bytes | str) -> dict[str, Any] | None:
        """The message as a dict when ``body`` has Clowder's shape (a JSON object with ``category`` and
        no ``specversion``), else None. Never raises."""
        try:
            obj = orjson.loads(body)
        except (orjson.JSONDecodeError, TypeError):
            return None
        if type(obj) is dict and "category" in obj and "specversion" not in obj:
            return obj
        return None

    def convert(self, raw: Mapping[str, Any]) -> Event:
        """The CloudEvent of a recognised message; ClowderMessageError names the key that is wrong."""
        category, kind = raw.get("category"), raw.get("type")
        if not isinstance(category, str) or not (kind is None or isinstance(kind, str)):
            field = "category" if not isinstance(category, str) else "type"
            raise ClowderMessageError([{"field": field, "message": "must be a string"}], "clowder")
        message = _Message(raw, category, kind)
        row = ROWS.get((category, kind))
        if row is None:
            if category not in CATEGORIES:
                raise message.error("category", f"{category[:64]!r} has no mapping (known: {sorted(CATEGORIES)})")
            kinds = sorted(str(k) for c, k in ROWS if c == category)
            raise message.error("type", f"{str(kind)[:64]!r} has no mapping for this category (known: {kinds})")
        type_name, build = row
        try:
            time = created_time(raw.get("created"))
        except ValueError as exc:
            raise message.error("created", str(exc)) from None
        data = build(message, kind or "")
        try:
            BUILTIN_TYPES[type_name].__pydantic_validator__.validate_python(data)
        except ValidationError as exc:
            raise ClowderMessageError(pydantic_errors(exc, "data"), type_name) from None
        for key in sorted(self.keep):
            value = raw.get(key)
            if isinstance(value, str):
                data[key] = value[:MAX_TEXT]
        envelope: dict[str, Any] = {"id": event_id(raw), "source": SOURCE, "type": type_name, "time": time,
                                    "data": data}
        user = raw.get("user_id")
        if user is not None and not isinstance(user, str):
            raise message.error("user_id", "must be a string")
        if user and user != ANONYMOUS_USER_ID:  # "" and the anonymous user are nobody in particular
            if len(user) > 256:
                raise message.error("user_id", "longer than 256 characters")
            envelope["userid"] = user
        try:
            return Event.model_validate(envelope)
        except ValidationError as exc:  # not expected: every part was checked above
            raise ClowderMessageError(pydantic_errors(exc, ""), type_name) from None
