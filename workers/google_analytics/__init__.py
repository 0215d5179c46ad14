"""Google Analytics 4 worker plugin: user-activity events through the Measurement Protocol."""

from .settings import GoogleAnalyticsSettings
from .worker import GoogleAnalyticsWorker

__all__ = ["GoogleAnalyticsSettings", "GoogleAnalyticsWorker"]
