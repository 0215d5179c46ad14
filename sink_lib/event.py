"""The CloudEvents 1.0 envelope (structured JSON mode) used on the wire.

Two ways in: :func:`build_envelope` is the fast path ``emit`` uses (a plain dict, validated by the
registry); :class:`Event` is the pydantic model consumers and the API use to parse and check a body.
"""

from __future__ import annotations

import json
import math
import os
import re
import time as _time
from collections import deque
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from pydantic import ValidationError as PydanticValidationError

from .errors import EventValidationError
from .registry import TYPE_PATTERN, pydantic_errors

SPECVERSION: Literal["1.0"] = "1.0"
DATACONTENTTYPE: Literal["application/json"] = "application/json"
CONTENT_TYPE = "application/cloudevents+json"
EXTENSION_NAME = re.compile(r"^[a-z0-9]{1,20}$")
CORE_ATTRIBUTES = frozenset(
    {"specversion", "id", "source", "type", "time", "datacontenttype", "subject", "data", "dataschema"}
)


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds and a ``Z``, as every event carries it."""
    if moment.tzinfo is None:
        raise ValueError("time must be timezone-aware")
    # not strftime: its %Y writes year 999 as "999", and RFC 3339 needs four digits
    m = moment.astimezone(UTC)
    return (f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}"
            f".{m.microsecond:06d}Z")


_second: list[Any] = [-1, ""]


def now_rfc3339() -> str:
    """The current time as :func:`format_time` writes it (the seconds prefix is cached: emit's hot path)."""
    now = _time.time()
    sec = int(now)
    if sec != _second[0]:
        _second[1] = _time.strftime("%Y-%m-%dT%H:%M:%S", _time.gmtime(sec))
        _second[0] = sec
    return f"{_second[1]}.{int((now - sec) * 1e6):06d}Z"


_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))  # version and variant bits
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)  # version 4, RFC 4122 variant


# Random bits for ids are read from the OS 256 ids at a time: one getrandom() per id was a syscall per
# event, and every syscall releases the GIL to the other threads of a busy API worker. A deque pops
# atomically, so two threads never get the same chunk; a forked child drops what it inherited, so it
# never hands out the bytes its parent still holds.
_ID_CHUNKS_PER_READ = 256
_id_chunks: deque[int] = deque()


def _refill_ids() -> None:
    raw = os.urandom(16 * _ID_CHUNKS_PER_READ)
    _id_chunks.extend(int.from_bytes(raw[i:i + 16]) for i in range(0, len(raw), 16))


os.register_at_fork(after_in_child=_id_chunks.clear)


