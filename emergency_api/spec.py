"""The OpenAPI 3 description served by flasgger at ``/apispec.json`` (Swagger UI at ``/apidocs/``).

Written out here rather than scattered over docstrings so it stays complete: every route, body,
security scheme and error response, and the JSON Schema of each registered type's ``data``.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, request

from sink_lib.lineprotocol import PRECISIONS
from sink_lib.registry import TYPE_PATTERN, TypeRegistry

from . import influx_spec
from .checks import SOURCE_PATH
from .events import OPTIONAL_STRINGS
from .problems import PROBLEM_CONTENT_TYPE
from .settings import ApiSettings

SECURITY: list[dict[str, list[str]]] = [{"ApiKeyHeader": []}, {"BearerKey": []}]


def _problem(description: str, retry_after: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    if retry_after:
        out["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}}
    return out


COMMON_ERRORS = {
    "401": _problem("No API key, or an invalid or revoked one."),
    "403": _problem("An event type is outside the key's scopes; nothing was published."),
    "413": _problem("Body larger than the limit, or too many events/lines in one request."),
    "415": _problem("Wrong Content-Type."),
    "429": _problem("Rate limit of the key exceeded.", retry_after=True),
    "500": _problem("Unexpected server error (no details are given)."),
    "503": _problem("Events could not be confirmed or spooled in time, or the spool is full.", retry_after=True),
}


def _event_schema(types: list[str]) -> dict[str, Any]:
    props: dict[str, Any] = {
        "type": {"type": "string", "pattern": TYPE_PATTERN.pattern, "maxLength": 128,
                 "example": "health.status", "description": "Dotted event type; must match a scope of the key."},
        "data": {"type": "object", "example": {"service": "clowder", "state": "up"},
                 "description": "Checked against the registered schema of the type: components/schemas/"
                                "data.<type> (" + ", ".join(types) + "). Other types take any object "
                                "unless strict."},
    }
    for name, limit in OPTIONAL_STRINGS.items():
        props[name] = {"type": "string", "minLength": 1, "maxLength": limit}
    props["id"]["description"] = ("Your id for the event; resend the same id when retrying. It is published "
                                  "scoped to your key (uuid5, see the README); the answer lists the ids "
                                  "published. Default: a new random uuid4.")
    props["time"].update(format="date-time", description="RFC 3339 time (default: time of arrival).")
    props["source"].update(pattern=SOURCE_PATH.pattern,
                           description="Appended to the key's source: /api/<key name>/<source>.")
    props["specversion"] = {"type": "string", "enum": ["1.0"]}
    props["datacontenttype"] = {"type": "string", "enum": ["application/json"]}
    return {"type": "object", "required": ["type", "data"], "additionalProperties": False, "properties": props}


def openapi30(schema: Any) -> Any:
    """Rewrite pydantic's JSON Schema (2020-12) into the OpenAPI 3.0 dialect.

    ``anyOf: [X, {"type": "null"}]`` becomes X with ``nullable: true``; ``const`` becomes a one-value
    ``enum``; ``$defs`` references point at ``components/schemas``.
    """
    if isinstance(schema, list):
        return [openapi30(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: openapi30(value) for key, value in schema.items()}
    for key in ("anyOf", "oneOf"):
        options = out.get(key)
        if isinstance(options, list) and {"type": "null"} in options:
            rest = [o for o in options if o != {"type": "null"}]
            del out[key]
            if len(rest) == 1:
                out.update(rest[0])
            else:
                out[key] = rest
            out["nullable"] = True
    if "const" in out:
        out["enum"] = [out.pop("const")]
    ref = out.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        out["$ref"] = "#/components/schemas/" + ref.removeprefix("#/$defs/")
    return out


def _data_schemas(registry: TypeRegistry) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, schema in registry.schemas().items():
        for def_name, sub in schema.pop("$defs", {}).items():
            out[def_name] = openapi30(sub)
        out[f"data.{name}"] = openapi30(schema)
    return out


def build_spec(settings: ApiSettings, registry: TypeRegistry) -> dict[str, Any]:
    """The OpenAPI document of the API."""
    events_body = {
        "oneOf": [
            {"$ref": "#/components/schemas/Event"},
            {"type": "array", "minItems": 1, "maxItems": settings.max_batch,
             "items": {"$ref": "#/components/schemas/Event"}},
        ]
    }
    json_body = {"schema": events_body}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "EventSink emergency API",
            "version": "1",
            "description": "Authenticated HTTP ingest of events into EventSink, working while the rest is down.",
        },
        "components": {
            "securitySchemes": {
                "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "BearerKey": {"type": "http", "scheme": "bearer"},
                **influx_spec.SCHEMES,
            },
            "schemas": {
                "Event": _event_schema(registry.names()),
                "Accepted": {"type": "object", "required": ["accepted", "ids"], "properties": {
                    "accepted": {"type": "integer"}, "ids": {"type": "array", "items": {"type": "string"}}}},
                "Problem": {"type": "object", "required": ["type", "title", "status", "detail"], "properties": {
                    "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                    "detail": {"type": "string"}, "accepted": {"type": "integer"},
                    "errors": {"type": "array", "items": {"type": "object"}},
                }},
                **_data_schemas(registry),
            },
        },
        "paths": {
            "/api/v1/events": {"post": {
                "summary": "Post one event or a batch (all-or-nothing)",
                "security": SECURITY,
                "requestBody": {"required": True, "content": {
                    "application/json": json_body, "application/cloudevents+json": json_body,
                    "application/cloudevents-batch+json": json_body}},
                "responses": {
                    "202": {"description": "Every event is broker-confirmed or in the durable spool.",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}}},
                    "400": _problem("The body is not JSON."),
                    "422": _problem("Invalid events; `errors` lists index, field and message of each."),
                    **COMMON_ERRORS,
                },
            }},
            "/api/v1/write": {"post": {
                "summary": "Post InfluxDB line protocol; each line becomes a metric.<measurement> event",
                "security": SECURITY,
                "parameters": [{"name": "precision", "in": "query", "required": False,
                                "schema": {"type": "string", "enum": list(PRECISIONS), "default": "ns"}}],
                "requestBody": {"required": True, "content": {"text/plain": {"schema": {"type": "string"}}}},
                "responses": {
                    "204": {"description": "Every line was published (confirmed or spooled)."},
                    "400": _problem("Bad lines (partial write: `accepted` lines were published, `errors` "
                                    "names each bad line), no lines, or a bad precision."),
                    **COMMON_ERRORS,
                },
            }},
            **influx_spec.influx_paths(),
            "/healthz": {"get": {"summary": "The process is up", "security": [], "responses": {
                "200": {"description": "Up.", "content": {"application/json": {"schema": {"type": "object"}}}},
                "500": COMMON_ERRORS["500"]}}},
            "/readyz": {"get": {"summary": "RabbitMQ connected or the spool writable", "security": [],
                                "responses": {
                "200": {"description": "Ready.", "content": {"application/json": {"schema": {"type": "object"}}}},
                "503": _problem("Neither the broker nor the spool can take events.", retry_after=True),
                "500": COMMON_ERRORS["500"]}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "security": [], "responses": {
                "200": {"description": "Prometheus text format.",
                        "content": {"text/plain": {"schema": {"type": "string"}}}},
                "500": COMMON_ERRORS["500"]}}},
        },
    }


def swagger_config(ui: bool) -> dict[str, Any]:
    """flasgger configuration: spec at /apispec.json, UI at /apidocs/ when ``ui``, no docstring scanning."""
    return {
        "headers": [],
        "openapi": "3.0.3",
        "specs": [{"endpoint": "apispec", "route": "/apispec.json",
                   "rule_filter": lambda rule: False, "model_filter": lambda tag: False}],
        "static_url_path": "/flasgger_static",
        "swagger_ui": ui,
        "specs_route": "/apidocs/",
    }


# flasgger's swagger-ui predates ``queryConfigEnabled`` and takes ?url= / ?configUrl= from the link, so a
# crafted link would show another spec (and its scripted content) on the API's origin. The policy lets
# the page fetch from its own origin only; its inline start-up script needs 'unsafe-inline'.
UI_POLICY = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
             "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
UI_PATHS = ("/apidocs", "/flasgger_static/")


def protect_ui(app: Flask) -> None:
    """Send the Swagger UI's pages with :data:`UI_POLICY`."""

    @app.after_request
    def _policy(response: Response) -> Response:
        if request.path.startswith(UI_PATHS):
            response.headers["Content-Security-Policy"] = UI_POLICY
            response.headers["X-Content-Type-Options"] = "nosniff"
        return response
