"""The exceptions the monitors package raises, all under sink_lib's root.

::

    EventSinkError
    └── MonitorError                 root of this package's errors
        ├── MonitorConfigError       the TOML file is missing, unreadable or invalid
        │                            (``.problems`` lists ``"targets[2].url: ..."`` strings)
        ├── ProbeError               a probe could not run at all (e.g. no ICMP socket allowed);
        │                            an unreachable target is a failed result, not an error
        └── ReporterError            the reporter cannot keep events (spool unusable)

A probe that cannot reach its target returns a result with ``ok=False`` and an ``error`` text;
only problems with the monitor itself are raised.
"""

from __future__ import annotations

from collections.abc import Iterable

from sink_lib.errors import EventSinkError


class MonitorError(EventSinkError):
    """Root of the monitors package's errors."""


class MonitorConfigError(MonitorError):
    """The monitor configuration is invalid; ``problems`` names each bad key."""

    def __init__(self, problems: Iterable[str], source: str = "") -> None:
        self.problems = list(problems)
        where = f"{source}: " if source else ""
        super().__init__(where + "invalid monitor configuration: " + "; ".join(self.problems))


class ProbeError(MonitorError):
    """A probe cannot run on this host (not: the target is down)."""


class ReporterError(MonitorError):
    """The reporter cannot store events (its spool cannot be opened or written)."""