def new_id() -> str:
    """A random (version 4) UUID string from the operating system's cryptographic source.

    The same bits ``uuid.uuid4()`` draws (``os.urandom``), read in blocks and formatted without
    building a UUID object. Never from the ``random`` module: its state is predictable from a few
    outputs and can be copied into forked children, and ids are what destinations deduplicate on.
    """
    while True:
        try:
            n = _id_chunks.popleft()
            break
        except IndexError:
            _refill_ids()
    n = n & _UUID4_CLEAR | _UUID4_SET
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def parse_time(value: str) -> datetime:
    """Parse an RFC 3339 timestamp (``Z`` or an offset required) into an aware UTC datetime."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("time needs a UTC offset or 'Z' (RFC 3339)")
    return moment.astimezone(UTC)


def build_envelope(
    type: str,
    data: dict[str, Any],
    *,
    source: str,
    id: str | None = None,
    time: datetime | str | None = None,
    subject: str | None = None,
    userid: str | None = None,
    region: str | None = None,
) -> dict[str, Any]:
    """Assemble the envelope dict of a new event; ``id`` and ``time`` default to new ones."""
    if time is None:
        stamp = now_rfc3339()
    elif isinstance(time, datetime):
        stamp = format_time(time)
    else:
        try:
            stamp = format_time(parse_time(time))
        except (ValueError, TypeError) as exc:
            raise EventValidationError.single("time", f"not an RFC 3339 timestamp: {exc}", type) from None
    envelope: dict[str, Any] = {
        "specversion": SPECVERSION,
        "id": id or new_id(),
        "source": source,
        "type": type,
        "time": stamp,
        "datacontenttype": DATACONTENTTYPE,
    }
    if subject is not None:
        envelope["subject"] = subject
    envelope["data"] = data
    if userid is not None:
        envelope["userid"] = userid
    if region is not None:
        envelope["region"] = region
    return envelope


_encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
# orjson is several times faster; passthrough options make it refuse what the stdlib refuses.
_ORJSON_OPTIONS = (
    orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def _dumps(envelope: dict[str, Any]) -> bytes:
    if _has_nonfinite(envelope["data"]):  # orjson would write NaN/Infinity as null
        raise ValueError("non-finite float")
    # orjson's result keeps the over-allocated buffer it was written in (4 KiB behind a 1 KiB event);
    # an exact-size copy costs a fraction of a microsecond and a third of the memory of a full queue
    return bytes(memoryview(orjson.dumps(envelope, option=_ORJSON_OPTIONS)))


def _has_nonfinite(value: Any) -> bool:
    for item in value.values() if type(value) is dict else value:
        kind = type(item)
        if kind is float:
            if item - item != 0:
                return True
        elif (kind is dict or kind is list or kind is tuple) and _has_nonfinite(item):
            return True
    return False


def encode(envelope: dict[str, Any], max_bytes: int) -> bytes:
    """Serialise an envelope to UTF-8 JSON, naming the field that cannot be and refusing oversize events."""
    try:
        body = _dumps(envelope)
    except (TypeError, ValueError):
        field, reason = _find_unserialisable(envelope, "")
        raise EventValidationError.single(field or "data", reason or "not JSON-serialisable",
                                          envelope.get("type")) from None
    if len(body) > max_bytes:
        raise EventValidationError.single(
            "data", f"event is {len(body)} bytes serialised; the limit is {max_bytes}", envelope.get("type")
        )
    return body


def _find_unserialisable(value: Any, path: str) -> tuple[str, str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return path or "data", f"key {key!r} is not a string"
            found = _find_unserialisable(item, f"{path}.{key}" if path else key)
            if found[0]:
                return found
        return "", ""
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _find_unserialisable(item, f"{path}[{index}]")
            if found[0]:
                return found
        return "", ""
    if isinstance(value, float) and not math.isfinite(value):
        return path, f"{value} is not a JSON number"
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        return path, "integer out of the 64-bit range JSON consumers accept"
    if value is None or isinstance(value, str | int | float | bool):
        return "", ""
    return path, f"value of type {type(value).__name__} is not JSON-serialisable"


class Event(BaseModel):
    """A CloudEvents 1.0 event as it travels through RabbitMQ.

    Extension attributes other than ``userid`` and ``region`` are kept when their names follow the
    CloudEvents rule (lowercase letters and digits, at most 20) and their values are scalars.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"] = SPECVERSION
    id: str = Field(min_length=1, max_length=256)
    source: str = Field(min_length=1, max_length=1024)
    type: str = Field(min_length=3, max_length=128, pattern=TYPE_PATTERN.pattern)
    time: AwareDatetime = Field(strict=True)  # strict: RFC 3339 strings only, never numbers
    datacontenttype: Literal["application/json"] = DATACONTENTTYPE
    subject: str | None = Field(None, max_length=1024)
    data: dict[str, Any]
    userid: str | None = Field(None, max_length=256)
    region: str | None = Field(None, max_length=64)

    @model_validator(mode="after")
    def _extensions(self) -> Event:
        if not self.model_extra:
            return self
        for name, value in self.model_extra.items():
            if not EXTENSION_NAME.fullmatch(name):
                raise ValueError(f"extension attribute {name!r} must be 1-20 lowercase letters or digits")
            if not (value is None or isinstance(value, str | int | bool)):
                raise ValueError(f"extension attribute {name!r} must be a string, integer or boolean")
        return self

    @classmethod
    def parse(cls, raw: bytes | str | dict[str, Any]) -> Event:
        """Parse a body or dict, raising EventValidationError that names each bad field."""
        if isinstance(raw, dict):
            try:  # the stdlib encoder, like the wire, takes integers of any size
                raw = _encoder.encode(raw)
            except (TypeError, ValueError) as exc:
                raise EventValidationError.single("body", f"not JSON-serialisable: {exc}") from None
        try:
            # pydantic-core parses and validates the JSON in one pass, the cheapest way in
            return cls.model_validate_json(raw)
        except PydanticValidationError as exc:
            errors = exc.errors(include_url=False)
            if errors and errors[0]["type"] == "json_invalid":
                raise EventValidationError.single("body", f"not JSON: {errors[0]['msg']}") from None
            if errors and errors[0]["type"] == "model_type":
                raise EventValidationError.single("body", "must be a JSON object") from None
            try:
                type_ = json.loads(raw).get("type")
            except (ValueError, AttributeError):
                type_ = None
            raise EventValidationError(pydantic_errors(exc, ""), type_) from None

    def to_dict(self) -> dict[str, Any]:
        """The envelope as a JSON-ready dict (time formatted as RFC 3339 UTC)."""
        out = self.model_dump(exclude_none=True)
        out["time"] = format_time(self.time)
        return out

    def to_json(self) -> bytes:
        """The envelope as compact UTF-8 JSON."""
        return _encoder.encode(self.to_dict()).encode("utf-8")

    @property
    def family(self) -> str:
        """The first component of the type (``storage`` for ``storage.file.uploaded``)."""
        return self.type.split(".", 1)[0]
