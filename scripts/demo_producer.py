"""A demo producer: emits a steady stream of Clowder-like events through sink_lib.

Usage: python scripts/demo_producer.py [--rate 5] [--seconds 0 (forever)]
"""

from __future__ import annotations

import argparse
import random
import signal
import time

from sink_lib import EventSink

EXTRACTORS = ["ncsa.image.preview", "ncsa.audio.speech2text", "ncsa.geotiff.metadata"]
USERS = [f"user-{i:03d}" for i in range(25)]


def one_event(sink: EventSink, files: list[tuple[str, int]]) -> None:
    """Emit one random, realistic event."""
    user = random.choice(USERS)
    roll = random.random()
    if roll < 0.25 or not files:
        file_id, size = f"file-{random.getrandbits(40):010x}", random.randint(1_000, 50_000_000)
        files.append((file_id, size))
        sink.enqueue("storage.file.uploaded", {"file_id": file_id, "dataset_id": f"ds-{random.randint(1, 40)}",
                                            "bytes": size}, userid=user, subject=f"file/{file_id}")
    elif roll < 0.32:
        file_id, size = files.pop(random.randrange(len(files)))
        sink.enqueue("storage.file.deleted", {"file_id": file_id, "bytes": size}, userid=user)
    elif roll < 0.60:
        sink.enqueue("traffic.page.viewed", {"url": f"/datasets/ds-{random.randint(1, 40)}",
                                          "resource_type": "dataset"}, userid=user)
    elif roll < 0.72:
        file_id, size = random.choice(files)
        sink.enqueue("traffic.resource.downloaded", {"resource_id": file_id, "resource_type": "file", "bytes": size},
                  userid=user)
    elif roll < 0.80:
        sink.enqueue("activity.resource.viewed", {"resource_type": "file", "resource_id": random.choice(files)[0]},
                  userid=user)
    else:
        extractor = random.choice(EXTRACTORS)
        outcome = "extraction.failed" if random.random() < 0.1 else "extraction.finished"
        sink.enqueue(outcome, {"extractor": extractor, "file_id": random.choice(files)[0],
                            "duration_s": round(random.uniform(0.2, 30), 2)}, userid=user)


def main() -> None:
    parser = argparse.ArgumentParser(description="Emit demo events.")
    parser.add_argument("--rate", type=float, default=5.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=0.0, help="stop after this long (0: run until stopped)")
    args = parser.parse_args()
    stop = False

    def on_signal(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    files: list[tuple[str, int]] = []
    started = time.monotonic()
    with EventSink() as sink:
        while not stop and (not args.seconds or time.monotonic() - started < args.seconds):
            one_event(sink, files)
            time.sleep(1.0 / args.rate)


if __name__ == "__main__":
    main()
