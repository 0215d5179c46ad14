"""OpenAPI description of the InfluxDB-compatible endpoints (merged into the API's spec)."""

from __future__ import annotations

from typing import Any

from .influx import V1_PRECISIONS, V2_PRECISIONS

#: the credential forms InfluxDB clients send, besides the API's own X-API-Key and Bearer
SCHEMES = {
    "InfluxToken": {"type": "apiKey", "in": "header", "name": "Authorization",
                    "description": "`Token <api key>` (InfluxDB 2.x clients, Telegraf's influxdb_v2 output)."},
    "InfluxBasic": {"type": "http", "scheme": "basic", "description": "Any user name, the API key as password."},
    "InfluxQueryPassword": {"type": "apiKey", "in": "query", "name": "p",
                            "description": "The API key as `p` (InfluxDB 1.x clients; `u` is ignored)."},
}
_SECURITY_V1: list[dict[str, list[str]]] = [
    {"InfluxToken": []}, {"InfluxBasic": []}, {"InfluxQueryPassword": []}, {"ApiKeyHeader": []}, {"BearerKey": []}]
_SECURITY_V2: list[dict[str, list[str]]] = [{"InfluxToken": []}, {"ApiKeyHeader": []}, {"BearerKey": []}]


def _error(description: str, shape: str) -> dict[str, Any]:
    schema: dict[str, Any] = (
        {"type": "object", "properties": {"error": {"type": "string"}}} if shape == "v1" else
        {"type": "object", "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}
    )
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _write(summary: str, params: list[dict[str, Any]], security: list[Any], shape: str) -> dict[str, Any]:
    return {"post": {
        "summary": summary,
        "security": security,
        "parameters": params,
        "requestBody": {"required": True, "description": "Line protocol; `Content-Encoding: gzip` accepted.",
                        "content": {"text/plain": {"schema": {"type": "string"}}}},
        "responses": {
            "204": {"description": "Every line was published (confirmed or spooled)."},
            "400": _error("Bad lines (partial write: the good lines were published), or a bad parameter.", shape),
            "401": _error("No key, or an invalid one.", shape),
            "403": _error("A measurement's metric.* type is outside the key's scopes; nothing published.", shape),
            "413": _error("Body (or decompressed body) too large, or too many lines.", shape),
            "429": _error("Rate limited (Retry-After).", shape),
            "503": _error("Events could not be accepted now (Retry-After).", shape),
        },
    }}


def _query(name: str, required: bool, values: frozenset[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if values is not None:
        schema["enum"] = sorted(values)
    return {"name": name, "in": "query", "required": required, "schema": schema}


def influx_paths() -> dict[str, Any]:
    """The paths of ``/write``, ``/api/v2/write``, ``/query``, ``/ping`` and ``/health``."""
    return {
        "/write": _write("InfluxDB 1.x write: each line becomes a metric.<measurement> event",
                         [_query("db", True), _query("rp", False), _query("precision", False, V1_PRECISIONS),
                          _query("u", False)], _SECURITY_V1, "v1"),
        "/api/v2/write": _write("InfluxDB 2.x write: each line becomes a metric.<measurement> event",
                                [_query("org", False), _query("bucket", True),
                                 _query("precision", False, V2_PRECISIONS)], _SECURITY_V2, "v2"),
        "/query": {"post": {"summary": "InfluxDB 1.x query: only CREATE DATABASE, answered as done",
                            "security": _SECURITY_V1, "parameters": [_query("q", False), _query("u", False)],
                            "responses": {"200": {"description": "CREATE DATABASE: nothing to do."},
                                          "400": _error("Any other statement: EventSink takes writes only.", "v1"),
                                          "401": _error("No key, or an invalid one.", "v1")}}},
        "/ping": {"get": {"summary": "InfluxDB ping: 204 with X-Influxdb-Version", "security": [],
                          "parameters": [_query("verbose", False)],
                          "responses": {"204": {"description": "Up."},
                                        "200": {"description": "Up, with ?verbose=true: the version."}}}},
        "/health": {"get": {"summary": "InfluxDB health: pass when events can be accepted", "security": [],
                            "responses": {"200": {"description": "status pass."},
                                          "503": {"description": "status fail."}}}},
    }
