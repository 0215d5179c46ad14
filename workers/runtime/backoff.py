"""The runtime's backoff is sink_lib's (one backoff for the whole project)."""

from sink_lib.retry import Backoff

__all__ = ["Backoff"]
