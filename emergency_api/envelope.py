"""The envelope a client may post to ``/api/v1/events``: ONE pydantic model for the rules and the spec.

:class:`PostedEvent` is what the API validates each posted event with (:func:`envelope_errors`) and
what its OpenAPI schema is generated from (:func:`event_schema`, ``model_json_schema()``), so the two
cannot drift; schemathesis over the spec then tests the very rules the API applies. The limits shared
with the wire envelope are read from :class:`sink_lib.event.Event`; ``source`` is shorter here because
the API appends it to ``/api/<key name>``. The registry still checks ``data`` against the type's model.

Only two rules are not expressible in JSON Schema and live in validators below: no ``.``/``..`` path
segments in ``source``, and ``time`` within the configured distance of now (given as validation
context, since it depends on settings).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from sink_lib.event import Event
from sink_lib.registry import TYPE_PATTERN

from .checks import SOURCE_PATH, source_problem, time_problem
from .settings import ApiSettings


def _max_length(name: str) -> int:
    """The ``max_length`` the wire envelope (:class:`Event`) gives field ``name``."""
    return next(m.max_length for m in Event.model_fields[name].metadata if hasattr(m, "max_length"))


TYPE_MAX = _max_length("type")
TYPE_MESSAGE = f"must be a dotted lowercase name such as 'storage.file.uploaded' (at most {TYPE_MAX} characters)"


class PostedEvent(BaseModel):
    """One event as a client posts it; the server fills ``id``, ``time``, ``specversion`` and ``source``."""

    model_config = ConfigDict(extra="forbid", strict=True, title="Event")

    type: str = Field(max_length=TYPE_MAX, pattern=TYPE_PATTERN.pattern, examples=["health.status"],
                      description="Dotted event type; must match a scope of the key.")
    data: dict[str, Any] = Field(examples=[{"service": "clowder", "state": "up"}],
                                 description="Checked against the registered schema of the type (components/"
                                             "schemas/data.<type>). Other types take any object unless strict.")
    id: str = Field(None, min_length=1, max_length=_max_length("id"),  # type: ignore[assignment]
                    description="Your id for the event; resend the same id when retrying. It is published "
                                "scoped to your key (uuid5, see the README); the answer lists the ids "
                                "published. Default: a new random uuid4.")
    time: str = Field(None, min_length=1, max_length=64, json_schema_extra={"format": "date-time"},  # type: ignore[assignment]
                      description="RFC 3339 time (default: time of arrival).")
    subject: str = Field(None, min_length=1, max_length=_max_length("subject"))  # type: ignore[assignment]
    userid: str = Field(None, min_length=1, max_length=_max_length("userid"))  # type: ignore[assignment]
    region: str = Field(None, min_length=1, max_length=_max_length("region"))  # type: ignore[assignment]
    source: str = Field(None, min_length=1, max_length=256, pattern=SOURCE_PATH.pattern,  # type: ignore[assignment]
                        description="Appended to the key's source: /api/<key name>/<source>.")
    specversion: Literal["1.0"] = Field(None)  # type: ignore[arg-type]
    datacontenttype: Literal["application/json"] = Field(None)  # type: ignore[arg-type]

    @field_validator("source")
    @classmethod
    def _no_dot_segments(cls, value: str) -> str:
        if reason := source_problem(value):
            raise ValueError(reason)
        return value

    @field_validator("time")
    @classmethod
    def _near_now(cls, value: str, info: ValidationInfo) -> str:
        context = info.context or {}
        settings = context.get("settings")
        if settings is not None and (reason := time_problem(value, settings, context.get("now"))):
            raise ValueError(reason)
        return value  # an unparsable time is refused when the event is prepared, with its own message


FIELDS = tuple(PostedEvent.model_fields)


def _limit(name: str) -> int:
    return next(m.max_length for m in PostedEvent.model_fields[name].metadata if hasattr(m, "max_length"))


def _message(error: Any) -> tuple[str, str]:
    """(field, message) of one pydantic error, in the API's words."""
    loc = error["loc"]
    name = str(loc[0]) if loc else ""
    kind = error["type"]
    if kind == "extra_forbidden":
        return name, "unknown field; allowed: " + ", ".join(sorted(FIELDS))
    if kind == "missing":
        return name, "field required"
    if kind == "model_type":
        return "", "an event must be a JSON object"
    if name == "type":
        return name, TYPE_MESSAGE
    if name == "data":
        return name, "must be a JSON object"
    if kind == "literal_error":
        return name, f"must be {PostedEvent.model_fields[name].annotation.__args__[0]!r}"  # type: ignore[union-attr]
    if kind == "value_error":
        return name, str(error["ctx"]["error"])
    if name == "source" and kind == "string_pattern_mismatch":
        return name, "must be a URI path"
    return name, f"must be a string of 1-{_limit(name)} characters"


def envelope_errors(index: int, item: Any, settings: ApiSettings | None = None,
                    now: datetime | None = None) -> list[dict[str, Any]]:
    """Problems with the top-level fields of one posted event, each ``{"index", "field", "message"}``."""
    try:
        PostedEvent.__pydantic_validator__.validate_python(item, context={"settings": settings, "now": now})
    except ValidationError as exc:
        problems = [_message(error) for error in exc.errors(include_url=False)]
        unknown = [p for p in problems if p[1].startswith("unknown field")]
        return [{"index": index, "field": field, "message": message}
                for field, message in unknown + [p for p in problems if p not in unknown]]
    return []


def event_schema() -> dict[str, Any]:
    """The OpenAPI (3.0) schema of one posted event, generated from :class:`PostedEvent`."""
    schema = PostedEvent.model_json_schema()
    for prop in schema["properties"].values():
        prop.pop("default", None)  # optional, and never null: absent means "server fills it"
        prop.pop("title", None)
        if "examples" in prop:
            prop["example"] = prop.pop("examples")[0]
        if "const" in prop:
            prop["enum"] = [prop.pop("const")]
    schema["additionalProperties"] = False
    return schema
