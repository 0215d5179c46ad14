"""Fixtures of the influxdb worker's tests: a fresh database on the real server, dropped afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from sink_lib.event import Event, build_envelope


class Influx:
    """A throw-away database on the real InfluxDB 1.x and a way to query it."""

    def __init__(self, url: str, database: str) -> None:
        self.url, self.database = url, database

    def query(self, q: str) -> list[dict[str, Any]]:
        """Rows of an InfluxQL query as dicts (column -> value), all series together."""
        resp = requests.get(self.url + "/query", params={"db": self.database, "q": q, "epoch": "ns"}, timeout=10)
        resp.raise_for_status()
        rows = []
        for result in resp.json()["results"]:
            assert "error" not in result, result
            for series in result.get("series", []):
                for values in series["values"]:
                    row = dict(zip(series["columns"], values, strict=True))
                    row["_measurement"] = series["name"]
                    rows.append(row)
        return rows

    def databases(self) -> set[str]:
        """Names of the server's databases."""
        resp = requests.get(self.url + "/query", params={"q": "SHOW DATABASES"}, timeout=10)
        resp.raise_for_status()
        series = resp.json()["results"][0].get("series", [])
        return {row[0] for s in series for row in s["values"]}

    def count(self, measurement: str) -> int:
        """Points of a measurement (counted on the always-present ``id`` field)."""
        rows = self.query(f'SELECT count("id") FROM "{measurement}"')
        return int(rows[0]["count"]) if rows else 0

    def drop(self) -> None:
        """Drop the database."""
        requests.post(self.url + "/query", data={"q": f'DROP DATABASE "{self.database}"'}, timeout=30)


@pytest.fixture
def influx(influxdb_url: str) -> Iterator[Influx]:
    """A unique database name on the real server (the worker creates it); dropped after the test."""
    db = Influx(influxdb_url, f"test_{uuid.uuid4().hex[:12]}")
    yield db
    db.drop()


def make_event(type_: str = "health.ping", data: dict[str, Any] | None = None, **kwargs: Any) -> Event:
    """A parsed event, as the runtime hands it to the plugin."""
    if data is None:
        data = {"target": "db1", "rtt_min_ms": 1.0, "rtt_avg_ms": 2.0, "rtt_max_ms": 3.0, "loss_pct": 0.0, "ok": True}
    kwargs.setdefault("source", "/monitor/test")
    return Event.parse(build_envelope(type_, data, **kwargs))
