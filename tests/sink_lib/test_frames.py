"""The direct frame encoder produces exactly the bytes pika's own marshalling does."""

from __future__ import annotations

import pika
import pytest
from pika import frame, spec

from sink_lib.frames import PublishEncoder
from sink_lib.publisher import amqp_properties


def pika_bytes(channel: int, exchange: str, event_id: str, event_type: str, ts: int, body: bytes,
               body_max: int) -> bytes:
    props = amqp_properties(event_id, event_type, ts)
    out = [frame.Method(channel, spec.Basic.Publish(exchange=exchange, routing_key="", mandatory=False)).marshal(),
           frame.Header(channel, len(body), props).marshal()]
    for start in range(0, len(body), body_max):
        out.append(frame.Body(channel, body[start:start + body_max]).marshal())
    return b"".join(out)


@pytest.mark.parametrize(("channel", "exchange", "event_type", "body", "body_max"), [
    (1, "events", "storage.file.uploaded", b"x" * 1000, 131064),
    (7, "ex.with.dots", "a.b", b"", 131064),
    (1, "events", "health.http", "é".encode() * 50_000, 4088),  # several body frames
    (65535, "e" * 255, "t" * 128 + ".x", b"{}", 131064),
])
def test_encoder_matches_pika(channel, exchange, event_type, body, body_max):
    encoder = PublishEncoder(channel, exchange, body_max)
    args = ("0b5b4c52-98d4-4a6e-9c3c-0c8c7ea1b3a1", event_type, 1763712000, body)
    assert encoder.encode(*args) == pika_bytes(channel, exchange, *args, body_max=body_max)


def test_properties_decode_as_the_contract_says():
    props = amqp_properties("id-1", "a.b", 42)
    assert isinstance(props, pika.BasicProperties)
    assert (props.content_type, props.delivery_mode, props.message_id, props.type, props.timestamp) == (
        "application/cloudevents+json", 2, "id-1", "a.b", 42)


def test_too_long_short_strings_are_refused():
    with pytest.raises(ValueError, match="255"):
        PublishEncoder(1, "e" * 256, 1000)
