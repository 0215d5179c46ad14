"""Fixtures of the monitor tests: local HTTP(S) targets, a test certificate, a fake emergency API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .fake_api import FakeApi
from .targets import DelayServer, make_certificate, server_context


@pytest.fixture
def http_server() -> Iterator[DelayServer]:
    """A plain HTTP target with injectable delays (see targets.py)."""
    server = DelayServer()
    yield server
    server.close()


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost that expires in 30 days: (cert, key)."""
    return make_certificate(tmp_path, days=30)


@pytest.fixture
def https_server(certificate: tuple[Path, Path]) -> Iterator[DelayServer]:
    """An HTTPS target serving the 30-day test certificate."""
    server = DelayServer(server_context(*certificate))
    yield server
    server.close()


@pytest.fixture
def fake_api() -> Iterator[FakeApi]:
    """The fake emergency API (key ``good-key``)."""
    api = FakeApi()
    yield api
    api.close()
