"""Amplitude worker plugin: user-activity events to Amplitude's HTTP V2 or batch API."""

from .settings import AmplitudeSettings
from .worker import AmplitudeWorker

__all__ = ["AmplitudeSettings", "AmplitudeWorker"]
