"""The shared plugin contract, for the mongodb worker (mongomock, and a real server when configured)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from workers.mongodb import MongoDBSettings, MongoDBWorker
from workers.plugin import WorkerPlugin
from workers.testing import PluginContract, PluginFactory, contract_settings

from .conftest import Backend


class TestMongoDBContract(PluginContract):
    plugin_class = MongoDBWorker

    @pytest.fixture
    def make_plugin(self, backend: Backend) -> PluginFactory:
        self.backend = backend

        def make(**overrides: Any) -> MongoDBWorker:
            settings = contract_settings(MongoDBSettings, url=backend.url, database=backend.database, **overrides)
            return MongoDBWorker(settings, client_factory=backend.client_factory)

        return make

    def read_back(self, plugin: WorkerPlugin, ids: Sequence[str]) -> Mapping[str, float]:
        """How many documents have each id (a second one would need another collection)."""
        counts: dict[str, int] = {}
        for name in self.backend.db.list_collection_names():
            for doc in self.backend.db[name].find({"_id": {"$in": list(ids)}}, {"_id": 1}):
                counts[doc["_id"]] = counts.get(doc["_id"], 0) + 1
        return counts

    def destination_total(self, plugin: WorkerPlugin) -> int:
        """Documents in the test database, over every collection."""
        db = self.backend.db
        return sum(db[name].count_documents({}) for name in db.list_collection_names())
