"""Clowder's event-sink messages become CloudEvents of built-in types in the runtime's parse step."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sink_lib.errors import ConfigurationError, EventValidationError
from sink_lib.registry import default_registry
from sink_lib.settings import build_settings
from workers.errors import ClowderMessageError
from workers.plugin import WorkerSettings
from workers.runtime.batcher import Delivery
from workers.runtime.clowder import ClowderConverter, created_time
from workers.runtime.policy import parse_body, prepare

from . import clowder_messages as cm

CREATED_AT = datetime(2024, 12, 1, 0, 0, 0, 123000, tzinfo=UTC)

# The mapping table of the README, row by row: message -> (type, data, userid).
ROWS: list[tuple[str, dict[str, Any], str, dict[str, Any], str | None]] = [
    ("upload into a dataset", cm.upload(), "storage.file.uploaded", {"dataset_id": cm.DATASET, "bytes": 4096}, cm.USER),
    ("upload without a dataset", cm.upload(False), "storage.file.uploaded", {"bytes": 4096}, cm.USER),
    ("file download", cm.download_file(), "traffic.resource.downloaded",
     {"resource_id": cm.FILE, "resource_type": "file", "bytes": 4096}, cm.USER),
    ("dataset download", cm.download_dataset(), "traffic.resource.downloaded",
     {"resource_id": cm.DATASET, "resource_type": "dataset"}, cm.USER),
    ("file view", cm.view("file"), "activity.resource.viewed", {"resource_type": "file", "resource_id": cm.FILE},
     cm.USER),
    ("dataset view", cm.view("dataset"), "activity.resource.viewed",
     {"resource_type": "dataset", "resource_id": cm.DATASET}, cm.USER),
    ("collection view", cm.view("collection"), "activity.resource.viewed",
     {"resource_type": "collection", "resource_id": cm.COLLECTION}, cm.USER),
    ("space view", cm.view("space"), "activity.resource.viewed", {"resource_type": "space", "resource_id": cm.SPACE},
     cm.USER),
    ("anonymous view", cm.view("file", user=cm.ANONYMOUS), "activity.resource.viewed",
     {"resource_type": "file", "resource_id": cm.FILE}, None),
    ("file to extractor", cm.extraction("file"), "activity.extractor.submitted",
     {"extractor": "ncsa.wordcount", "resource_type": "file", "resource_id": cm.FILE}, cm.USER),
    ("dataset to extractor", cm.extraction("dataset"), "activity.extractor.submitted",
     {"extractor": "ncsa.wordcount", "resource_type": "dataset", "resource_id": cm.DATASET}, cm.USER),
    ("selection to extractor", cm.extraction("selection"), "activity.extractor.submitted",
     {"extractor": "ncsa.wordcount", "resource_type": "dataset", "resource_id": cm.DATASET}, cm.USER),
    ("signup", cm.signup(), "activity.user.signed_up", {}, cm.USER),
    ("login", cm.login(), "activity.user.logged_in", {}, cm.USER),
    ("archive", cm.archive(), "storage.file.archived", {"file_id": cm.FILE, "bytes": 4096}, cm.USER),
    ("unarchive", cm.archive("unarchive"), "storage.file.unarchived", {"file_id": cm.FILE, "bytes": 4096}, cm.USER),
]


@pytest.mark.parametrize(("row", "message", "type_", "data", "userid"), ROWS, ids=[r[0] for r in ROWS])
def test_each_row_of_the_mapping_table(row: str, message: dict[str, Any], type_: str, data: dict[str, Any],
                                       userid: str | None) -> None:
    # When a message Clowder sends reaches a worker
    event = parse_body(cm.body(message))
    # Then it is an event of the built-in type, with the row's data, from /clowder, at `created`
    assert (event.type, event.data, event.userid) == (type_, data, userid)
    assert event.source == "/clowder" and event.time == CREATED_AT
    default_registry().validate(event.type, event.data, strict=True)  # valid for the type's strict model


def test_every_kind_of_message_is_covered_by_the_table() -> None:
    assert {r[2] for r in ROWS} == {parse_body(cm.body(m)).type for m in cm.every_message()}


@pytest.mark.parametrize("message", cm.every_message(), ids=lambda m: f"{m['category']}/{m.get('type')}")
def test_names_are_dropped_by_default(message: dict[str, Any]) -> None:
    event = parse_body(cm.body(message))
    text = event.to_json().decode()
    for name in cm.NAMES:
        assert name not in text
    assert cm.AUTHOR not in text  # the author's id is a person's id too: only kept on request


def test_a_worker_can_opt_in_to_keep_names() -> None:
    converter = ClowderConverter(keep=["user_name", "resource_name"])
    event = parse_body(cm.body(cm.download_file()), converter)
    assert event.data["user_name"] == cm.USER_NAME and event.data["resource_name"] == cm.FILE_NAME
    assert "author_name" not in event.data


def test_the_opt_in_setting_names_the_variable_when_wrong() -> None:
    assert build_settings(WorkerSettings, clowder_keep=["author_id"]).clowder_keep == ["author_id"]
    with pytest.raises(ConfigurationError, match=r"EVENTSINK_WORKER_CLOWDER_KEEP: .*password cannot be kept"):
        build_settings(WorkerSettings, clowder_keep=["password"])


def test_the_id_is_derived_from_the_content() -> None:
    # the same message (even with its keys in another order) gets the same id in every worker
    message = cm.download_file()
    reordered = dict(reversed(list(message.items())))
    first, again = parse_body(cm.body(message)), parse_body(cm.body(reordered))
    assert first.id == again.id
    # a different event (a later one, or another user) gets another id
    assert parse_body(cm.body(cm.download_file(created=cm.CREATED + 1))).id != first.id
    assert parse_body(cm.body({**message, "user_id": cm.AUTHOR})).id != first.id


def test_the_id_is_the_rfc4122_name_based_uuid_of_the_canonical_json() -> None:
    message = cm.login()
    canonical = json.dumps(message, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    namespace = uuid.UUID("6f0c3b1e-5b1a-4c4e-9a57-2f1d0c7e8a11")
    expected = uuid.uuid5(namespace, canonical)
    assert parse_body(cm.body(message)).id == str(expected)
    unicode = {**message, "user_name": "Zoë 李"}  # non-ASCII text is hashed as UTF-8, not escaped
    canonical = json.dumps(unicode, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    namespace = uuid.UUID("6f0c3b1e-5b1a-4c4e-9a57-2f1d0c7e8a11")
    assert parse_body(cm.body(unicode)).id == str(uuid.uuid5(namespace, canonical))


def test_duplicates_in_a_batch_are_written_once() -> None:
    deliveries = [Delivery(tag, cm.body(cm.login()), None, False) for tag in (1, 2)]
    prepared = prepare(deliveries, lambda _event: True)
    assert len(prepared.events) == 1 and prepared.duplicates == 1 and not prepared.malformed


@pytest.mark.parametrize(
    ("created", "expected"),
    [
        (1_733_011_200_123, CREATED_AT),
        (1_733_011_200_123.0, CREATED_AT),
        ("2024-12-01T00:00:00.123Z", CREATED_AT),
        ("2024-12-01T01:00:00.123+01:00", CREATED_AT),
        ("2024-12-01T00:00:00.123", CREATED_AT),  # no offset: UTC
        (0, datetime(1970, 1, 1, tzinfo=UTC)),
    ],
)
def test_created_in_epoch_milliseconds_or_iso(created: Any, expected: datetime) -> None:
    assert created_time(created) == expected
    assert parse_body(cm.body(cm.login(created=created))).time == expected


@pytest.mark.parametrize(
    ("message", "field", "reason"),
    [
        ({**cm.login(), "created": None}, "created", "missing"),
        ({k: v for k, v in cm.login().items() if k != "created"}, "created", "missing"),
        ({**cm.login(), "created": "yesterday"}, "created", "not an ISO 8601 time"),
        ({**cm.login(), "created": -5}, "created", "out of range"),
        ({**cm.login(), "created": True}, "created", "epoch milliseconds or an ISO 8601 string"),
        ({**cm.upload(), "size": -1}, "size", "non-negative integer"),
        ({**cm.upload(), "size": "4096"}, "size", "non-negative integer"),
        ({**cm.view("file"), "resource_id": ""}, "resource_id", "non-empty string"),
        ({k: v for k, v in cm.extraction("file").items() if k != "extractor_name"}, "extractor_name", "missing"),
        ({**cm.view("file"), "type": "folder"}, "type", "'folder' has no mapping"),
        ({**cm.login(), "category": "delete"}, "category", "'delete' has no mapping"),
        ({**cm.login(), "category": 7}, "category", "must be a string"),
        ({**cm.login(), "user_id": 42}, "user_id", "must be a string"),
    ],
)
def test_clowder_messages_that_cannot_be_converted_say_which_key_and_why(message: dict[str, Any], field: str,
                                                                        reason: str) -> None:
    with pytest.raises(ClowderMessageError) as err:
        parse_body(cm.body(message))
    assert err.value.errors[0]["field"] == field
    assert reason in err.value.errors[0]["message"]


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"hello": "world"}', b'"category"', b"\xff\xfe"])
def test_garbage_is_dead_lettered_with_its_reason(body: bytes) -> None:
    # Given a batch with one good Clowder message and one body that is neither a CloudEvent nor Clowder's
    batch = [Delivery(1, cm.body(cm.login()), None, False), Delivery(2, body, None, False)]
    # When the runtime prepares it
    prepared = prepare(batch, lambda _event: True)
    # Then the good one is an event and the other is malformed, with both reasons
    assert [e.type for e in prepared.events.values()] == ["activity.user.logged_in"]
    [(delivery, reason)] = prepared.malformed
    assert delivery.tag == 2
    assert reason.startswith("malformed event: ") and "not a Clowder event-sink message" in reason


def test_a_cloudevent_with_a_category_in_its_data_stays_a_cloudevent() -> None:
    envelope = {"specversion": "1.0", "id": "e1", "source": "/app", "type": "acme.thing.done",
                "time": "2024-12-01T00:00:00Z", "data": {"category": "upload"}, "category": "upload"}
    event = parse_body(json.dumps(envelope).encode())
    assert (event.id, event.type) == ("e1", "acme.thing.done")


_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
_values = st.recursive(
    _scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
_keys = st.sampled_from(["category", "type", "resource_id", "dataset_id", "user_id", "extractor_name", "size",
                         "created", "user_name", "specversion"]) | st.text(max_size=8)
_clowderish = st.fixed_dictionaries(
    {"category": st.sampled_from(["upload", "download", "view_resource", "extraction", "user_activity", "archive",
                                  "unarchive", "other"]) | _scalars},
    optional={"type": st.sampled_from(["file", "dataset", "collection", "space", "selection", "signup", "login"])
              | _scalars, "created": st.integers() | st.floats() | st.text(max_size=40) | _scalars},
).flatmap(lambda base: st.dictionaries(_keys, _values, max_size=6).map(lambda extra: {**extra, **base}))


@settings(max_examples=400, deadline=None)
@given(message=_clowderish)
def test_fuzz_the_recogniser_raises_only_its_own_error(message: dict[str, Any]) -> None:
    try:
        body = json.dumps(message).encode()
    except ValueError:
        return
    try:
        event = parse_body(body, ClowderConverter(keep=["user_name"]))
    except EventValidationError:  # ClowderMessageError, or the CloudEvent error for what is not Clowder's
        return
    default_registry().validate(event.type, {k: v for k, v in event.data.items() if k != "user_name"}, strict=True)


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_fuzz_any_bytes_are_an_event_or_a_validation_error(body: bytes) -> None:
    try:
        event = parse_body(body)
    except EventValidationError as exc:
        assert exc.errors and all(e["field"] and e["message"] for e in exc.errors)  # a reason, naming a field
        return
    assert event.id and event.type  # a body that parses is a complete event


def test_the_worker_setting_decides_what_its_plugin_receives(monkeypatch: pytest.MonkeyPatch) -> None:
    from workers.runtime import Backoff, BatchProcessor, WorkerMetrics, build_plugin

    from .plugins import MemoryWorker

    def written(**settings: Any) -> dict[str, Any]:
        plugin = build_plugin(MemoryWorker, **settings)
        assert isinstance(plugin, MemoryWorker)
        processor = BatchProcessor(plugin, WorkerMetrics("memory"), Backoff(1.0, 2.0), ack=lambda _tags: None,
                                   dead_letter=lambda _d, _r: None, wait=lambda _s: True)
        processor.process([Delivery(1, cm.body(cm.download_file()), None, False)])
        [event] = plugin.stored.values()
        return event.data

    # Given the default settings, the plugin gets no names
    assert set(written()) == {"resource_id", "resource_type", "bytes"}
    # When the operator opts in through the worker's variable, it gets the names listed there
    monkeypatch.setenv("EVENTSINK_MEMORY_CLOWDER_KEEP", '["resource_name", "author_id"]')
    data = written()
    assert (data["resource_name"], data["author_id"]) == (cm.FILE_NAME, cm.AUTHOR)
    assert "user_name" not in data and "author_name" not in data
