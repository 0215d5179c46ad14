"""Events map to points as the README documents: measurement, low-cardinality tags, typed fields, time."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import get_args

import pytest

from sink_lib.errors import ConfigurationError
from sink_lib.settings import build_settings
from sink_lib.types import BUILTIN_TYPES
from workers.influxdb import InfluxDBSettings, InfluxDBWorker, Mapper, TypeRule
from workers.influxdb.mapping import BUILTIN, point_time_ns

from .conftest import make_event

HTTP = {"url": "https://clowder.example/api?q=1", "ok": True, "status": 503, "dns_ms": 1, "connect_ms": 2.5,
        "tls_ms": 3, "ttfb_ms": 4, "total_ms": 10, "bytes": 512, "error": "Service Unavailable"}


def test_health_http_point_has_low_cardinality_tags_and_typed_fields() -> None:
    event = make_event("health.http", HTTP, region="us-east", userid="u-42")
    point = Mapper().point(event)
    assert point is not None
    assert point.measurement == "health"
    assert point.tags == {
        "type": "health.http", "source": "/monitor/test", "region": "us-east",
        "url": HTTP["url"], "host": "clowder.example", "status_class": "5xx",
    }
    assert point.fields["status"] == 503 and isinstance(point.fields["status"], int)
    assert point.fields["bytes"] == 512
    assert point.fields["dns_ms"] == 1.0 and isinstance(point.fields["dns_ms"], float)
    assert point.fields["ok"] is True
    assert point.fields["error"] == "Service Unavailable"
    assert point.fields["id"] == event.id


def test_user_ids_are_never_tags_and_not_stored_by_default() -> None:
    event = make_event("activity.resource.viewed", {"resource_type": "file", "resource_id": "f1"}, userid="u-42")
    default = Mapper().point(event)
    opted_in = Mapper(store_userid=True).point(event)
    assert default is not None and opted_in is not None
    assert "u-42" not in default.tags.values() and "u-42" not in default.fields.values()
    assert opted_in.fields["userid"] == "u-42"
    assert "userid" not in opted_in.tags


@pytest.mark.parametrize("type_", sorted(BUILTIN))
def test_every_builtin_type_maps_to_its_family_with_the_type_tag(type_: str) -> None:
    point = Mapper().point(make_event(type_, {"file_id": "f"}))
    assert point is not None
    assert point.measurement == type_.split(".")[0]
    assert point.tags["type"] == type_


def test_api_calls_tag_method_route_and_status_class_and_keep_duration_as_float() -> None:
    data = {"method": "GET", "route": "/api/files/<id>", "status": 200, "duration_ms": 12}
    point = Mapper().point(make_event("traffic.api.called", data))
    assert point is not None
    assert {k: point.tags[k] for k in ("method", "route", "status_class")} == {
        "method": "GET", "route": "/api/files/<id>", "status_class": "2xx"}
    # an integral duration is still a float: a later 12.5 must not be a field type conflict
    assert point.fields["duration_ms"] == 12.0 and isinstance(point.fields["duration_ms"], float)
    assert point.fields["status"] == 200 and isinstance(point.fields["status"], int)


def test_page_views_keep_the_url_as_a_field_and_its_host_as_a_tag() -> None:
    point = Mapper().point(make_event("traffic.page.viewed", {"url": "https://h.example/files/123"}))
    assert point is not None
    assert point.tags["host"] == "h.example"
    assert "url" not in point.tags and point.fields["url"] == "https://h.example/files/123"


def test_unknown_types_get_the_generic_mapping() -> None:
    data = {"service": "api", "count": 3, "ratio": 0.5, "label": "x" * 2000, "nested": {"a": 1},
            "ok": False, "none": None, "id": "data-id", "time": 5}
    point = Mapper(max_string_length=100).point(make_event("billing.invoice.sent", data))
    assert point is not None
    assert point.measurement == "billing"
    assert point.tags["service"] == "api"
    assert point.fields["count"] == 3.0 and isinstance(point.fields["count"], float)
    assert point.fields["ratio"] == 0.5 and point.fields["ok"] is False
    assert point.fields["label"] == "x" * 100
    assert "nested" not in point.fields and "none" not in point.fields
    # data keys that clash with the mapping's own names are prefixed, not overwriting them
    assert point.fields["data_id"] == "data-id" and point.fields["data_time"] == 5.0
    assert point.fields["id"] != "data-id"


def test_a_rule_changes_measurement_tags_and_integer_fields_of_matching_types() -> None:
    rules = {
        "billing.*": TypeRule(measurement="billing_events", tags=["currency"], integers=["count"]),
        "billing.invoice.sent": TypeRule(drop=["label"]),
    }
    mapper = Mapper(rules)
    exact = mapper.point(make_event("billing.invoice.sent", {"currency": "EUR", "count": 3, "label": "x"}))
    other = mapper.point(make_event("billing.refund", {"currency": "EUR", "count": 3, "service": "s"}))
    assert exact is not None and other is not None
    assert exact.measurement == "billing" and "label" not in exact.fields  # the exact rule wins
    assert other.measurement == "billing_events"
    assert other.tags["currency"] == "EUR" and "service" not in other.tags and other.fields["service"] == "s"
    assert other.fields["count"] == 3 and isinstance(other.fields["count"], int)


def test_point_time_is_the_event_time_with_id_derived_low_digits() -> None:
    moment = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    exact_ns = int(moment.timestamp()) * 10**9 + 123456000
    a1, a2 = point_time_ns(moment, "event-a", 6), point_time_ns(moment, "event-a", 6)
    b = point_time_ns(moment, "event-b", 6)
    assert a1 == a2 != b
    assert exact_ns - exact_ns % 10**6 <= a1 < exact_ns - exact_ns % 10**6 + 10**6
    assert point_time_ns(moment, "event-a", 0) == exact_ns


def test_the_same_event_maps_to_the_same_line_every_time() -> None:
    event = make_event("health.http", HTTP)
    one, two = InfluxDBWorker(InfluxDBSettings()), InfluxDBWorker(InfluxDBSettings())
    lines = [w.encoder.line(p.measurement, p.tags, p.fields, p.time_ns)
             for w in (one, two) for p in [w.mapper.point(event)] if p is not None]
    assert lines[0] == lines[1]


def test_mapping_rules_come_from_a_toml_file_and_the_environment(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "mapping.toml"
    path.write_text('[types."app.*"]\nmeasurement = "app"\ntags = ["plan"]\n\n[types."app.b"]\ndrop = ["x"]\n')
    monkeypatch.setenv("EVENTSINK_INFLUXDB_MAPPING_FILE", str(path))
    monkeypatch.setenv("EVENTSINK_INFLUXDB_MAPPING", json.dumps({"app.b": {"measurement": "app_b"}}))
    rules = build_settings(InfluxDBSettings).rules()
    assert rules["app.*"].measurement == "app" and rules["app.*"].tags == ["plan"]
    assert rules["app.b"].measurement == "app_b"  # the environment's rule replaces the file's


def test_a_bad_mapping_file_is_a_configuration_error_naming_the_variable(tmp_path: Path) -> None:
    path = tmp_path / "mapping.json"
    path.write_text(json.dumps({"types": {"app.a": {"tagz": ["x"]}}}))
    with pytest.raises(ConfigurationError, match="EVENTSINK_INFLUXDB_MAPPING_FILE"):
        InfluxDBSettings(mapping_file=path).rules()


def test_defaults_fit_a_local_influxdb_1x(monkeypatch) -> None:
    settings = build_settings(InfluxDBSettings)
    assert (settings.url, settings.api_version, settings.database) == ("http://127.0.0.1:8086", 1, "eventsink")
    assert settings.batch_size == 5000


def test_api_version_2_needs_org_bucket_and_token(monkeypatch) -> None:
    monkeypatch.setenv("EVENTSINK_INFLUXDB_API_VERSION", "2")
    monkeypatch.setenv("EVENTSINK_INFLUXDB_ORG", "acme")
    with pytest.raises(ConfigurationError, match="EVENTSINK_INFLUXDB_BUCKET, EVENTSINK_INFLUXDB_TOKEN"):
        build_settings(InfluxDBSettings)


def test_secrets_do_not_show_in_the_settings_text() -> None:
    settings = InfluxDBSettings(password="hunter2", token="tok-secret")
    assert "hunter2" not in repr(settings) and "tok-secret" not in str(settings)


def test_the_example_mapping_file_loads_and_applies(monkeypatch: pytest.MonkeyPatch) -> None:
    example = Path(__file__).resolve().parent.parent / "mapping.example.toml"
    rules = InfluxDBSettings(mapping_file=example).rules()
    point = Mapper(rules).point(make_event(
        "partner.check", {"partner": "acme", "endpoint": "https://api.acme.example/v1", "code": 404, "ms": 3}))
    assert point is not None
    assert point.tags["partner"] == "acme" and point.tags["host"] == "api.acme.example"
    assert point.tags["status_class"] == "4xx" and point.fields["code"] == 404
    billing = Mapper(rules).point(make_event("billing.charged", {"plan": "pro", "items": 2, "card_last4": "4242"}))
    assert billing is not None
    assert billing.measurement == "billing" and billing.tags["plan"] == "pro"
    assert billing.fields["items"] == 2 and "card_last4" not in billing.fields


@pytest.mark.parametrize("type_", sorted(BUILTIN_TYPES))
def test_builtin_integer_fields_are_exactly_the_models_integer_fields(type_: str) -> None:
    # a number the model declares float must never be written as an integer, nor the reverse,
    # or InfluxDB refuses later points of the type with a field type conflict
    model = BUILTIN_TYPES[type_]
    declared = {name for name, f in model.model_fields.items() if int in get_args(f.annotation) or f.annotation is int}
    assert set(BUILTIN[type_].integers) == declared


def test_the_readme_documents_every_builtin_type() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    for type_ in BUILTIN_TYPES:
        assert f"`{type_}`" in readme, type_


def test_public_names_are_pinned() -> None:
    import workers.influxdb as package

    assert package.__all__ == sorted(package.__all__)
    assert set(package.__all__) == {
        "Encoder", "InfluxDBSettings", "InfluxDBWorker", "Mapper", "Point", "TypeMapping", "TypeRule"}


def test_id_shards_add_a_bounded_tag_that_is_stable_per_event() -> None:
    events = [make_event() for _ in range(200)]
    mapper = Mapper(id_shards=8)
    shards = [mapper.point(e).tags["id_shard"] for e in events]  # type: ignore[union-attr]
    assert set(shards) == {str(i) for i in range(8)}
    assert shards == [Mapper(id_shards=8).point(e).tags["id_shard"] for e in events]  # type: ignore[union-attr]
    assert "id_shard" not in Mapper().point(events[0]).tags  # type: ignore[union-attr]
