"""The RabbitMQ nodes a client may use: ``EVENTSINK_AMQP_URL`` as a comma-separated list of URLs.

Every client (sync and async sink, worker runtime, CLI) walks the same :class:`BrokerNodes`: it connects
to the current node, and when that node does not answer or its connection is lost it moves to the next
one, so a client fails over to the other nodes of a cluster. The list is shuffled once per client (with
``EVENTSINK_AMQP_SHUFFLE``, the default) so many clients spread over the nodes instead of all using the
first. Only after every node failed in a row should a client back off.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlsplit

log = logging.getLogger("sink_lib.nodes")
_T = TypeVar("_T")


def split_amqp_urls(value: str) -> list[str]:
    """The URLs of a comma-separated list; ValueError naming the bad entry when one is not an AMQP URL."""
    urls = [part.strip() for part in value.split(",")]
    if not any(urls):
        raise ValueError("no RabbitMQ URL given")
    for index, url in enumerate(urls, 1):
        if not url:
            raise ValueError(f"URL {index} of the list is empty (a stray comma?)")
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError as exc:
            raise ValueError(f"URL {index} ({redact_url(url)}) is not valid: {exc}") from exc
        if parts.scheme not in ("amqp", "amqps"):
            raise ValueError(f"URL {index} ({redact_url(url)}) must start with amqp:// or amqps://")
        if not parts.hostname:
            raise ValueError(f"URL {index} ({redact_url(url)}) names no host")
    return urls


def redact_url(url: str) -> str:
    """The URL (or comma-separated URLs) with passwords replaced, for logs and error messages."""
    if "," in url:
        return ",".join(redact_url(part.strip()) for part in url.split(","))
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


def node_label(url: str) -> str:
    """``host:port`` of a URL, the way logs name a node."""
    parts = urlsplit(url)
    default = 5671 if parts.scheme == "amqps" else 5672
    return f"{parts.hostname}:{parts.port or default}"


class BrokerNodes:
    """A client's view of the broker nodes: which one to use now, and where to go when it fails."""

    def __init__(self, amqp_url: str, *, shuffle: bool = True, rng: random.Random | None = None) -> None:
        self.urls = split_amqp_urls(amqp_url)
        if shuffle and len(self.urls) > 1:
            (rng or random.Random()).shuffle(self.urls)
        self._index = 0
        self._failures = 0  # consecutive failures since the last success

    def __len__(self) -> int:
        return len(self.urls)

    @property
    def current(self) -> str:
        """The URL to use now."""
        return self.urls[self._index]

    @property
    def label(self) -> str:
        """``host:port`` of the current node."""
        return node_label(self.current)

    def failed(self) -> bool:
        """The current node failed: move to the next; True once every node failed in a row."""
        self._failures += 1
        self._index = (self._index + 1) % len(self.urls)
        if self._failures >= len(self.urls):
            self._failures = 0
            return True
        return False

    def succeeded(self) -> None:
        """The current node answered."""
        self._failures = 0

    def connect(self, attempt: Callable[[str], _T], errors: tuple[type[BaseException], ...]) -> _T:
        """``attempt(url)`` on each node in turn from the current one; the first result, else the last error."""
        last: BaseException | None = None
        for _ in range(len(self.urls)):
            url = self.current
            try:
                result = attempt(url)
            except errors as exc:
                log.info("RabbitMQ node %s did not answer (%r)", node_label(url), exc)
                last = exc
                self.failed()
                continue
            self.succeeded()
            return result
        assert last is not None
        raise last
