"""Fixtures of the emergency API tests: a fake sink, a keys file with keys, the app and its client."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from emergency_api import ApiSettings, create_app
from emergency_api.keys import create_key

from .helpers import FakeSink


@pytest.fixture
def keys_file(tmp_path: Path) -> Path:
    return tmp_path / "keys.json"


@pytest.fixture
def health_key(keys_file: Path) -> str:
    """A key named 'monitor' that may post health.* and metric.* events."""
    return create_key(keys_file, "monitor", ["health.*", "metric.*"])[1]


@pytest.fixture
def any_key(keys_file: Path) -> str:
    """A key named 'app' that may post every type."""
    return create_key(keys_file, "app", ["*"])[1]


@pytest.fixture
def fake_sink() -> FakeSink:
    return FakeSink()


@pytest.fixture
def api_settings(keys_file: Path) -> ApiSettings:
    return ApiSettings(keys_file=keys_file, max_batch=50, max_lines=50, max_body_bytes=64 * 1024,
                       rate_limit="1000/minute")


@pytest.fixture
def app(api_settings: ApiSettings, fake_sink: FakeSink) -> Flask:
    return create_app(api_settings, sink=fake_sink)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
