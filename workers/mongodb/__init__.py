"""The mongodb worker plugin: stores each event as a document whose ``_id`` is the event id."""

from .settings import MongoDBSettings
from .worker import MongoDBWorker

__all__ = ["MongoDBSettings", "MongoDBWorker"]
