"""Fixtures: prometheus workers on a free port with a private state file, and scraping helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from sink_lib.event import Event, build_envelope
from workers.prometheus import PrometheusSettings, PrometheusWorker

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def event(type_: str = "storage.file.uploaded", data: dict[str, Any] | None = None, **attrs: Any) -> Event:
    """A parsed event as the runtime hands it to write()."""
    payload = {"file_id": "f1", "bytes": 10} if data is None else data
    attrs.setdefault("source", "/test")
    return Event.parse(build_envelope(type_, payload, **attrs))


def scrape(port: int) -> Samples:
    """Every sample the endpoint serves, keyed by (sample name, labels)."""
    response = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    response.raise_for_status()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """The value of one sample, or None when it is not served."""
    return samples.get((name, frozenset(labels.items())))


@pytest.fixture
def state_file(tmp_path: Path) -> Path:
    """A private state file path."""
    return tmp_path / "state" / "prometheus.sqlite3"


@pytest.fixture
def make_worker(state_file: Path) -> Iterator[Callable[..., PrometheusWorker]]:
    """Build opened workers on a free port (settings overridable); closes them at the end."""
    opened: list[PrometheusWorker] = []

    def make(**overrides: Any) -> PrometheusWorker:
        options: dict[str, Any] = {"port": 0, "address": "127.0.0.1", "state_file": state_file, **overrides}
        worker = PrometheusWorker(PrometheusSettings(**options))
        worker.open()
        opened.append(worker)
        return worker

    yield make
    for worker in opened:
        worker.close()
