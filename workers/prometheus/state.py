"""The persisted state the metrics are served from: series values and processed event ids, in SQLite.

A batch is applied in one transaction (WAL, ``synchronous=FULL``): its new event ids are recorded and the
series it changes are updated together, and the transaction is durable before ``write`` returns, so an
acked batch is on disk. Ids already recorded are skipped, so a batch redelivered after a crash between
commit and ack is not counted twice. Ids are remembered for ``dedupe_window_s`` and at most
``dedupe_max_ids`` of them (oldest forgotten first); a redelivery older than that would count again.
"""

from __future__ import annotations

import fcntl
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO

from sink_lib.event import Event
from workers.errors import RetryLater

from .mapping import METRICS, Update

SeriesKey = tuple[str, str]
"""(metric name, labels as sorted JSON pairs)."""

PRUNE_EVERY_S = 60.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS series (
    metric TEXT NOT NULL, labels TEXT NOT NULL, value REAL NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (metric, labels)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS processed (id TEXT NOT NULL UNIQUE, seen REAL NOT NULL);
CREATE INDEX IF NOT EXISTS processed_seen ON processed (seen);
"""


class MetricState:
    """Series values in memory for scrapes, backed by a SQLite file that one process holds at a time."""

    def __init__(self, path: Path, dedupe_window_s: float, dedupe_max_ids: int) -> None:
        self.path = path
        self.dedupe_window_s = dedupe_window_s
        self.dedupe_max_ids = dedupe_max_ids
        self._values: dict[SeriesKey, tuple[float, float]] = {}
        self._labels: dict[str, dict[str, str]] = {}
        self._label_keys: dict[tuple[tuple[str, str], ...], str] = {}
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._lockfile: IO[bytes] | None = None
        self._pruned_at = 0.0

    def open(self) -> None:
        """Take the file's lock and load every series; RetryLater while another process holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lockfile = open(self.path.with_name(self.path.name + ".lock"), "wb")  # noqa: SIM115 - held until close
        try:
            fcntl.flock(lockfile, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            lockfile.close()
            raise RetryLater(f"state file {self.path} is in use by another prometheus worker") from exc
        self._lockfile = lockfile
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(_SCHEMA)
        self._db = db
        rows = db.execute("SELECT metric, labels, value, at FROM series").fetchall()
        with self._lock:
            self._values = {(metric, labels): (value, at) for metric, labels, value, at in rows}

    def close(self) -> None:
        """Close the database and release the lock."""
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._lockfile is not None:
            self._lockfile.close()  # releases the flock
            self._lockfile = None

    def apply(self, batch: Sequence[Event], changes: Callable[[Event], Iterable[Update]]) -> int:
        """Apply the events not seen before, durably; returns how many were new."""
        db = self._db
        if db is None:
            raise RetryLater("the prometheus worker's state is not open")
        now = time.time()
        pending: dict[SeriesKey, tuple[float, float]] = {}
        db.execute("BEGIN IMMEDIATE")
        try:
            known = self._seen(db, [event.id for event in batch])
            new_ids: list[tuple[str, float]] = []
            for event in batch:
                if event.id in known:
                    continue
                known.add(event.id)  # a batch holding one id twice counts it once
                new_ids.append((event.id, now))
                at = event.time.timestamp()
                for update in changes(event):
                    key = (update.metric, self._label_key(update.labels))
                    old = pending.get(key) or self._values.get(key)
                    pending[key] = _combine(METRICS[update.metric].mode, old, update.value, at)
            fresh = len(new_ids)
            db.executemany("INSERT INTO processed (id, seen) VALUES (?, ?)", new_ids)
            db.executemany(
                "INSERT INTO series (metric, labels, value, at) VALUES (?, ?, ?, ?) ON CONFLICT (metric, labels)"
                " DO UPDATE SET value = excluded.value, at = excluded.at",
                [(metric, labels, value, at) for (metric, labels), (value, at) in pending.items()],
            )
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:  # a failed COMMIT may have rolled back already
                db.execute("ROLLBACK")
            raise
        with self._lock:
            self._values.update(pending)
        if now - self._pruned_at >= PRUNE_EVERY_S:
            self.prune(now)
        return fresh

    def prune(self, now: float | None = None) -> None:
        """Forget processed ids older than the window, and the oldest beyond the id limit."""
        if self._db is None:
            return
        now = time.time() if now is None else now
        with self._db:
            self._db.execute("DELETE FROM processed WHERE seen < ?", (now - self.dedupe_window_s,))
            # rowids only grow, so the newest dedupe_max_ids rows are those above max(rowid) - limit
            self._db.execute(
                "DELETE FROM processed WHERE rowid <= (SELECT max(rowid) FROM processed) - ?", (self.dedupe_max_ids,)
            )
        self._pruned_at = now

    def remembered_ids(self) -> int:
        """How many processed ids are remembered now."""
        if self._db is None:
            return 0
        return int(self._db.execute("SELECT count(*) FROM processed").fetchone()[0])

    def seen(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` are remembered as processed."""
        return set() if self._db is None else self._seen(self._db, ids)

    @staticmethod
    def _seen(db: sqlite3.Connection, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(ids), 500):
            chunk = list(ids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            found.update(r[0] for r in db.execute(f"SELECT id FROM processed WHERE id IN ({marks})", chunk))
        return found

    def _label_key(self, labels: tuple[tuple[str, str], ...]) -> str:
        key = self._label_keys.get(labels)
        if key is None:
            if len(self._label_keys) > 100_000:  # bounded: label sets are few, but do not grow forever
                self._label_keys.clear()
            key = self._label_keys[labels] = json.dumps(labels)
        return key

    def snapshot(self) -> list[tuple[str, dict[str, str], float]]:
        """Every series as (metric, labels, value), for a scrape."""
        with self._lock:
            items = [(metric, labels, value) for (metric, labels), (value, _) in self._values.items()]
        out = []
        for metric, labels, value in items:
            parsed = self._labels.get(labels)
            if parsed is None:
                parsed = self._labels[labels] = dict(json.loads(labels))
            out.append((metric, parsed, value))
        return out


def _combine(mode: str, old: tuple[float, float] | None, value: float, at: float) -> tuple[float, float]:
    """The new (value, time) of a series: ``add`` accumulates; ``set`` keeps the newest event's value."""
    if old is None:
        return value, at
    if mode == "add":
        return old[0] + value, max(old[1], at)
    return (value, at) if at >= old[1] else old
