"""The OpenAPI document at /apispec.json and the Swagger UI."""

from __future__ import annotations

import json
from typing import Any

from flask.testing import FlaskClient

from emergency_api import ApiSettings, create_app
from sink_lib.registry import default_registry

from .helpers import FakeSink


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


CRAFTED = "/apidocs/?url=https://attacker.example/spec.json&configUrl=https://attacker.example/c.json"


def test_the_swagger_ui_is_off_by_default_and_the_spec_stays(client: FlaskClient) -> None:
    # When someone follows a crafted link to the UI with another spec's URL
    response = client.get(CRAFTED)
    # Then there is no UI on the API's origin to show it, while the spec is still served
    assert response.status_code == 404
    assert client.get("/flasgger_static/swagger-ui-bundle.js").status_code == 404
    assert client.get("/apispec.json").get_json()["openapi"] == "3.0.3"


def test_the_development_swagger_ui_may_fetch_only_from_its_own_origin(
    api_settings: ApiSettings, fake_sink: FakeSink
) -> None:
    # Given the UI turned on for development
    client = create_app(api_settings.model_copy(update={"swagger_ui": True}), sink=fake_sink).test_client()
    # When the crafted link is followed
    response = client.get(CRAFTED)
    assert response.status_code == 200 and b"swagger" in response.data.lower()
    # Then the browser is told to fetch nothing but from the API's own origin (the bundled swagger-ui reads
    # ?url=, so the foreign spec request is blocked by the policy), and the page cannot be framed
    policy = dict(part.strip().split(" ", 1) for part in response.headers["Content-Security-Policy"].split(";"))
    assert policy["connect-src"] == "'self'" and policy["default-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert "attacker.example" not in response.get_data(as_text=True)
