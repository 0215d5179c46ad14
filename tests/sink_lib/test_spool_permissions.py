"""The spool is private: directory 0700, files 0600, and no directory another user could swap."""

from __future__ import annotations

import fcntl
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sink_lib import EventSink, SinkSettings
from sink_lib.errors import ConfigurationError, SpoolError, UnsafeSpoolDirError
from sink_lib.private_dir import make_private_file, tighten_file_mode
from sink_lib.spool import Spool

NOWHERE = "amqp://guest:guest@127.0.0.1:1/%2F"
OTHER_UID = 65534  # "nobody"
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="giving a folder to another user needs root")


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    old = os.umask(0o022)  # the usual default: files 0644, folders 0755 unless asked otherwise
    yield
    os.umask(old)


def test_new_spool_directory_is_0700_and_its_files_0600(tmp_path: Path, loose_umask: None):
    # Given a spool directory that does not exist yet, two levels deep
    spool = Spool(tmp_path / "state" / "spool", 1 << 20)
    # When events are written and read (SQLite creates its -wal and -shm files)
    spool.append([("a", b"{}"), ("b", b"{}")])
    spool.ack(r.seq for r in spool.claim(1))
    # Then the folders it created are 0700 and every file in the spool is 0600
    assert mode(tmp_path / "state") == 0o700 and mode(tmp_path / "state" / "spool") == 0o700
    files = sorted(p.name for p in (tmp_path / "state" / "spool").iterdir())
    assert files == ["spool.sqlite3", "spool.sqlite3-shm", "spool.sqlite3-wal", "spool.sqlite3.lock"]
    assert {p.name: mode(p) for p in (tmp_path / "state" / "spool").iterdir()} == dict.fromkeys(files, 0o600)
    spool.close()


def test_a_spool_left_readable_by_others_is_tightened(tmp_path: Path, loose_umask: None):
    # Given a spool of ours whose folder and database others can read
    folder = tmp_path / "spool"
    Spool(folder, 1 << 20).append([("a", b"{}")])
    folder.chmod(0o755)
    (folder / "spool.sqlite3").chmod(0o644)
    # When it is opened again
    assert Spool(folder, 1 << 20).count() == 1
    # Then only its owner can read it
    assert mode(folder) == 0o700 and mode(folder / "spool.sqlite3") == 0o600


def test_a_world_writable_folder_without_sticky_bit_is_refused(tmp_path: Path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(UnsafeSpoolDirError, match="EVENTSINK_SPOOL_DIR") as err:
        Spool(shared / "eventsink" / "spool", 1 << 20).append([("a", b"{}")])
    assert "every user can write" in str(err.value)
    assert not (shared / "eventsink").exists()  # nothing was created there


@as_root
def test_a_folder_another_user_made_in_a_shared_tmp_is_refused(tmp_path: Path):
    # Given a /tmp-like folder (world-writable, sticky) where another user created "eventsink" first
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    tmp.chmod(0o1777)
    squatted = tmp / "eventsink"
    squatted.mkdir(mode=0o755)
    os.chown(squatted, OTHER_UID, OTHER_UID)
    # When a sink is created with its spool there (the fallback when the home directory is read-only)
    settings = SinkSettings(amqp_url=NOWHERE, exchange="x", spool_dir=squatted / "spool")
    # Then it refuses at once with an error naming the variable to set, and writes nothing there
    with pytest.raises(UnsafeSpoolDirError, match="EVENTSINK_SPOOL_DIR") as err:
        EventSink(settings=settings)
    assert f"uid {OTHER_UID}" in str(err.value)
    assert isinstance(err.value, ConfigurationError) and isinstance(err.value, SpoolError)
    assert list(squatted.iterdir()) == []


@as_root
def test_a_spool_directory_owned_by_another_user_is_refused(tmp_path: Path):
    folder = tmp_path / "spool"
    folder.mkdir(mode=0o700)
    os.chown(folder, OTHER_UID, OTHER_UID)
    with pytest.raises(UnsafeSpoolDirError, match=f"belongs to uid {OTHER_UID}.*EVENTSINK_SPOOL_DIR"):
        Spool(folder, 1 << 20).count()


def test_a_sticky_shared_folder_with_our_own_subfolder_is_accepted(tmp_path: Path, loose_umask: None):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    tmp.chmod(0o1777)
    spool = Spool(tmp / "eventsink" / "spool", 1 << 20)
    spool.append([("a", b"{}")])
    assert spool.count() == 1 and mode(tmp / "eventsink") == 0o700
    spool.close()


def _locked_by_another_process(path: Path) -> bool:
    """True when a child process cannot take a write lock on ``path`` (someone holds a POSIX lock)."""
    code = ("import fcntl, os, sys\n"
            f"fd = os.open({str(path)!r}, os.O_RDWR)\n"
            "try:\n"
            "    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
            "except OSError:\n"
            "    sys.exit(3)\n")
    return subprocess.run([sys.executable, "-c", code], check=False).returncode == 3


def test_tightening_a_file_keeps_the_locks_this_process_holds_on_it(tmp_path: Path) -> None:
    # Given a file this process holds a POSIX lock on (as SQLite does on a spool's -shm file)
    path = tmp_path / "spool.sqlite3-shm"
    path.write_bytes(b"x" * 64)
    path.chmod(0o644)
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX)
        assert _locked_by_another_process(path)
        # When its mode is tightened and it is "created" again
        tighten_file_mode(path)
        make_private_file(path)
        # Then it is 0600 and still locked: closing any descriptor of it would have dropped the lock
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert _locked_by_another_process(path)
    finally:
        os.close(fd)


def test_a_missing_file_is_created_0600(tmp_path: Path) -> None:
    make_private_file(tmp_path / "new.sqlite3")
    assert stat.S_IMODE((tmp_path / "new.sqlite3").stat().st_mode) == 0o600
