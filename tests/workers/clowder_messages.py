"""Clowder's event-sink messages as Clowder builds them, and a publisher that sends them as Clowder does.

The shapes follow clowder-framework/clowder ``app/services/EventSinkService.scala`` (one ``log*Event``
method per message; ``logEvent`` adds ``created`` as epoch milliseconds, Play JSON's way of writing a
``java.util.Date``). Ids are 24-hex MongoDB ObjectIds, as Clowder's ``models.UUID`` writes them.
``RabbitMQMessageService.submit`` declares the exchange (fanout, durable) and publishes with no
properties (``basicPublish(exchange, routingKey, null, body)``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pika

ANONYMOUS = "000000000000000000000000"
CREATED = 1_733_011_200_123  # 2024-12-01T00:00:00.123Z
FILE, DATASET = "5f0c0000000000000000f11e", "5f0c00000000000000da7a5e"
COLLECTION, SPACE = "5f0c000000000000000c011e", "5f0c0000000000000000face"
USER, AUTHOR = "5f0c00000000000000000a11", "5f0c0000000000000000a07b"
USER_NAME, AUTHOR_NAME = "Ann Userton", "Bob Authorson"
FILE_NAME, DATASET_NAME = "ann-private-notes.csv", "Ann's thesis data"
NAMES = (USER_NAME, AUTHOR_NAME, FILE_NAME, DATASET_NAME, "Space of Bob", "Collection of Bob")


def _people(user: str = USER, user_name: str = USER_NAME) -> dict[str, Any]:
    return {"author_id": AUTHOR, "author_name": AUTHOR_NAME, "user_id": user, "user_name": user_name}


def signup(created: int | str = CREATED) -> dict[str, Any]:
    """``logUserSignupEvent``."""
    return {"category": "user_activity", "type": "signup", "user_id": USER, "user_name": USER_NAME, "created": created}


def login(created: int | str = CREATED) -> dict[str, Any]:
    """``logUserLoginEvent``."""
    return {"category": "user_activity", "type": "login", "user_id": USER, "user_name": USER_NAME, "created": created}


def view(kind: str, created: int | str = CREATED, user: str = USER) -> dict[str, Any]:
    """``logFileViewEvent`` / ``logDatasetViewEvent`` / ``logCollectionViewEvent`` / ``logSpaceViewEvent``."""
    ids = {"file": FILE, "dataset": DATASET, "collection": COLLECTION, "space": SPACE}
    names = {"file": FILE_NAME, "dataset": DATASET_NAME, "collection": "Collection of Bob", "space": "Space of Bob"}
    return {"category": "view_resource", "type": kind, "resource_id": ids[kind], "resource_name": names[kind],
            **_people(user, "Anonymous User" if user == ANONYMOUS else USER_NAME), "created": created}


def extraction(kind: str, created: int | str = CREATED) -> dict[str, Any]:
    """``logSubmitFileToExtractorEvent`` / ``...DatasetToExtractor...`` / ``...SelectionToExtractor...``."""
    resource, name = (FILE, FILE_NAME) if kind == "file" else (DATASET, DATASET_NAME)
    return {"category": "extraction", "type": kind, "extractor_name": "ncsa.wordcount", "resource_id": resource,
            "resource_name": name, **_people(), "created": created}


def upload(with_dataset: bool = True, created: int | str = CREATED, size: int = 4096) -> dict[str, Any]:
    """``logFileUploadEvent`` (with and without a dataset): no ``type``, no file id."""
    message: dict[str, Any] = {"category": "upload"}
    if with_dataset:
        message |= {"dataset_id": DATASET, "dataset_name": DATASET_NAME, "author_name": AUTHOR_NAME,
                    "author_id": AUTHOR}
    return message | {"user_id": USER, "user_name": USER_NAME, "resource_name": FILE_NAME, "size": size,
                      "created": created}


def download_file(created: int | str = CREATED) -> dict[str, Any]:
    """``logFileDownloadEvent``: ``size`` is the file's length in bytes."""
    return {"category": "download", "type": "file", "resource_id": FILE, "resource_name": FILE_NAME, **_people(),
            "size": 4096, "created": created}


def download_dataset(created: int | str = CREATED) -> dict[str, Any]:
    """``logDatasetDownloadEvent``: ``size`` is the number of files plus folders, not bytes."""
    return {"category": "download", "type": "dataset", "resource_id": DATASET, "resource_name": DATASET_NAME,
            **_people(), "size": 7, "created": created}


def archive(category: str = "archive", created: int | str = CREATED) -> dict[str, Any]:
    """``logFileArchiveEvent`` / ``logFileUnarchiveEvent``."""
    return {"category": category, "type": "file", "resource_id": FILE, "resource_name": FILE_NAME, **_people(),
            "size": 4096, "created": created}


def every_message(created: int = CREATED) -> list[dict[str, Any]]:
    """One message of each kind Clowder sends (distinct ``created`` so none is a duplicate of another)."""
    makers = [
        signup, login, *(lambda created, k=k: view(k, created) for k in ("file", "dataset", "collection", "space")),
        *(lambda created, k=k: extraction(k, created) for k in ("file", "dataset", "selection")),
        upload, lambda created: upload(False, created), download_file, download_dataset, archive,
        lambda created: archive("unarchive", created),
    ]
    return [make(created=created + i) for i, make in enumerate(makers)]  # type: ignore[operator]


def body(message: dict[str, Any]) -> bytes:
    """The body as Clowder writes it (``message.toString.getBytes``: compact JSON, UTF-8)."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()


def publish_like_clowder(amqp_url: str, exchange: str, messages: Iterable[dict[str, Any]]) -> None:
    """Declare ``exchange`` as a durable fanout and publish each message with no properties."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        channel.exchange_declare(exchange, exchange_type="fanout", durable=True)
        channel.confirm_delivery()  # only so the test knows the broker has them; Clowder does not wait
        for message in messages:
            channel.basic_publish(exchange, "", body(message))
    finally:
        connection.close()
