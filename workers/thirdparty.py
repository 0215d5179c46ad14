"""What the workers that send to third-party HTTP services (amplitude, google_analytics) share.

Their settings start from privacy defaults (no e-mail, IP or name fields leave the system; user ids
are pseudonymised), their mapping refuses events with :class:`Unsendable`, their HTTP sessions read
the proxy environment once, and their own counters are exported to the worker's /metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import requests
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector
from pydantic import Field

from sink_lib.retry import parse_retry_after

from .plugin import WorkerSettings
from .privacy import PERSONAL_DATA_DROP


class ThirdPartySettings(WorkerSettings):
    """Worker settings whose privacy rules default to what may leave the system for a third party."""

    privacy_drop: list[str] = Field(
        default_factory=lambda: list(PERSONAL_DATA_DROP),
        description="Fields removed before sending; default: e-mail, IP and *name* fields (see README).",
    )
    privacy_hash: list[str] = Field(
        default_factory=lambda: ["userid"],
        description="Fields replaced by HMAC-SHA256(privacy_secret, value); default: userid.",
    )


class Unsendable(Exception):
    """The event cannot be sent; ``skip`` True means it is acked and counted, else dead-lettered."""

    def __init__(self, reason: str, *, skip: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.skip = skip


def retry_after(response: requests.Response) -> float | None:
    """Seconds of the response's Retry-After header, when it has a usable one."""
    return parse_retry_after(response.headers.get("Retry-After"))


def new_session(url: str) -> requests.Session:
    """A keep-alive session whose proxy and CA settings come from the environment once, here.

    requests otherwise re-reads the proxy environment on every request, which costs more than the
    request itself against a nearby endpoint.
    """
    session = requests.Session()
    resolved = session.merge_environment_settings(url, {}, None, None, None)
    session.trust_env = False
    session.proxies.update(resolved.get("proxies") or {})
    session.verify = resolved.get("verify", True)
    return session


class PluginCounters(Collector):
    """A plugin's own counters, read when Prometheus scrapes (the hot path only adds to ints)."""

    def __init__(self, worker_name: str, counters: Sequence[tuple[str, str, Callable[[], int]]]) -> None:
        self.worker_name = worker_name
        self.counters = counters

    def collect(self) -> Iterator[CounterMetricFamily]:
        """The current counts, labelled with the worker name like the runtime's metrics."""
        for metric, doc, value in self.counters:
            family = CounterMetricFamily(metric, doc, labels=["worker"])
            family.add_metric([self.worker_name], value())
            yield family
