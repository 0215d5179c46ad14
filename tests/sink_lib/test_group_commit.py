"""Group commit into the spool: concurrent callers share a transaction, and nobody is told "stored"
unless their own events are on disk."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from sink_lib import EventSink, SinkSettings
from sink_lib.errors import PublishTimeout, SpoolFullError
from sink_lib.groupcommit import GroupCommitSpool
from sink_lib.spool import Spool

NOWHERE = "amqp://guest:guest@127.0.0.1:1/%2F"


class GatedSpool(Spool):
    """A real spool whose appends wait at a gate, so a test decides when a commit may finish."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        super().__init__(directory, max_bytes)
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.appends: list[int] = []

    def append(self, records: Sequence[tuple[str, bytes]]) -> None:
        self.entered.set()
        self.gate.wait()
        self.appends.append(len(records))
        super().append(records)


def records(prefix: str, count: int, size: int = 10) -> list[tuple[str, bytes]]:
    return [(f"{prefix}-{i}", b"x" * size) for i in range(count)]


def spooled_ids(spool: Spool) -> set[str]:
    return {r.id for r in spool.claim(10_000)}


def wait_until(condition, what: str) -> None:
    done = threading.Event()
    for _ in range(3000):  # up to about 30 s, checked every 10 ms
        if condition():
            return
        done.wait(0.01)
    raise AssertionError(f"timed out waiting until {what}")


def start_caller(group: GroupCommitSpool, recs, outcome: dict, wait: float = 30.0) -> threading.Thread:
    def run() -> None:
        try:
            group.append(recs, wait)
            outcome[recs[0][0]] = "stored"
        except Exception as exc:  # the test inspects what each caller got
            outcome[recs[0][0]] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_callers_arriving_during_a_commit_share_the_next_transaction(tmp_path: Path):
    spool = GatedSpool(tmp_path, 1 << 20)
    group = GroupCommitSpool(spool)
    outcome: dict = {}
    first = start_caller(group, records("first", 2), outcome)
    wait_until(spool.entered.is_set, "the first commit started")
    others = [start_caller(group, records(f"c{i}", 3), outcome) for i in range(5)]
    wait_until(lambda: len(group._queue) == 5, "five callers are waiting")
    spool.gate.set()
    for thread in [first, *others]:
        thread.join(30)
    assert set(outcome.values()) == {"stored"}
    assert spool.appends == [2, 15]  # one transaction for the first caller, one for the five others
    assert len(spooled_ids(spool)) == 17


def test_a_full_spool_refuses_only_the_callers_whose_events_do_not_fit(tmp_path: Path):
    spool = GatedSpool(tmp_path, 250)  # room for 25 events of 10 bytes
    group = GroupCommitSpool(spool)
    outcome: dict = {}
    blocker = start_caller(group, records("first", 1), outcome)
    wait_until(spool.entered.is_set, "the first commit started")
    small = start_caller(group, records("small", 4), outcome)
    wait_until(lambda: len(group._queue) == 1, "the small caller is waiting")
    big = start_caller(group, records("big", 30), outcome)
    wait_until(lambda: len(group._queue) == 2, "both callers are waiting")
    spool.gate.set()
    for thread in (blocker, small, big):
        thread.join(30)
    assert outcome["first-0"] == "stored"
    assert outcome["small-0"] == "stored"
    assert isinstance(outcome["big-0"], SpoolFullError)
    ids = spooled_ids(spool)
    assert {"small-0", "small-3", "first-0"} <= ids
    assert not any(i.startswith("big") for i in ids)


def test_a_caller_that_times_out_before_its_commit_is_not_written(tmp_path: Path):
    spool = GatedSpool(tmp_path, 1 << 20)
    group = GroupCommitSpool(spool)
    outcome: dict = {}
    blocker = start_caller(group, records("first", 1), outcome)
    wait_until(spool.entered.is_set, "the first commit started")
    with pytest.raises(PublishTimeout, match="nothing written"):
        group.append(records("late", 3), 0.2)
    spool.gate.set()
    blocker.join(30)
    assert spooled_ids(spool) == {"first-0"}


def test_spool_submit_stores_durably_and_counts_spooled_when_the_broker_is_away(tmp_path: Path):
    settings = SinkSettings(amqp_url=NOWHERE, exchange="offline", spool_dir=tmp_path, reconnect_min_s=30.0,
                            reconnect_max_s=30.0)
    sink = EventSink(settings=settings)
    try:
        events = [sink.prepare("custom.tick", {"i": i}) for i in range(10)]
        sink.spool_submit(events, wait=30)
        # durable as soon as the call returns: a second handle on the file sees every event
        assert spooled_ids(Spool(tmp_path, 1 << 30)) == {e.id for e in events}
        stats = sink.stats()
        assert (stats["emitted"], stats["spooled"]) == (10, 10)
    finally:
        sink.close(timeout=1)
