"""The nginx_log probe: requests and distinct client connections per window, read from an access log.

The log is followed incrementally. Rotation is noticed when the path names another file (inode or
device changed, as after ``mv access.log access.log.1`` and nginx reopening its logs): the rest of the
old file is read first, then the new one from its start. Truncation in place (``copytruncate``) is
noticed when the file is shorter than the read position, and reading restarts at 0. Lines written
before the monitor started are not counted. A partial last line waits for its newline.
"""

from __future__ import annotations

import os
import re
import time
from datetime import datetime
from typing import IO, Any

from ..targets import NginxLogTarget
from .base import ProbeResult, utcnow


class LogFollower:
    """Returns the complete lines appended to a file since the last call, across rotation."""

    def __init__(self, path: os.PathLike[str] | str, from_end: bool = True) -> None:
        self.path = os.fspath(path)
        self._fh: IO[bytes] | None = None
        self._partial = b""
        self.rotations = 0
        self.truncations = 0
        try:
            self._open(from_end)
        except OSError:  # unreadable now: reported by read(), which tries again
            self._fh = None

    def _open(self, at_end: bool) -> bool:
        """Open the path (False when it does not exist; other OSErrors propagate)."""
        try:
            self._fh = open(self.path, "rb")  # noqa: SIM115 - kept open across calls on purpose
        except FileNotFoundError:
            self._fh = None
            return False
        if at_end:
            self._fh.seek(0, os.SEEK_END)
        return True

    def read(self) -> list[bytes]:
        """New complete lines; raises OSError when the log cannot be read (not when it is missing)."""
        if self._fh is None:
            # missing at start or after rotation: a file that appears now is new, read it whole
            return self._drain() if self._open(False) else []
        lines = self._drain()
        try:
            current = os.stat(self.path)
        except FileNotFoundError:
            return lines
        opened = os.fstat(self._fh.fileno())
        if (current.st_ino, current.st_dev) != (opened.st_ino, opened.st_dev):
            self.rotations += 1
            self._fh.close()
            self._partial = b""
            self._open(False)
            lines += self._drain()
        elif current.st_size < self._fh.tell():
            self.truncations += 1
            self._fh.seek(0)
            self._partial = b""
            lines += self._drain()
        return lines

    def _drain(self) -> list[bytes]:
        assert self._fh is not None
        data = self._fh.read()
        if not data:
            return []
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()
        return [line for line in lines if line]

    def close(self) -> None:
        """Close the open file."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class NginxLogProbe:
    """Counts the lines and distinct clients (or connections) of each window as health.connections."""

    def __init__(self, target: NginxLogTarget) -> None:
        self.target = target
        self._pattern = re.compile(target.pattern.encode())
        self._key = "connection" if "connection" in self._pattern.groupindex else "client"
        self._follower = LogFollower(target.path)
        self._window_start = time.monotonic()

    def run(self) -> ProbeResult:
        """Read the window's lines and build the health.connections result."""
        started = utcnow()
        now = time.monotonic()
        window_s = round(max(now - self._window_start, 0.001), 3)
        try:
            lines = self._follower.read()
        except OSError as exc:
            return self.failed(f"cannot read {self.target.path}: {exc.strerror or exc}", started)
        self._window_start = now
        requests, seen = 0, set()
        for line in lines:
            match = self._pattern.search(line)
            if match:
                requests += 1
                seen.add(match.group(self._key))
        data: dict[str, Any] = {"service": self.target.name, "active": len(seen), "requests": requests,
                                "window_s": window_s}
        return ProbeResult(self.target.name, "nginx_log", True, "health.connections", data, started,
                           extra={"rotations": self._follower.rotations})

    def failed(self, error: str, started: datetime) -> ProbeResult:
        """An empty window marked failed (the log could not be read)."""
        data: dict[str, Any] = {"service": self.target.name, "active": 0, "requests": 0,
                                "window_s": float(self.target.interval_s)}
        return ProbeResult(self.target.name, "nginx_log", False, "health.connections", data, started, None, error)
