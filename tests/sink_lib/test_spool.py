"""The durable spool: order, limits, claims across processes, and recovery after a kill."""

from __future__ import annotations

import multiprocessing
import os
import stat
import time
from pathlib import Path

import pytest

from sink_lib.errors import SpoolError, SpoolFullError
from sink_lib.spool import Spool


def records(n: int, start: int = 0, size: int = 10) -> list[tuple[str, bytes]]:
    return [(f"id{i}", f"{i:0{size}d}".encode()) for i in range(start, start + n)]


def test_records_come_back_oldest_first_and_ack_removes_them(tmp_path: Path):
    spool = Spool(tmp_path, 1 << 20)
    spool.append(records(5))
    spool.append(records(5, start=5))
    got = spool.claim(7)
    assert [r.id for r in got] == [f"id{i}" for i in range(7)]
    spool.ack([r.seq for r in got])
    assert [r.id for r in spool.claim(10)] == ["id7", "id8", "id9"]
    assert spool.count() == 3


def test_released_records_are_claimed_again_in_order(tmp_path: Path):
    spool = Spool(tmp_path, 1 << 20)
    spool.append(records(3))
    first = spool.claim(3)
    spool.release([r.seq for r in first])
    assert [r.id for r in spool.claim(3)] == ["id0", "id1", "id2"]


def test_records_survive_reopening(tmp_path: Path):
    Spool(tmp_path, 1 << 20).append(records(3))
    assert [r.body for r in Spool(tmp_path, 1 << 20).claim(10)] == [b for _, b in records(3)]


def test_size_limit_refuses_the_whole_append_and_keeps_earlier_records(tmp_path: Path):
    spool = Spool(tmp_path, 100)
    spool.append(records(9))  # 90 bytes
    with pytest.raises(SpoolFullError, match="EVENTSINK_SPOOL_MAX_BYTES"):
        spool.append(records(2, start=9))
    assert spool.count() == 9 and spool.size_bytes() == 90
    spool.ack([r.seq for r in spool.claim(5)])
    assert spool.size_bytes() == 40
    spool.append(records(2, start=9))  # room again
    assert spool.count() == 6


def test_unwritable_directory_is_a_spool_error(tmp_path: Path):
    if os.geteuid() == 0:
        target = Path("/proc/eventsink-spool-test")  # not creatable, even for root
    else:
        target = tmp_path / "ro"
        target.mkdir()
        target.chmod(stat.S_IRUSR | stat.S_IXUSR)
    with pytest.raises(SpoolError):
        Spool(target, 1 << 20).append(records(1))


def test_claims_of_one_reader_are_invisible_to_another(tmp_path: Path):
    a, b = Spool(tmp_path, 1 << 20), Spool(tmp_path, 1 << 20)
    a.append(records(4))
    got_a = a.claim(2)
    got_b = b.claim(10)
    assert {r.id for r in got_a}.isdisjoint({r.id for r in got_b})
    assert len(got_a) + len(got_b) == 4


def _claim_and_die(path: str) -> None:
    try:
        claimed = len(Spool(path, 1 << 20).claim(10))
    except BaseException:
        os._exit(100)
    os._exit(claimed)  # the exit code says how many it held; no cleanup: like a kill -9


def test_claims_of_a_dead_process_return_to_the_pool(tmp_path: Path):
    # Given a process that claimed all three records and died holding them
    spool = Spool(tmp_path, 1 << 20)
    spool.append(records(3))
    child = multiprocessing.get_context("fork").Process(target=_claim_and_die, args=(str(tmp_path),))
    child.start()
    child.join(30)
    assert child.exitcode == 3, f"the child should have claimed the 3 records (exit code {child.exitcode})"
    # Then the records are claimable again, in order
    assert [r.id for r in Spool(tmp_path, 1 << 20).claim(10)] == ["id0", "id1", "id2"]


def test_expired_claims_return_to_the_pool(tmp_path: Path):
    a = Spool(tmp_path, 1 << 20, lease_s=0.0)
    a.append(records(2))
    a.claim(2)
    assert len(Spool(tmp_path, 1 << 20, lease_s=0.0).claim(10)) == 2


def test_a_child_forked_while_the_lock_is_held_can_still_spool(tmp_path: Path):
    # Given a spool whose lock another thread holds at the moment of fork()
    spool = Spool(tmp_path, 1 << 20)
    spool.append(records(1))
    spool._lock.acquire()
    try:
        pid = os.fork()
        if pid == 0:  # the child: the holder thread does not exist here
            try:
                spool.append(records(1, start=1))
                os._exit(0 if spool.count() == 2 else 1)
            except BaseException:
                os._exit(2)
        status = _wait_or_kill(pid, 20.0)
    finally:
        spool._lock.release()
    # Then the child wrote, instead of waiting forever on the inherited lock
    assert status == 0, "the child hung on the lock it inherited" if status is None else status
    assert spool.count() == 2


def _wait_or_kill(pid: int, timeout: float) -> int | None:
    """The child's exit code, or None after killing it when it has not exited within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return None


def test_writers_of_every_process_queue_on_the_spools_lock_file(tmp_path: Path) -> None:
    # Given another process holding the spool's writer lock (as one does for each write transaction)
    import subprocess
    import sys
    import threading

    spool = Spool(tmp_path, 1 << 20)
    spool.append([("first", b"{}")])
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, sys\n"
         f"f = open({str(tmp_path / 'spool.sqlite3.lock')!r}, 'r+b')\n"
         "fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.readline()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        # When this process appends meanwhile
        done = threading.Event()
        writer = threading.Thread(target=lambda: (spool.append([("second", b"{}")]), done.set()))
        writer.start()
        # Then it waits for the lock rather than racing SQLite's busy loop (a wait can only be longer)
        assert not done.wait(0.3)
        assert holder.stdin is not None
        holder.stdin.write("go\n")
        holder.stdin.flush()
        # and writes as soon as the holder lets go
        assert done.wait(10)
        writer.join()
        assert [r.id for r in spool.claim(10)] == ["first", "second"]
    finally:
        holder.kill()
        holder.wait()
        spool.close()


def test_a_writer_that_never_lets_go_makes_writes_fail_not_hang(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import fcntl

    import sink_lib.spool

    spool = Spool(tmp_path, 1 << 20)
    spool.append([("first", b"{}")])
    monkeypatch.setattr(sink_lib.spool, "WRITE_LOCK_TIMEOUT_S", 0.2)
    with open(tmp_path / "spool.sqlite3.lock", "r+b") as other:  # another open file: its own flock
        fcntl.flock(other, fcntl.LOCK_EX)
        with pytest.raises(SpoolError, match="another writer held the spool"):
            spool.append([("second", b"{}")])
    spool.append([("third", b"{}")])
    assert [r.id for r in spool.claim(10)] == ["first", "third"]
    spool.close()
