"""The CloudEvents envelope: building, encoding, parsing, and the errors a caller sees."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from sink_lib.errors import EventValidationError
from sink_lib.event import Event, build_envelope, encode, format_time, new_id, now_rfc3339, parse_time


def test_envelope_has_every_required_cloudevents_attribute():
    # Given a new event
    env = build_envelope("storage.file.uploaded", {"file_id": "f1", "bytes": 1}, source="/clowder/web",
                         subject="file/f1", userid="u1", region="us-east")
    # Then it carries the CloudEvents 1.0 attributes and our extensions
    assert env["specversion"] == "1.0"
    assert env["datacontenttype"] == "application/json"
    assert env["source"] == "/clowder/web"
    assert env["subject"] == "file/f1" and env["userid"] == "u1" and env["region"] == "us-east"
    assert uuid.UUID(env["id"]).version == 4
    assert parse_time(env["time"]).tzinfo is not None


def test_ids_are_unique_uuid4():
    ids = {new_id() for _ in range(20000)}
    assert len(ids) == 20000
    assert all(uuid.UUID(i).version == 4 and uuid.UUID(i).variant == uuid.RFC_4122 for i in list(ids)[:100])


def test_generated_ids_do_not_follow_the_random_module_state():
    # Given the random module put back into the same state (seeded, or as a fork inherits it)
    import random

    random.seed(1234)
    first = new_id()
    random.seed(1234)
    second = new_id()
    # Then ids still differ: they come from the operating system's cryptographic source
    assert first != second


def test_ids_drawn_from_many_threads_at_once_are_unique() -> None:
    # ids come from a shared block of random bytes: no two threads may get the same chunk
    import threading

    drawn: list[list[str]] = [[] for _ in range(8)]
    start = threading.Barrier(8)

    def draw(out: list[str]) -> None:
        start.wait()
        out.extend(new_id() for _ in range(5000))

    threads = [threading.Thread(target=draw, args=(out,)) for out in drawn]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = [i for out in drawn for i in out]
    assert len(set(everything)) == len(everything) == 40000


def test_a_forked_child_never_reuses_the_ids_its_parent_has_buffered() -> None:
    import os

    new_id()  # the parent now holds a block of random bytes
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its first ids go to the parent through the pipe
        os.close(read)
        os.write(write, ",".join(new_id() for _ in range(50)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child_ids = set(pipe.read().split(","))
    os.waitpid(pid, 0)
    parent_ids = {new_id() for _ in range(50)}
    assert len(child_ids) == 50 and not child_ids & parent_ids


def test_time_is_rfc3339_utc_with_z():
    stamp = now_rfc3339()
    assert stamp.endswith("Z") and "T" in stamp
    assert abs(parse_time(stamp) - datetime.now(UTC)) < timedelta(seconds=2)
    local = datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=timezone(timedelta(hours=2)))
    assert format_time(local) == "2026-01-02T01:04:05.006000Z"


@pytest.mark.parametrize(("year", "written"), [(1, "0001"), (999, "0999"), (1000, "1000"), (2026, "2026")])
def test_years_are_written_with_four_digits(year: int, written: str) -> None:
    # RFC 3339: date-fullyear = 4DIGIT
    assert format_time(datetime(year, 3, 4, 5, 6, 7, 8, tzinfo=UTC)) == f"{written}-03-04T05:06:07.000008Z"
    env = build_envelope("a.b", {}, source="/s", time=f"{written}-03-04T05:06:07Z")
    assert env["time"] == f"{written}-03-04T05:06:07.000000Z"


def test_an_extension_name_with_a_trailing_newline_is_refused():
    body = {"id": "1", "source": "/s", "type": "a.b", "time": "2026-01-01T00:00:00Z", "data": {}, "abc\n": 1}
    with pytest.raises(EventValidationError):
        Event.parse(json.dumps(body))


def test_naive_time_is_refused():
    with pytest.raises(EventValidationError) as err:
        build_envelope("a.b", {}, source="/s", time="2026-01-01T00:00:00")
    assert err.value.errors[0]["field"] == "time"


@pytest.mark.parametrize(
    ("data", "field", "reason"),
    [
        ({"a": float("nan")}, "data.a", "not a JSON number"),
        ({"a": [1, {"b": float("inf")}]}, "data.a[1].b", "not a JSON number"),
        ({"a": {1, 2}}, "data.a", "set is not JSON-serialisable"),
        ({"a": datetime.now(UTC)}, "data.a", "datetime is not JSON-serialisable"),
        ({"a": object()}, "data.a", "object is not JSON-serialisable"),
        ({"a": 2**70}, "data.a", "64-bit"),
        ({3: "x"}, "data", "key 3 is not a string"),
    ],
)
def test_unserialisable_data_names_the_field(data, field, reason):
    with pytest.raises(EventValidationError) as err:
        encode(build_envelope("a.b", data, source="/s"), 1 << 20)
    assert err.value.errors == [{"field": field, "message": err.value.errors[0]["message"]}]
    assert reason in err.value.errors[0]["message"]


def test_oversize_event_is_refused_with_its_size():
    with pytest.raises(EventValidationError) as err:
        encode(build_envelope("a.b", {"blob": "x" * 5000}, source="/s"), 4096)
    assert "limit is 4096" in str(err.value)


def test_encoded_body_is_compact_json_and_round_trips():
    env = build_envelope("a.b", {"x": 1.5, "s": "é"}, source="/s")
    body = encode(env, 1 << 20)
    assert json.loads(body) == env
    assert b" " not in body.replace(b"\xc3\xa9", b"")
    event = Event.parse(body)
    assert event.to_json() == body
    assert event.family == "a"


def test_parse_names_each_bad_field():
    with pytest.raises(EventValidationError) as err:
        Event.parse(b'{"specversion":"1.0","id":"","type":"Bad Type","time":"yesterday","data":[]}')
    fields = {e["field"] for e in err.value.errors}
    assert {"id", "source", "type", "time", "data"} <= fields


@pytest.mark.parametrize("raw", [b"not json", b"[1,2]", b"\xff\xfe"])
def test_parse_refuses_non_objects(raw):
    with pytest.raises(EventValidationError) as err:
        Event.parse(raw)
    assert err.value.errors[0]["field"] == "body"


def test_extension_attributes_follow_cloudevents_naming():
    base = build_envelope("a.b", {}, source="/s")
    assert Event.parse({**base, "traceparent": "00-abc"}).model_extra == {"traceparent": "00-abc"}
    with pytest.raises(EventValidationError):
        Event.parse({**base, "Bad_Name": "x"})
    with pytest.raises(EventValidationError):
        Event.parse({**base, "nested": {"a": 1}})


def test_parse_takes_dicts_and_bodies_alike_even_with_big_integers():
    env = build_envelope("a.b", {"huge": 2**70}, source="/s")
    from_dict = Event.parse(env)
    from_body = Event.parse(json.dumps(env).encode())
    assert from_dict.data["huge"] == from_body.data["huge"] == 2**70
