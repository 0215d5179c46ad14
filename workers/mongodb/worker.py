"""The mongodb worker: one document per event, ``_id`` = event id, unordered bulk inserts.

Outcomes of ``write``:

- a duplicate ``_id`` (error 11000 on a document that is stored) means the event was written before:
  it counts as written, so redelivery is harmless;
- any other per-document error (a validator, a unique index of the operator's, a document MongoDB
  cannot encode or store) rejects exactly that event with the server's reason;
- everything else pymongo raises (no server, network errors, elections, write concern not met,
  authorization) is re-raised as RetryLater: the events stay queued until the server takes them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

from sink_lib.errors import ConfigurationError
from sink_lib.event import Event
from workers.errors import PluginError, RejectEvents, RetryLater
from workers.plugin import WorkerPlugin

from .documents import collection_name, to_document
from .settings import MongoDBSettings

try:
    import bson
    import pymongo
    from pymongo.errors import BulkWriteError, PyMongoError
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise PluginError("the mongodb worker needs pymongo: pip install 'eventsink[mongodb]'") from exc

ClientFactory = Callable[[MongoDBSettings], Any]
"""Builds the client from the settings; tests pass one returning a mongomock client."""

INDEXES: tuple[list[tuple[str, int]], ...] = (
    [("time", pymongo.ASCENDING)],
    # also serves queries on type alone (its prefix), so no separate type index is kept
    [("type", pymongo.ASCENDING), ("time", pymongo.ASCENDING)],
)
KNOWN_FAMILIES = ("activity", "extraction", "health", "storage", "traffic")
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
DUPLICATE_KEY = 11000


def pymongo_client(settings: MongoDBSettings) -> Any:
    """The production client: ``pymongo.MongoClient(url)`` with the configured timeouts."""
    try:
        return pymongo.MongoClient(
            settings.url,
            serverSelectionTimeoutMS=settings.server_selection_timeout_ms,
            connectTimeoutMS=settings.connect_timeout_ms,
            socketTimeoutMS=settings.socket_timeout_ms,
            tz_aware=True,
            appname="eventsink-worker-mongodb",
        )
    except (pymongo.errors.ConfigurationError, ValueError) as exc:
        raise ConfigurationError(f"EVENTSINK_MONGODB_URL is not usable: {exc}") from exc


class MongoDBWorker(WorkerPlugin):
    """Stores every event as a MongoDB document, idempotently by event id."""

    name: ClassVar[str] = "mongodb"
    settings_model = MongoDBSettings
    settings: MongoDBSettings

    def __init__(self, settings: MongoDBSettings, client_factory: ClientFactory | None = None) -> None:
        super().__init__(settings)
        self._client_factory = client_factory or pymongo_client
        self._client: Any = None
        self._indexed: set[str] = set()

    def open(self) -> None:
        """Connect and create the indexes (idempotent); RetryLater while the server is unreachable."""
        if self._client is None:
            self._client = self._client_factory(self.settings)
        prefix = self.settings.collection
        names = [f"{prefix}_{f}" for f in KNOWN_FAMILIES] if self.settings.collection_per_family else [prefix]
        with _boundary("creating indexes"):
            for name in names:
                self._ensure_indexes(name)

    def close(self) -> None:
        """Close the client's connections."""
        if self._client is not None:
            self._client.close()
            self._client = None
        self._indexed.clear()

    def write(self, batch: Sequence[Event]) -> None:
        """Insert the batch, one unordered bulk insert per collection."""
        if self._client is None:
            raise RetryLater("the mongodb worker is not open")
        groups: dict[str, list[Event]] = {}
        for event in batch:
            groups.setdefault(collection_name(event, self.settings), []).append(event)
        names = list(groups)
        reasons: dict[str, str] = {}
        for position, name in enumerate(names):
            try:
                reasons.update(self._insert(name, groups[name]))
            except RetryLater as exc:
                # collections before this one are written; only this one and the rest need retrying
                retry = [event.id for later in names[position:] for event in groups[later]]
                if reasons:
                    raise RejectEvents(reasons, retry_ids=retry) from exc
                raise RetryLater(exc.reason, event_ids=retry if position else None) from exc
        if reasons:
            raise RejectEvents(reasons)

    def _ensure_indexes(self, name: str) -> None:
        if name in self._indexed:
            return
        collection = self._client[self.settings.database][name]
        for keys in INDEXES:
            collection.create_index(keys)
        self._indexed.add(name)

    def _insert(self, name: str, events: list[Event]) -> dict[str, str]:
        reasons: dict[str, str] = {}
        documents = []
        for event in events:
            document = to_document(event)
            problem = _unstorable(document)
            if problem:
                reasons[event.id] = problem
            else:
                documents.append(document)
        if not documents:
            return reasons
        collection = self._client[self.settings.database][name]
        with _boundary(f"writing to {self.settings.database}.{name}"):
            self._ensure_indexes(name)
            try:
                collection.insert_many(documents, ordered=False)
            except BulkWriteError as exc:
                reasons.update(_write_errors(collection, documents, exc.details))
        return reasons


def _unstorable(document: dict[str, Any]) -> str:
    """Why MongoDB could not store the document ('' when it can), found before sending the batch."""
    try:
        size = len(bson.encode(document))
    except (bson.errors.InvalidDocument, OverflowError) as exc:
        return f"not encodable as BSON: {exc}"
    if size > MAX_DOCUMENT_BYTES:
        return f"document is {size} bytes as BSON; MongoDB stores at most {MAX_DOCUMENT_BYTES}"
    return ""


def _write_errors(
    collection: Any, documents: list[dict[str, Any]], details: Mapping[str, Any]
) -> dict[str, str]:
    """Reject reasons for the per-document errors of a bulk insert; duplicates of stored events are fine."""
    if details.get("writeConcernErrors"):
        # the inserts may not be durable yet; retrying is safe because stored ids come back as duplicates
        raise RetryLater(f"write concern not satisfied: {details['writeConcernErrors'][0].get('errmsg')}")
    reasons: dict[str, str] = {}
    duplicates: dict[str, str] = {}
    for error in details.get("writeErrors", []):
        event_id = documents[error["index"]]["_id"]
        message = f"MongoDB refused the document (code {error.get('code')}): {error.get('errmsg')}"
        if error.get("code") == DUPLICATE_KEY:
            duplicates[event_id] = message
        else:
            reasons[event_id] = message
    if duplicates:
        # 11000 also comes from other unique indexes; only a stored _id means "already written"
        stored = {doc["_id"] for doc in collection.find({"_id": {"$in": list(duplicates)}}, {"_id": 1})}
        reasons.update({key: message for key, message in duplicates.items() if key not in stored})
    return reasons


@contextmanager
def _boundary(doing: str) -> Iterator[None]:
    """Re-raise pymongo's errors as RetryLater: the server is away, busy or refusing the operation."""
    try:
        yield
    except PyMongoError as exc:
        raise RetryLater(f"MongoDB error while {doing}: {type(exc).__name__}: {exc}") from exc
