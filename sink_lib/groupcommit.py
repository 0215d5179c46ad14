"""Group commit into the spool: concurrent callers' events share one transaction and one fsync.

Used by :meth:`EventSink.spool_submit` (the API's ``EVENTSINK_API_ACCEPT_ON=spool``): a caller hands
its events over and blocks until they are durably on disk. One committer thread per process takes
everything handed over since its last commit and writes it in a single SQLite transaction, so while
one fsync is in progress the next group gathers; under load many requests share each fsync.

A group is all-or-nothing on disk. When the spool refuses the whole group (full), each caller's
events are tried on their own, so only the callers whose events do not fit get the error.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Sequence
from typing import Any

from .errors import PublishTimeout, SpoolError
from .loopwake import notifier_for, settled
from .outbox import Outbox
from .spool import Spool, SpoolEntry

log = logging.getLogger(__name__)


class _Handover:
    """One caller's records and the signal it waits on (a lock released when they are settled)."""

    __slots__ = ("error", "records", "signal", "taken")

    def __init__(self, records: Sequence[SpoolEntry]) -> None:
        self.records = records
        self.error: BaseException | None = None
        self.taken = False
        self.signal = threading.Lock()
        self.signal.acquire()

    def settle(self) -> None:
        self.signal.release()


class _LoopHandover(_Handover):
    """A handover awaited on an event loop."""

    __slots__ = ("future", "notifier")

    def __init__(self, records: Sequence[SpoolEntry], loop: asyncio.AbstractEventLoop) -> None:
        self.records = records
        self.error = None
        self.taken = False
        self.future: asyncio.Future[None] = loop.create_future()
        self.notifier = notifier_for(loop)

    def settle(self) -> None:
        self.notifier.settle(self.future)


class GroupCommitSpool:
    """Appends to ``spool`` from many threads, one transaction (one fsync) per group."""

    def __init__(self, spool: Spool) -> None:
        self.spool = spool
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._cond = threading.Condition(threading.Lock())
        self._queue: list[_Handover] = []
        self._thread: threading.Thread | None = None
        self.groups = 0  # transactions written (for tests and stats)

    def append(self, records: Sequence[SpoolEntry], timeout: float) -> None:
        """Return once ``records`` are fsync'd in the spool; raise the spool's error or PublishTimeout.

        After a PublishTimeout the records may still be written (the commit was under way), as after
        a timeout waiting for broker confirms: a client retries with the same ids.
        """
        if not records:
            return
        if self._pid != os.getpid():
            self._reset()  # forked: the parent's thread does not exist here
        handover = _Handover(records)
        self._hand_over(handover)
        self._check(handover, handover.signal.acquire(timeout=timeout), timeout)

    async def append_async(self, records: Sequence[SpoolEntry], timeout: float) -> None:
        """:meth:`append` for a caller on an event loop (the loop is not blocked while the group commits)."""
        if not records:
            return
        if self._pid != os.getpid():
            self._reset()
        handover = _LoopHandover(records, asyncio.get_running_loop())
        self._hand_over(handover)
        self._check(handover, await settled(handover.future, timeout), timeout)

    def _hand_over(self, handover: _Handover) -> None:
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="eventsink-spool-commit", daemon=True)
                self._thread.start()
            self._queue.append(handover)
            self._cond.notify()

    def _check(self, handover: _Handover, done: bool, timeout: float) -> None:
        if not done:
            count = len(handover.records)
            with self._cond:
                if not handover.taken:
                    self._queue.remove(handover)
                    raise PublishTimeout(f"{count} event(s) not spooled in {timeout}s (nothing written)")
            raise PublishTimeout(f"{count} event(s) not known to be spooled in {timeout}s")
        if handover.error is not None:
            raise handover.error

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
                group, self._queue = self._queue, []
                for handover in group:
                    handover.taken = True
            self._commit(group)

    def _commit(self, group: list[_Handover]) -> None:
        try:
            self.spool.append([record for handover in group for record in handover.records])
            self.groups += 1
        except SpoolError as exc:
            if len(group) == 1:
                group[0].error = exc
            else:  # find out whose events fit: each caller on its own
                log.warning("group of %d spool writes refused (%s); writing them one by one", len(group), exc)
                for handover in group:
                    try:
                        self.spool.append(handover.records)
                        self.groups += 1
                    except SpoolError as single:
                        handover.error = single
        except Exception as exc:  # never leave a caller waiting on a write that failed oddly
            log.exception("spool group commit failed")
            for handover in group:
                handover.error = SpoolError(f"spool write failed: {exc!r}")
        for handover in group:
            handover.settle()


def spooled_directly(outbox: Outbox, publisher: Any, count: int) -> None:
    """Count ``count`` events written straight to the spool and make the publisher replay them.

    While events flow the publisher polls and sees the flag; when it is idle it is woken once.
    """
    wake = None
    with outbox.lock:
        outbox.counts["emitted"] += count
        outbox.counts["spooled"] += count
        if publisher is not None:
            publisher._spool_maybe = True
            if outbox.waker is not None and not outbox.wake_pending:  # idle (not polling): wake it
                outbox.wake_pending = True
                wake = outbox.urgent_waker
    if wake is not None:
        wake()
