"""Plugins used by the runtime's tests: an in-memory store with scripted failures, and a SQLite store
that a worker subprocess can write while the test reads it (run as ``tests.workers.plugins:FileStoreWorker``).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from sink_lib.event import Event
from workers.errors import RejectEvents, RetryLater
from workers.plugin import WorkerPlugin, WorkerSettings

chatty_log = logging.getLogger(__name__)


class MemorySettings(WorkerSettings):
    """Settings of the memory worker (``EVENTSINK_MEMORY_*``)."""

    model_config = SettingsConfigDict(env_prefix="EVENTSINK_MEMORY_", extra="ignore")


class MemoryWorker(WorkerPlugin):
    """Keeps written events in memory, idempotently by id; tests script its failures."""

    name = "memory"
    settings_model = MemorySettings

    def __init__(self, settings: MemorySettings) -> None:
        super().__init__(settings)
        self.stored: dict[str, Event] = {}
        self.rows: list[str] = []  # the destination's table, which has no unique key: ids in write order
        self.writes: list[list[str]] = []  # the ids of every write() call, in order
        self.failures: list[BaseException] = []  # raised by the next write() calls, one each
        self.open_failures: list[BaseException] = []  # raised by the next open() calls
        self.down = False  # while True every write() raises RetryLater
        self.reject: dict[str, str] = {}  # ids the destination refuses for good, with the reason
        self.opened = self.closed = 0
        self.lock = threading.Lock()

    def open(self) -> None:
        """Count the call, or raise the next scripted open failure."""
        if self.open_failures:
            raise self.open_failures.pop(0)
        self.opened += 1

    def close(self) -> None:
        """Count the call."""
        self.closed += 1

    def write(self, batch: Sequence[Event]) -> None:
        """Store the batch, unless a failure is scripted or some ids are refused."""
        with self.lock:
            self.writes.append([e.id for e in batch])
            if self.failures:
                raise self.failures.pop(0)
            if self.down:
                raise RetryLater("memory destination is down")
            refused = {e.id: self.reject[e.id] for e in batch if e.id in self.reject}
            for event in batch:
                if event.id not in refused and event.id not in self.stored:  # idempotent by event id
                    self.stored[event.id] = event
                    self.rows.append(event.id)
            if refused:
                raise RejectEvents(refused)

    def stored_ids(self) -> set[str]:
        """Ids written so far."""
        with self.lock:
            return set(self.stored)


class FileStoreSettings(WorkerSettings):
    """Settings of the SQLite test store (``EVENTSINK_FILESTORE_*``)."""

    model_config = SettingsConfigDict(env_prefix="EVENTSINK_FILESTORE_", extra="ignore")

    path: Path = Field(Path("filestore.sqlite3"), description="SQLite file the events are written to.")
    delay_s: float = Field(0.0, ge=0, description="Pause inside every write, to make batches slow.")


class FileStoreWorker(WorkerPlugin):
    """Writes events to a SQLite table keyed by id (INSERT OR IGNORE), logging each write attempt."""

    name = "filestore"
    settings_model = FileStoreSettings

    def __init__(self, settings: FileStoreSettings) -> None:
        super().__init__(settings)
        self.path, self.delay_s = settings.path, settings.delay_s
        self._db: sqlite3.Connection | None = None

    def open(self) -> None:
        """Create the tables."""
        self._db = connect_store(self.path)

    def close(self) -> None:
        """Close the database."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def write(self, batch: Sequence[Event]) -> None:
        """Record the attempt, wait ``delay_s``, then insert the batch in one transaction."""
        assert self._db is not None
        with self._db:
            self._db.execute("INSERT INTO attempts (n, at) VALUES (?, ?)", (len(batch), time.time()))
        time.sleep(self.delay_s)
        with self._db:
            self._db.executemany(
                "INSERT OR IGNORE INTO events (id, type) VALUES (?, ?)", [(e.id, e.type) for e in batch]
            )


def connect_store(path: Path) -> sqlite3.Connection:
    """Open (and create) the FileStoreWorker database."""
    db = sqlite3.connect(path, timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY, type TEXT)")
    db.execute("CREATE TABLE IF NOT EXISTS attempts (n INTEGER, at REAL)")
    db.commit()
    return db


def read_store(path: Path) -> tuple[list[str], int]:
    """(ids stored, write attempts) of a FileStoreWorker database."""
    if not path.exists():
        return [], 0
    db = connect_store(path)
    try:
        ids = [row[0] for row in db.execute("SELECT id FROM events")]
        attempts = db.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
        return ids, attempts
    finally:
        db.close()


class PoisonWorker(MemoryWorker):
    """A memory worker whose type check crashes on events with ``data.poison``, taking the worker down."""

    name = "memory"

    def takes(self, event: Event) -> bool:
        """Crash on poison (as a plugin bug would), take everything else."""
        if event.data.get("poison"):
            raise RuntimeError("plugin bug triggered by this event")
        return super().takes(event)


class ChattyWorker(MemoryWorker):
    """Logs through its own module logger (outside the ``workers`` package) when opened."""

    def open(self) -> None:
        """Log one line at each of info and warning."""
        super().open()
        chatty_log.info("chatty plugin: info line from open()")
        chatty_log.warning("chatty plugin: warning line from open()")
