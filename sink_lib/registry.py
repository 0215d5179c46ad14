"""The registry of event types: name -> pydantic model of ``data``.

Built-in types come from :mod:`sink_lib.types`; plugins add theirs through the entry-point group
``eventsink.types`` (an entry point resolves to a ``{type_name: model}`` mapping). Types the registry
does not know are accepted when ``data`` is a JSON object, unless validation is strict.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from importlib.metadata import entry_points
from typing import Any

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from .errors import ConfigurationError, EventValidationError
from .types import BUILTIN_TYPES

TYPE_PATTERN = re.compile(r"^[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)+$")
TYPES_ENTRY_POINT_GROUP = "eventsink.types"


def pydantic_errors(exc: PydanticValidationError, prefix: str) -> list[dict[str, Any]]:
    """Turn a pydantic error into ``{"field", "message"}`` pairs with dotted field paths."""
    out = []
    for err in exc.errors(include_url=False):
        path = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "")
        out.append({"field": path or prefix, "message": err["msg"]})
    return out


class TypeRegistry:
    """Maps event type names to the models that validate their ``data``."""

    def __init__(self, types: Mapping[str, type[BaseModel]] | None = None) -> None:
        self._models: dict[str, type[BaseModel]] = {}
        for name, model in (types or {}).items():
            self.register(name, model)

    def register(self, name: str, model: type[BaseModel], *, replace: bool = False) -> None:
        """Add a type; refuse a second model for a known name unless ``replace``."""
        check_type_name(name)
        if name in self._models and self._models[name] is not model and not replace:
            raise ConfigurationError(f"event type {name!r} is already registered")
        self._models[name] = model

    def load_plugins(self) -> None:
        """Register the types that installed plugins publish under ``eventsink.types``."""
        for ep in entry_points(group=TYPES_ENTRY_POINT_GROUP):
            types = ep.load()
            for name, model in dict(types).items():
                self.register(name, model)

    def __contains__(self, name: object) -> bool:
        return name in self._models

    def names(self) -> list[str]:
        """The registered type names, sorted."""
        return sorted(self._models)

    def model(self, name: str) -> type[BaseModel] | None:
        """The data model of ``name``, or None for an unknown type."""
        return self._models.get(name)

    def validate(self, name: str, data: Any, *, strict: bool = False) -> None:
        """Raise EventValidationError when ``data`` is not valid for type ``name``.

        Unknown types pass when ``data`` is a JSON object and ``strict`` is false. JSON
        serialisability of values is checked when the event is encoded.
        """
        # a registered name was checked when it was registered; anything else is checked here
        model = self._models.get(name) if isinstance(name, str) else None
        if model is None:
            check_type_name(name)
            if strict:
                raise EventValidationError.single("type", f"unknown event type {name!r}", name)
            if not isinstance(data, dict):
                raise EventValidationError.single("data", "must be a JSON object", name)
            return
        if not isinstance(data, dict):
            raise EventValidationError.single("data", "must be a JSON object", name)
        try:
            model.__pydantic_validator__.validate_python(data)
        except PydanticValidationError as exc:
            raise EventValidationError(pydantic_errors(exc, "data"), name) from None

    def schema(self, name: str) -> dict[str, Any]:
        """JSON Schema of the ``data`` of type ``name``."""
        model = self._models.get(name)
        if model is None:
            raise KeyError(name)
        schema = model.model_json_schema()
        schema["title"] = name
        return schema

    def schemas(self, names: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """JSON Schemas of several (default: all) types, by name."""
        return {n: self.schema(n) for n in (names or self.names())}


def check_type_name(name: object) -> None:
    """Raise EventValidationError unless ``name`` is a dotted lowercase type name."""
    if not isinstance(name, str) or not TYPE_PATTERN.fullmatch(name) or len(name) > 128:
        raise EventValidationError.single(
            "type",
            "must be a dotted lowercase name such as 'storage.file.uploaded' (at most 128 characters)",
        )


def default_registry() -> TypeRegistry:
    """A registry of the built-in types plus those of installed plugins."""
    registry = TypeRegistry(BUILTIN_TYPES)
    registry.load_plugins()
    return registry
