"""Queues bound to the exchange that are not EventSink's and that nobody consumes.

Messages pile up in such a queue forever: some versions of Clowder's publisher declare a new durable,
server-named queue (``amq.gen-...``) bound to the exchange for every event they send, and each of
them then receives a copy of every later event. AMQP cannot list bindings, so this reads RabbitMQ's
management API (plugin ``rabbitmq_management``), at ``EVENTSINK_MANAGEMENT_URL`` or, by default, port
15672 of the first AMQP host with the AMQP URL's user and password.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import pika

from .errors import BrokerError
from .settings import SinkSettings
from .topology import redact_url

MANAGEMENT_PORT = 15672


@dataclass(frozen=True)
class ForeignQueue:
    """A queue bound to the exchange that is not one of EventSink's worker queues."""

    queue: str
    messages: int | None
    consumers: int | None


def management_url(settings: SinkSettings) -> str:
    """Base URL of the management API (credentials included) for ``settings``."""
    if settings.management_url:
        return settings.management_url.rstrip("/")
    parts = urlsplit(settings.amqp_url.split(",")[0].strip())
    user, password = unquote(parts.username or "guest"), unquote(parts.password or "guest")
    scheme = "https" if parts.scheme == "amqps" else "http"
    host = parts.hostname or "localhost"
    return f"{scheme}://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{MANAGEMENT_PORT}"


def _get(base: str, path: str, timeout: float) -> Any:
    parts = urlsplit(base)
    netloc = parts.hostname or "localhost"
    if parts.port:
        netloc += f":{parts.port}"
    request = urllib.request.Request(f"{parts.scheme}://{netloc}{parts.path}{path}")
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        request.add_header("Authorization", "Basic " + base64.b64encode(pair).decode())
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise BrokerError(f"RabbitMQ's management API at {redact_url(base)} answered {exc.code} for {path}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise BrokerError(
            f"RabbitMQ's management API at {redact_url(base)} is not reachable ({exc}); enable the "
            "rabbitmq_management plugin or set EVENTSINK_MANAGEMENT_URL"
        ) from exc


def foreign_queues(settings: SinkSettings, *, timeout: float = 10.0) -> list[ForeignQueue]:
    """Queues bound to ``settings.exchange``, other than ``<exchange>.*``, that have no consumer.

    Depths come from the management API's statistics, which lag the broker by a few seconds.
    Raises BrokerError when the management API cannot be read.
    """
    if not settings.management_url and not settings.amqp_url.split(",")[0].strip().startswith("amqp"):
        raise BrokerError("EVENTSINK_AMQP_URL is not an amqp:// URL; set EVENTSINK_MANAGEMENT_URL")
    base = management_url(settings)
    vhost = quote(pika.URLParameters(settings.amqp_url.split(",")[0].strip()).virtual_host, safe="")
    exchange = quote(settings.exchange, safe="")
    bindings = _get(base, f"/api/exchanges/{vhost}/{exchange}/bindings/source", timeout) or []
    ours = settings.exchange + "."
    names = {
        b.get("destination") for b in bindings
        if b.get("destination_type") == "queue" and not str(b.get("destination", "")).startswith(ours)
    }
    if not names:
        return []
    queues = _get(base, f"/api/queues/{vhost}?columns=name,messages,consumers", timeout) or []
    found = {q.get("name"): q for q in queues if q.get("name") in names}
    out = []
    for name in sorted(n for n in names if isinstance(n, str)):
        info = found.get(name, {})
        consumers = info.get("consumers")
        if consumers:
            continue
        out.append(ForeignQueue(name, info.get("messages"), consumers))
    return out
