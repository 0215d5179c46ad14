"""Property: whatever text an event carries, its line parses in the real InfluxDB and reads back the same."""

from __future__ import annotations

import uuid

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sink_lib.lineprotocol import Encoder

pytestmark = pytest.mark.influxdb

SPECIAL = ',= "\\\n\t\r'
text = st.text(
    alphabet=st.one_of(st.sampled_from(SPECIAL), st.characters(blacklist_categories=("Cs", "Cc"))),
    max_size=30,
)


def as_measurement(value: str) -> str:
    """The tag rules, plus: a leading '#' (a comment to InfluxDB) becomes '_'."""
    name = as_tag(value)
    return "_" + name[1:] if name.startswith("#") else name


def as_tag(value: str) -> str:
    """What the documented tag rules make of a value: backslash to '/', line breaks and tabs to spaces."""
    return value.replace("\\", "/").replace("\n", " ").replace("\r", " ").replace("\t", " ")


@pytest.fixture(scope="module")
def database(influxdb_url: str):
    name = f"test_prop_{uuid.uuid4().hex[:10]}"
    requests.post(influxdb_url + "/query", data={"q": f'CREATE DATABASE "{name}"'}, timeout=10).raise_for_status()
    yield influxdb_url, name
    requests.post(influxdb_url + "/query", data={"q": f'DROP DATABASE "{name}"'}, timeout=30)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(measurement=text.filter(lambda s: as_tag(s).strip() != ""), tag_value=text, field_key=text, string=text)
def test_any_text_round_trips(database: tuple[str, str], measurement: str, tag_value: str, field_key: str,
                              string: str) -> None:
    url, db = database
    # field keys may not be empty, and "time" is reserved by InfluxDB: the mapping never produces either
    key = "k" + field_key
    marker = uuid.uuid4().hex
    line = Encoder().line(measurement, {"t": tag_value, "marker": marker}, {key: string, "n": 1.5}, 1_000_000)
    assert line is not None
    resp = requests.post(url + "/write", params={"db": db, "precision": "ns"}, data=line.encode(), timeout=10)
    assert resp.status_code == 204, (line, resp.text)
    query = f"SELECT * FROM /.*/ WHERE marker = '{marker}'"
    result = requests.get(url + "/query", params={"db": db, "q": query}, timeout=10).json()["results"][0]
    assert "series" in result, (line, result)
    [series] = result["series"]
    row = dict(zip(series["columns"], series["values"][0], strict=True))
    assert series["name"] == as_measurement(measurement)
    assert row.get("t") == (as_tag(tag_value) or None)
    assert row[as_tag(key)] == string
