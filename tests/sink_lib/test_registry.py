"""The type registry: built-in types validate strictly, unknown types per configuration."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from sink_lib.errors import ConfigurationError, EventValidationError
from sink_lib.registry import TypeRegistry, default_registry
from sink_lib.types import BUILTIN_TYPES

VALID = {
    "storage.file.uploaded": {"file_id": "f1", "dataset_id": "d1", "space_id": "s1", "bytes": 10},
    "storage.file.deleted": {"file_id": "f1", "bytes": 10},
    "storage.file.archived": {"file_id": "f1", "bytes": 10},
    "storage.file.unarchived": {"file_id": "f1", "bytes": 10},
    "extraction.queued": {"extractor": "ncsa.image", "file_id": "f1"},
    "extraction.started": {"extractor": "ncsa.image"},
    "extraction.finished": {"extractor": "ncsa.image", "duration_s": 1.5},
    "extraction.failed": {"extractor": "ncsa.image", "message": "boom"},
    "traffic.page.viewed": {"url": "/datasets/1", "resource_id": "1", "resource_type": "dataset"},
    "traffic.resource.downloaded": {"resource_id": "f1", "bytes": 3},
    "activity.resource.viewed": {"resource_type": "file", "resource_id": "f1"},
    "activity.extractor.submitted": {"extractor": "x", "resource_type": "dataset", "resource_id": "d1"},
    "activity.user.signed_up": {},
    "activity.user.logged_in": {},
    "traffic.api.called": {"method": "GET", "route": "/api/files/<id>", "status": 200, "duration_ms": 3.2},
    "health.ping": {"target": "h", "rtt_min_ms": 1, "rtt_avg_ms": 1.2, "rtt_max_ms": 2, "loss_pct": 0, "ok": True},
    "health.http": {"url": "https://x/", "ok": True, "status": 200, "dns_ms": 1, "connect_ms": 1, "tls_ms": 1,
                    "ttfb_ms": 5, "total_ms": 6, "bytes": 100, "cert_expires_in_days": 30},
    "health.status": {"service": "clowder", "state": "up"},
    "health.connections": {"service": "nginx", "active": 3, "requests": 10, "window_s": 60},
}


def test_every_builtin_type_has_a_valid_example():
    assert set(VALID) == set(BUILTIN_TYPES)


@pytest.mark.parametrize("type_name", sorted(VALID))
def test_builtin_types_accept_valid_data(type_name):
    default_registry().validate(type_name, VALID[type_name])


@pytest.mark.parametrize(
    ("type_name", "data", "field"),
    [
        ("storage.file.uploaded", {"file_id": "f1", "bytes": "10"}, "data.bytes"),  # strict: no coercion
        ("storage.file.uploaded", {"file_id": "f1"}, "data.bytes"),
        ("storage.file.uploaded", {"file_id": "f1", "bytes": -1}, "data.bytes"),
        ("storage.file.uploaded", {"file_id": "f1", "bytes": 1, "byte": 2}, "data.byte"),  # typo caught
        ("storage.file.uploaded", {"file_id": "", "bytes": 1}, "data.file_id"),  # optional, never empty
        ("storage.file.deleted", {"bytes": 1}, "data.file_id"),  # a deletion names its file
        ("storage.file.archived", {"bytes": 1}, "data.file_id"),
        ("activity.user.logged_in", {"user_name": "Ann"}, "data.user_name"),  # the user is the userid
        ("activity.resource.viewed", {"resource_type": "folder", "resource_id": "x"}, "data.resource_type"),
        ("health.status", {"service": "s", "state": "sideways"}, "data.state"),
        ("traffic.api.called", {"method": "GET", "route": "/", "status": 99, "duration_ms": 1}, "data.status"),
        ("health.ping", {"target": "h", "loss_pct": 101, "ok": True}, "data.loss_pct"),
    ],
)
def test_invalid_data_names_the_field(type_name, data, field):
    with pytest.raises(EventValidationError) as err:
        default_registry().validate(type_name, data)
    assert field in [e["field"] for e in err.value.errors]
    assert err.value.event_type == type_name


def test_unknown_types_pass_unless_strict():
    registry = default_registry()
    registry.validate("clowder.custom.thing", {"anything": [1, 2]})
    with pytest.raises(EventValidationError) as err:
        registry.validate("clowder.custom.thing", {"anything": 1}, strict=True)
    assert err.value.errors[0]["field"] == "type"
    with pytest.raises(EventValidationError) as err:
        registry.validate("clowder.custom.thing", [1, 2])
    assert err.value.errors[0]["field"] == "data"


@pytest.mark.parametrize("name", ["", "nodot", "Upper.Case", "a..b", "a.b.", "a b.c", "x." + "y" * 200, 5])
def test_bad_type_names_are_refused(name):
    with pytest.raises(EventValidationError) as err:
        default_registry().validate(name, {})
    assert err.value.errors[0]["field"] == "type"


def test_plugins_register_types_and_conflicts_are_refused():
    class Thing(BaseModel):
        size: int

    registry = TypeRegistry()
    registry.register("acme.thing.made", Thing)
    with pytest.raises(EventValidationError):
        registry.validate("acme.thing.made", {"size": "big"})
    with pytest.raises(ConfigurationError):
        registry.register("acme.thing.made", BaseModel)


def test_schema_export_is_json_schema_of_data():
    schema = default_registry().schema("storage.file.deleted")
    assert schema["title"] == "storage.file.deleted"
    assert set(schema["required"]) == {"file_id", "bytes"}
    # an upload may be announced before the file has an id (Clowder's upload events carry none)
    assert default_registry().schema("storage.file.uploaded")["required"] == ["bytes"]
    assert schema["additionalProperties"] is False
    assert set(BUILTIN_TYPES) <= set(default_registry().schemas())  # plus types of installed plugins
