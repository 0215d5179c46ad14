"""A local durable spool: SQLite, fsync'd on every append, shared safely by processes on one host.

Events wait here while RabbitMQ (or, for monitors, the emergency API) cannot take them, and are given
back oldest first. A reader *claims* records before sending and *acks* them once delivered, so several
processes replaying one spool never send a record twice at once; claims of a process that died (or
that are older than ``lease_s``) are returned to the pool, so a killed process's events are replayed by
the next one.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import threading
import time
import uuid
import weakref
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

from .errors import SpoolError, SpoolFullError
from .private_dir import ensure_private_dir, make_private_file, tighten_file_mode

log = logging.getLogger(__name__)
_spools: weakref.WeakSet[Spool] = weakref.WeakSet()

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    body BLOB NOT NULL,
    type TEXT,
    timestamp INTEGER,
    size INTEGER NOT NULL,
    created REAL NOT NULL,
    owner TEXT,
    claimed_at REAL
);
CREATE INDEX IF NOT EXISTS events_owner ON events (owner, seq);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (key, value) VALUES ('bytes', 0);
"""


# What a writer hands to append(): (id, body), or (id, body, type, timestamp) when the AMQP ``type`` and
# ``timestamp`` are known, so replay publishes without parsing bodies again.
SpoolEntry = tuple[str, bytes] | tuple[str, bytes, str, int]


class SpoolRecord(NamedTuple):
    """One spooled event: its position, id, serialised body and, when stored, AMQP type and timestamp."""

    seq: int
    id: str
    body: bytes
    type: str | None = None
    timestamp: int | None = None


