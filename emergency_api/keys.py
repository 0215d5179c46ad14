"""The keys file: hashed API keys with a name and type-pattern scopes.

A key reads ``es_<id>_<secret>``: ``id`` (12 hex digits) is public and finds the entry in O(1),
``secret`` is 32 random bytes. The file stores only ``sha256(key)``; keys are high-entropy random
tokens, so a slow password KDF would add latency to every request without adding security.
The file is JSON, written atomically (temporary file, fsync, rename, fsync of the folder) with mode 0600::

    {"version": 1, "keys": [{"id": "3f2a...", "name": "monitor-us-east", "hash": "sha256:...",
      "scopes": ["health.*"], "created": "2026-...Z", "revoked": null}]}
"""

from __future__ import annotations

import contextlib
import fcntl
import fnmatch
import functools
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sink_lib.event import now_rfc3339

KEY_PREFIX = "es"
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
# Client-chosen event ids are published as uuid5(CLIENT_ID_NAMESPACE, "<key id>/<client id>"): one key
# cannot publish (or pre-empt as a duplicate) an id another key's events carry, and a retry with the
# same key and id still publishes the same id.
CLIENT_ID_NAMESPACE = uuid.UUID("df507a6c-4351-5be6-97af-6387206e605a")
_KEY_SHAPE = re.compile(r"^es_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})$")


class KeyFileError(Exception):
    """The keys file cannot be read or written, or a keys command was given bad input."""


@dataclass(frozen=True)
class ApiKey:
    """One entry of the keys file (never the key itself)."""

    id: str
    name: str
    hash: str
    scopes: tuple[str, ...]
    created: str
    revoked: str | None = None

    def allows(self, event_type: str) -> bool:
        """True when one of the key's scopes (fnmatch patterns) matches ``event_type``."""
        return _scope_matcher(self.scopes)(event_type) is not None

    def event_id(self, client_id: str | None) -> str | None:
        """The id an event the client sent with ``client_id`` is published under (None stays None)."""
        if client_id is None:
            return None
        return str(uuid.uuid5(CLIENT_ID_NAMESPACE, f"{self.id}/{client_id}"))

    def to_json(self) -> dict[str, Any]:
        """The entry as stored in the file."""
        out = asdict(self)
        out["scopes"] = list(self.scopes)
        return out


@functools.lru_cache(maxsize=1024)
def _scope_matcher(scopes: tuple[str, ...]) -> Callable[[str], re.Match[str] | None]:
    """One compiled regex for all the scopes of a key (fnmatch syntax, case-sensitive)."""
    return re.compile("|".join(f"(?:{fnmatch.translate(s)})" for s in scopes) or "(?!)").match


def hash_key(key: str) -> str:
    """The stored form of a key."""
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def split_key(key: str) -> str | None:
    """The public id of a well-formed key, or None."""
    match = _KEY_SHAPE.fullmatch(key)
    return match.group(1) if match else None


def new_key() -> tuple[str, str]:
    """A fresh ``(id, key)`` pair."""
    key_id = secrets.token_hex(6)
    return key_id, f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"


def check_scope(pattern: str) -> str:
    """Refuse empty or malformed scope patterns."""
    if not pattern or not re.fullmatch(r"[a-z0-9_.*?\[\]!-]{1,128}", pattern):
        raise KeyFileError(f"invalid scope {pattern!r}: use a type pattern such as 'health.*' or '*'")
    return pattern


@dataclass
class _Loaded:
    stamp: tuple[int, int, int] | None
    by_id: dict[str, ApiKey] = field(default_factory=dict)


class KeyStore:
    """Reads the keys file, reloading it when it changes, and checks presented keys."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._loaded = _Loaded(stamp=None)
        self._loaded = self._reload(self._stat())

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _reload(self, stamp: tuple[int, int, int] | None) -> _Loaded:
        if stamp is None:
            return _Loaded(stamp=None)
        keys = read_keys(self.path)
        return _Loaded(stamp=stamp, by_id={k.id: k for k in keys})

    def current(self) -> dict[str, ApiKey]:
        """The keys by id, reloaded first when the file changed (revocations apply at once)."""
        stamp = self._stat()
        loaded = self._loaded
        if stamp != loaded.stamp:
            with self._lock:
                if stamp != self._loaded.stamp:
                    self._loaded = self._reload(stamp)
                loaded = self._loaded
        return loaded.by_id

    def authenticate(self, presented: str) -> ApiKey | None:
        """The active key matching ``presented``, compared in constant time, or None."""
        key_id = split_key(presented)
        if key_id is None:
            return None
        entry = self.current().get(key_id)
        if entry is None or entry.revoked:
            return None
        if not hmac.compare_digest(entry.hash, hash_key(presented)):
            return None
        return entry


def read_keys(path: Path) -> list[ApiKey]:
    """Every entry of the keys file (an absent file has none)."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise KeyFileError(f"cannot read keys file {path}: {exc}") from exc
    try:
        return [
            ApiKey(
                id=str(e["id"]),
                name=str(e["name"]),
                hash=str(e["hash"]),
                scopes=tuple(str(s) for s in e["scopes"]),
                created=str(e["created"]),
                revoked=e.get("revoked"),
            )
            for e in raw["keys"]
        ]
    except (KeyError, TypeError) as exc:
        raise KeyFileError(f"keys file {path} is malformed: missing {exc}") from exc


def write_keys(path: Path, keys: Sequence[ApiKey]) -> None:
    """Replace the keys file atomically with mode 0600, durably (the file and its folder are fsync'd)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"version": 1, "keys": [k.to_json() for k in keys]}, indent=2) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=".keys-", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(body)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable: without this a crash can bring back the old keys file."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise concurrent ``keys`` commands on the same file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(str(path) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def create_key(path: Path, name: str, scopes: Sequence[str]) -> tuple[ApiKey, str]:
    """Add a key named ``name``; return its entry and the key (shown once, never stored)."""
    if not NAME_PATTERN.fullmatch(name):
        raise KeyFileError(f"invalid name {name!r}: 1-64 of a-z 0-9 _ . - starting with a letter or digit")
    if not scopes:
        raise KeyFileError("give at least one --scope (a type pattern such as 'health.*')")
    patterns = tuple(check_scope(s) for s in scopes)
    path = Path(path)
    with _locked(path):
        keys = read_keys(path)
        if any(k.name == name and not k.revoked for k in keys):
            raise KeyFileError(f"an active key named {name!r} exists; revoke it first")
        key_id, key = new_key()
        entry = ApiKey(id=key_id, name=name, hash=hash_key(key), scopes=patterns, created=now_rfc3339())
        write_keys(path, [*keys, entry])
    return entry, key


def revoke_key(path: Path, name_or_id: str) -> list[ApiKey]:
    """Revoke the active keys with this name or id; return them (empty when none matched)."""
    path = Path(path)
    with _locked(path):
        keys = read_keys(path)
        stamp = now_rfc3339()
        revoked: list[ApiKey] = []
        out: list[ApiKey] = []
        for k in keys:
            if not k.revoked and name_or_id in (k.name, k.id):
                k = ApiKey(**{**asdict(k), "revoked": stamp})
                revoked.append(k)
            out.append(k)
        if revoked:
            write_keys(path, out)
    return revoked
