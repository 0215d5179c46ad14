"""The OpenAPI document at /apispec.json and the Swagger UI."""

from __future__ import annotations

import json
from typing import Any

from flask.testing import FlaskClient

from sink_lib.registry import default_registry


def _walk(node: Any) -> Any:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_the_spec_describes_every_route_security_and_error(client: FlaskClient) -> None:
    spec = client.get("/apispec.json").get_json()
    assert spec["openapi"].startswith("3.0")
    assert set(spec["paths"]) == {"/api/v1/events", "/api/v1/write", "/healthz", "/readyz", "/metrics",
                                  "/write", "/api/v2/write", "/query", "/ping", "/health"}
    schemes = spec["components"]["securitySchemes"]
    assert schemes["ApiKeyHeader"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert schemes["BearerKey"]["scheme"] == "bearer"
    events = spec["paths"]["/api/v1/events"]["post"]
    assert {"202", "400", "401", "403", "413", "415", "422", "429", "503", "500"} <= set(events["responses"])
    assert "application/problem+json" in events["responses"]["422"]["content"]


def test_every_registered_type_has_its_data_schema_in_openapi_30_form(client: FlaskClient) -> None:
    spec = client.get("/apispec.json").get_json()
    schemas = spec["components"]["schemas"]
    for name in default_registry().names():
        assert f"data.{name}" in schemas
    # OpenAPI 3.0 has no "type": "null" and no "const"; every reference resolves
    for node in _walk(spec):
        assert node.get("type") != "null" and "const" not in node, json.dumps(node)
        ref = node.get("$ref")
        if isinstance(ref, str):
            assert ref.removeprefix("#/components/schemas/") in schemas, ref
    uploaded = schemas["data.storage.file.uploaded"]
    assert uploaded["properties"]["dataset_id"] == {"type": "string", "nullable": True, "default": None,
                                                    "title": "Dataset Id"}


def test_the_swagger_ui_is_served(client: FlaskClient) -> None:
    response = client.get("/apidocs/")
    assert response.status_code == 200 and b"swagger" in response.data.lower()
