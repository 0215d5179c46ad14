"""Private directories for the spool: created 0700, refused when another user could tamper with them.

A spool holds events (user ids, file names, health data). In a shared place such as ``/tmp`` any local
user could create ``/tmp/eventsink`` first and then read, alter or swap the files in it, so before a
spool is opened its directory and the path to it are checked:

- the directory (and each folder created on the way) is made with mode 0700; an existing directory
  owned by this user that others can read or write is tightened to 0700;
- a directory owned by another user (root excepted) is refused;
- a folder on the path that others can write is refused unless it has the sticky bit (like ``/tmp``),
  and then the entry below it must belong to this user or root, so nobody else can swap it.

A refusal raises :class:`~sink_lib.errors.UnsafeSpoolDirError` naming ``EVENTSINK_SPOOL_DIR``.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from .errors import UnsafeSpoolDirError

DIR_MODE = 0o700
FILE_MODE = 0o600
_HINT = "set EVENTSINK_SPOOL_DIR to a directory only this user can write"


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (mode 0700) if needed and check nobody else can tamper with it; return it absolute.

    Raises UnsafeSpoolDirError when the directory or a folder above it is open to other users, and
    OSError when it cannot be created.
    """
    path = Path(os.path.abspath(path))
    _check_parents(path)  # before creating anything in a place another user controls
    for folder in reversed([p for p in (path, *path.parents) if not os.path.lexists(p)]):
        with contextlib.suppress(FileExistsError):  # made meanwhile by another process: checked below
            os.mkdir(folder, DIR_MODE)
    _check_dir(path)
    _check_parents(path)
    if stat.S_IMODE(os.stat(path).st_mode) & 0o077:
        os.chmod(path, DIR_MODE)
    return path


def _check_dir(path: Path) -> None:
    me = os.geteuid()
    info = os.stat(path)
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafeSpoolDirError(f"spool directory {path} is not a directory; {_HINT}")
    if info.st_uid != me:
        raise UnsafeSpoolDirError(
            f"spool directory {path} belongs to uid {info.st_uid}, not to this user (uid {me}): another user "
            f"could read or alter the spooled events; {_HINT}"
        )


def _check_parents(path: Path) -> None:
    """No folder above ``path`` lets another user swap the entry below it."""
    me = os.geteuid()
    child = path
    for parent in path.parents:
        if not os.path.lexists(parent):
            child = parent
            continue
        info = os.stat(parent)
        if info.st_mode & stat.S_IWOTH:
            if not info.st_mode & stat.S_ISVTX:
                raise UnsafeSpoolDirError(
                    f"spool directory {path} lies in {parent}, which every user can write (no sticky bit): "
                    f"anyone could replace it; {_HINT}"
                )
            owner = os.lstat(child).st_uid if os.path.lexists(child) else me
            if owner not in (me, 0):
                raise UnsafeSpoolDirError(
                    f"spool directory {path} lies in {child}, which belongs to uid {owner} inside the shared "
                    f"directory {parent}: that user could replace or read it; {_HINT}"
                )
        child = parent


def make_private_file(path: Path) -> None:
    """Create ``path`` with mode 0600 if missing, and tighten it to 0600 if it is ours and looser.

    An existing file is never opened: closing any descriptor of a file drops every POSIX lock this
    process holds on it, including SQLite's on a spool another connection of this process has open.
    Without its lock on the ``-shm`` file, the next process to open the spool believes it is the
    only one, rebuilds the shared WAL index under the first one's feet, and that process dies of
    SIGBUS (seen with ``eventsink spool status`` next to a busy API) or loses committed events.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), FILE_MODE)
    except FileExistsError:
        tighten_file_mode(path)
        return
    os.close(fd)  # new and empty: nobody holds a lock on it yet


def tighten_file_mode(path: Path) -> None:
    """chmod 0600 a file of ours that is looser, by path (no descriptor, see make_private_file).

    A symbolic link is left alone: the spool's directory is private, so only this user could have
    put one there.
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) != FILE_MODE and info.st_uid == os.geteuid():
        os.chmod(path, FILE_MODE)
