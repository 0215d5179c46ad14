"""Worker runtime and plugins: thin consumers that drain one queue each into a destination."""

from .errors import PluginError, RejectEvents, RetryLater, WorkerError
from .plugin import WorkerPlugin, WorkerSettings

__all__ = ["PluginError", "RejectEvents", "RetryLater", "WorkerError", "WorkerPlugin", "WorkerSettings"]
