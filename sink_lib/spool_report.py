"""What a spool directory holds, read without changing it: for ``eventsink spool status`` and ``status``.

Each ``*.sqlite3`` file in the directory is one spool (``spool`` for EventSink and the emergency API,
``monitor`` for a monitor). For each: events, their bytes, the oldest event's age, the size on disk
and the claims, split into processes still running (they are delivering those events) and processes
that died (their events go back to the pool at the next replay).
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import SpoolError
from .spool import owner_alive


@dataclass(frozen=True)
class Claim:
    """Events of one spool claimed by one process."""

    pid: int
    events: int
    alive: bool


@dataclass(frozen=True)
class SpoolReport:
    """The contents of one spool file."""

    path: str
    events: int
    bytes: int
    disk_bytes: int
    oldest: str | None
    oldest_age_s: float | None
    claims: list[Claim] = field(default_factory=list)

    def claimed(self, alive: bool) -> int:
        """Events claimed by live (``alive=True``) or dead processes."""
        return sum(c.events for c in self.claims if c.alive is alive)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, with the live and dead claim totals."""
        out = asdict(self)
        out["claimed_by_live"] = self.claimed(True)
        out["claimed_by_dead"] = self.claimed(False)
        return out


def inspect_spools(directory: Path) -> list[SpoolReport]:
    """Report every spool file in ``directory`` (none when it does not exist); raises SpoolError."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    try:
        files = sorted(directory.glob("*.sqlite3"))
    except OSError as exc:
        raise SpoolError(f"cannot list spool directory {directory}: {exc}") from exc
    return [inspect_spool(path) for path in files]


# A read-only reader of a WAL database that a live process is writing can get SQLITE_PROTOCOL
# ("locking protocol") or SQLITE_BUSY while the writer checkpoints; both pass, so they are retried.
_TRANSIENT = ("locking protocol", "database is locked")
READ_ATTEMPTS = 50
READ_RETRY_S = 0.05


def _query(path: Path) -> tuple[tuple[Any, Any, Any], list[Any]]:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10.0)
    except sqlite3.Error as exc:
        raise SpoolError(f"cannot open spool {path}: {exc}") from exc
    try:
        totals = conn.execute("SELECT COUNT(*), COALESCE(SUM(size), 0), MIN(created) FROM events").fetchone()
        owners = conn.execute(
            "SELECT owner, COUNT(*) FROM events WHERE owner IS NOT NULL GROUP BY owner ORDER BY MIN(seq)"
        ).fetchall()
        return totals, owners
    finally:
        conn.close()


def _read_counts(path: Path) -> tuple[tuple[Any, Any, Any], list[Any]]:
    for attempt in range(1, READ_ATTEMPTS + 1):
        try:
            return _query(path)
        except sqlite3.OperationalError as exc:
            if not any(t in str(exc) for t in _TRANSIENT):
                raise SpoolError(f"cannot read spool {path} (is it a spool?): {exc}") from exc
            if attempt == READ_ATTEMPTS:
                raise SpoolError(f"cannot read spool {path}: still busy after {READ_ATTEMPTS} attempts: {exc}") from exc
        except sqlite3.Error as exc:
            raise SpoolError(f"cannot read spool {path} (is it a spool?): {exc}") from exc
        time.sleep(READ_RETRY_S)
    raise SpoolError(f"cannot read spool {path}")  # not reached: the last attempt returns or raises


def inspect_spool(path: Path) -> SpoolReport:
    """Report one spool file, read-only (a file a live process is writing is fine)."""
    (events, size, oldest), owners = _read_counts(path)
    by_pid: dict[int, Claim] = {}
    for owner, count in owners:
        pid = int(str(owner).split(":", 1)[0])
        known = by_pid.get(pid)
        by_pid[pid] = Claim(pid, count + (known.events if known else 0), owner_alive(str(owner)))
    disk = sum(p.stat().st_size for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists())
    return SpoolReport(
        path=str(path),
        events=int(events),
        bytes=int(size),
        disk_bytes=disk,
        oldest=_rfc3339(oldest) if oldest is not None else None,
        oldest_age_s=round(max(0.0, time.time() - oldest), 1) if oldest is not None else None,
        claims=list(by_pid.values()),
    )


def describe(directory: Path, reports: list[SpoolReport]) -> list[str]:
    """Lines for people: one per spool, one more per claiming process."""
    if not reports:
        return [f"no spool in {directory}"]
    lines = []
    for r in reports:
        line = f"{r.path}: {r.events} event(s), {_size(r.bytes)}, {_size(r.disk_bytes)} on disk"
        if r.oldest is not None and r.oldest_age_s is not None:
            line += f", oldest {r.oldest} ({_age(r.oldest_age_s)} ago)"
        lines.append(line)
        for c in r.claims:
            if c.alive:
                lines.append(f"  {c.events} claimed by live process {c.pid} (it is delivering them)")
            else:
                lines.append(f"  {c.events} claimed by dead process {c.pid} (back to the pool at the next replay)")
    return lines


def _rfc3339(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    value = float(n)
    units = ["KiB", "MiB", "GiB"]
    while True:
        value /= 1024
        unit = units.pop(0)
        if value < 1024 or not units:
            return f"{value:.1f} {unit}"


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds / 86400:.0f}d"