class Spool:
    """A FIFO of serialised events in ``<directory>/<name>.sqlite3``."""

    def __init__(self, directory: Path | str, max_bytes: int, name: str = "spool", lease_s: float = 300.0):
        self.path = Path(directory) / f"{name}.sqlite3"
        self.max_bytes = max_bytes
        self.lease_s = lease_s
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._writers: int | None = None  # descriptor of <path>.lock, flock'ed around write transactions
        self._pid = 0
        self._owner = ""
        _spools.add(self)

    def check_directory(self) -> None:
        """Create the spool's directory (0700) now; raise UnsafeSpoolDirError if others could tamper with it.

        A directory that cannot be created is only logged here: the spool reports it when first used.
        """
        try:
            ensure_private_dir(self.path.parent)
        except OSError as exc:
            log.warning("spool directory %s cannot be created: %s", self.path.parent, exc)

    def _after_fork(self) -> None:
        # A thread of the parent may have held the lock at fork(): the child starts with a fresh one,
        # and must not touch the parent's SQLite handle (it opens its own on first use).
        self._lock = threading.Lock()
        self._conn = None
        if self._writers is not None:  # shared with the parent: a lock on it would be the parent's too
            with contextlib.suppress(OSError):
                os.close(self._writers)
            self._writers = None

    # -- connection ----------------------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        # A SQLite handle must not cross fork(): a child opens its own.
        if self._conn is None or self._pid != os.getpid():
            self._pid = os.getpid()
            self._owner = f"{self._pid}:{uuid.uuid4().hex[:8]}"
            try:
                ensure_private_dir(self.path.parent)
                make_private_file(self.path)  # SQLite gives its -wal and -shm files the same mode
                conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                conn.executescript(_SCHEMA)
                columns = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
                for column, kind in (("type", "TEXT"), ("timestamp", "INTEGER")):  # a spool of an older version
                    if column not in columns:
                        conn.execute(f"ALTER TABLE events ADD COLUMN {column} {kind}")
                for suffix in ("-wal", "-shm"):  # left looser by an older version: tighten
                    sidecar = self.path.with_name(self.path.name + suffix)
                    tighten_file_mode(sidecar)
                lock_path = self.path.with_name(self.path.name + ".lock")
                make_private_file(lock_path)  # not a SQLite file: opening it drops no lock of SQLite's
                writers = os.open(lock_path, os.O_RDWR | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0))
            except (OSError, sqlite3.Error) as exc:
                raise _wrap(exc, f"cannot open spool {self.path}") from exc
            self._conn, self._writers = conn, writers
        return self._conn

    def close(self) -> None:
        """Close this process's handle (records stay on disk)."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                try:
                    self._conn.execute("UPDATE events SET owner=NULL, claimed_at=NULL WHERE owner=?", (self._owner,))
                except sqlite3.Error:
                    log.warning("could not release the claims of %s; they return after the lease", self.path)
                self._conn.close()
                if self._writers is not None:
                    os.close(self._writers)
            self._conn = None
            self._writers = None

    # -- writing -------------------------------------------------------------------------------

    def append(self, records: Sequence[SpoolEntry]) -> None:
        """Store records durably; when this returns they survive a crash or power loss.

        Raises SpoolFullError past ``max_bytes`` or when the disk is full (nothing of the call is
        stored then), SpoolError when the spool cannot be written at all.
        """
        if not records:
            return
        size = sum(len(record[1]) for record in records)
        now = time.time()
        with self._lock:
            db = self._db()
            try:
                with _transaction(db, self._writers):
                    used = db.execute("SELECT value FROM meta WHERE key='bytes'").fetchone()[0]
                    if used + size > self.max_bytes:
                        raise SpoolFullError(
                            f"spool {self.path} holds {used} bytes; {size} more would pass its limit of "
                            f"{self.max_bytes} (EVENTSINK_SPOOL_MAX_BYTES)"
                        )
                    db.executemany(
                        "INSERT INTO events (id, body, type, timestamp, size, created) VALUES (?, ?, ?, ?, ?, ?)",
                        [(r[0], r[1], *(r[2:] or (None, None)), len(r[1]), now) for r in records],
                    )
                    db.execute("UPDATE meta SET value = value + ? WHERE key='bytes'", (size,))
            except sqlite3.Error as exc:
                raise _wrap(exc, f"cannot write to spool {self.path}") from exc

    # -- reading -------------------------------------------------------------------------------

    def claim(self, limit: int) -> list[SpoolRecord]:
        """Claim up to ``limit`` of the oldest unclaimed records for this process."""
        with self._lock:
            db = self._db()
            try:
                self._free_stale(db)
                with _transaction(db, self._writers):
                    rows = db.execute(
                        "SELECT seq, id, body, type, timestamp FROM events WHERE owner IS NULL ORDER BY seq LIMIT ?",
                        (limit,),
                    ).fetchall()
                    if rows:
                        db.executemany(
                            "UPDATE events SET owner=?, claimed_at=? WHERE seq=?",
                            [(self._owner, time.time(), row[0]) for row in rows],
                        )
            except sqlite3.Error as exc:
                raise _wrap(exc, f"cannot read spool {self.path}") from exc
        return [SpoolRecord(seq, eid, bytes(body), etype, stamp) for seq, eid, body, etype, stamp in rows]

    def ack(self, seqs: Iterable[int]) -> None:
        """Delete delivered records."""
        self._finish(list(seqs), delete=True)

    def release(self, seqs: Iterable[int]) -> None:
        """Return claimed records to the pool (delivery failed; they will be claimed again, in order)."""
        self._finish(list(seqs), delete=False)

    def _finish(self, seqs: list[int], delete: bool) -> None:
        if not seqs:
            return
        with self._lock:
            db = self._db()
            try:
                with _transaction(db, self._writers):
                    if delete:
                        size = 0
                        for chunk in _chunks(seqs, 500):
                            marks = ",".join("?" * len(chunk))
                            size += db.execute(
                                f"SELECT COALESCE(SUM(size), 0) FROM events WHERE seq IN ({marks})", chunk
                            ).fetchone()[0]
                            db.execute(f"DELETE FROM events WHERE seq IN ({marks})", chunk)
                        db.execute("UPDATE meta SET value = MAX(0, value - ?) WHERE key='bytes'", (size,))
                    else:
                        db.executemany(
                            "UPDATE events SET owner=NULL, claimed_at=NULL WHERE seq=?", [(s,) for s in seqs]
                        )
            except sqlite3.Error as exc:
                raise _wrap(exc, f"cannot update spool {self.path}") from exc

    def _free_stale(self, db: sqlite3.Connection) -> None:
        owners = [row[0] for row in db.execute("SELECT DISTINCT owner FROM events WHERE owner IS NOT NULL")]
        cutoff = time.time() - self.lease_s
        for owner in owners:
            if owner == self._owner:
                continue
            pid = int(owner.split(":", 1)[0])
            if not _alive(pid):
                db.execute("UPDATE events SET owner=NULL, claimed_at=NULL WHERE owner=?", (owner,))
        db.execute("UPDATE events SET owner=NULL, claimed_at=NULL WHERE owner IS NOT NULL AND claimed_at < ?",
                   (cutoff,))

    # -- inspection ----------------------------------------------------------------------------

    def count(self) -> int:
        """Records in the spool, claimed or not."""
        return self._read_number("SELECT COUNT(*) FROM events")

    def size_bytes(self) -> int:
        """Bytes of event bodies in the spool."""
        return self._read_number("SELECT value FROM meta WHERE key='bytes'")

    def _read_number(self, query: str) -> int:
        with self._lock:
            try:
                return int(self._db().execute(query).fetchone()[0])
            except sqlite3.Error as exc:
                raise _wrap(exc, f"cannot read spool {self.path}") from exc

    def deliverable(self) -> int:
        """Records this process could deliver now: all but those claimed by another live process."""
        with self._lock:
            try:
                db = self._db()
                owners = db.execute("SELECT owner, COUNT(*) FROM events GROUP BY owner").fetchall()
            except sqlite3.Error as exc:
                raise _wrap(exc, f"cannot read spool {self.path}") from exc
        return sum(n for owner, n in owners if owner is None or owner == self._owner or not owner_alive(owner))

    def writable(self) -> bool:
        """True when the spool can be opened for writing and is below its limit."""
        try:
            return self.size_bytes() < self.max_bytes and os.access(self.path, os.W_OK)
        except SpoolError:
            return False


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection, writers: int | None = None) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT; on error roll back if SQLite has not already (it does on a full disk).

    Writers of every process first take an exclusive ``flock`` of the spool's ``.lock`` file, retried
    every 0.1-2 ms. SQLite's own wait for its write lock sleeps up to 100 ms between tries: with two
    API workers and their replays writing one spool, spool-first batches saw requests of over 2 s.
    Past ``WRITE_LOCK_TIMEOUT_S`` (SQLite's busy timeout) the write fails as SQLite's would.
    """
    if writers is not None:
        _lock_writers(writers)
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
            raise
    finally:
        if writers is not None:
            fcntl.flock(writers, fcntl.LOCK_UN)


WRITE_LOCK_TIMEOUT_S = 30.0


def _lock_writers(writers: int) -> None:
    deadline = time.monotonic() + WRITE_LOCK_TIMEOUT_S
    pause = 0.0001
    while True:
        try:
            fcntl.flock(writers, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise sqlite3.OperationalError(
                    f"database is locked: another writer held the spool for {WRITE_LOCK_TIMEOUT_S:.0f}s") from None
            time.sleep(pause)
            pause = min(pause * 2, 0.002)


def _reinit_spools_in_child() -> None:
    for spool in list(_spools):
        spool._after_fork()


os.register_at_fork(after_in_child=_reinit_spools_in_child)


def owner_alive(owner: str) -> bool:
    """True when the process that holds a claim (``"<pid>:<tag>"``) is still running on this host."""
    return _alive(int(owner.split(":", 1)[0]))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _chunks(items: list[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _wrap(exc: BaseException, context: str) -> SpoolError:
    if isinstance(exc, SpoolError):
        return exc
    text = str(exc)
    if "full" in text or getattr(exc, "errno", None) == 28:
        return SpoolFullError(f"{context}: disk full ({text})")
    return SpoolError(f"{context}: {text}")
