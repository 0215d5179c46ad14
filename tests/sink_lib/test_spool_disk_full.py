"""A spool on a disk that fills up: loud errors, the caller refused, nothing accepted lost."""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sink_lib import EventSink, SinkSettings
from sink_lib.errors import QueueFullError
from sink_lib.spool import Spool
from tests.support import not_here


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs (needs root, as in CI)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0:
        not_here("mounting a tmpfs needs root")
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True)
    if result.returncode != 0:
        not_here(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_refuses_new_events_loudly_and_keeps_accepted_ones(tiny_disk: Path, caplog):
    caplog.set_level(logging.ERROR)
    filler = tiny_disk / "filler"
    filler.write_bytes(b"\0" * 1_700_000)  # leaves room for only part of what we emit
    settings = SinkSettings(amqp_url="amqp://guest:guest@127.0.0.1:1/%2F", exchange="x", spool_dir=tiny_disk,
                            max_queue=100, reconnect_min_s=60, reconnect_max_s=60)
    sink = EventSink(settings=settings)
    accepted, refused = [], 0
    # When far more is emitted than the disk holds, with the broker away
    for i in range(600):
        try:
            accepted.append(sink.enqueue("custom.blob", {"i": i, "pad": "x" * 2000}).id)
        except QueueFullError:
            refused += 1
        time.sleep(0.001)
    # Then callers were refused, loudly, and counted
    assert refused > 0
    assert sink.stats()["failed"] == refused
    assert "full" in caplog.text.lower()
    # and every accepted event is on disk or still held in memory: none lost
    stats = sink.stats()
    on_disk = Spool(tiny_disk, 1 << 30).count()
    assert on_disk + stats["queued"] == len(accepted)
    assert stats["queued"] > 0  # the disk could not take them all
    # When space is freed, the held events reach the spool
    filler.unlink()
    assert sink.flush(30)
    assert Spool(tiny_disk, 1 << 30).count() == len(accepted)
    sink.close(1)
