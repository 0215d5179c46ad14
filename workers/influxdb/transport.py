"""The two ways to InfluxDB: ``/write`` of 1.x (requests) and ``/api/v2/write`` of 2.x (influxdb-client).

Both take a line protocol body and either return (every point accepted) or raise
:class:`WriteFailed` carrying the HTTP status (None when no answer came), the server's message and
its Retry-After hint. The worker decides what a failure means.
"""

from __future__ import annotations

import gzip as gzip_
import json
import logging
from typing import Any

from sink_lib.retry import parse_retry_after
from sink_lib.topology import redact_url

from .settings import InfluxDBSettings

log = logging.getLogger(__name__)


class WriteFailed(Exception):
    """A write or an administrative request did not succeed."""

    def __init__(self, status: int | None, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"HTTP {status}: {message}" if status is not None else message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


def retry_after(value: str | None) -> float | None:
    """Seconds of a Retry-After header (delta-seconds or HTTP-date), else None."""
    return parse_retry_after(value)


def error_text(body: bytes | str | None) -> str:
    """The ``error`` (1.x) or ``message`` (2.x) of an InfluxDB error body, else the body itself."""
    if body is None:
        return ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        obj = json.loads(text)
    except ValueError:
        return text.strip()[:2000]
    if isinstance(obj, dict):
        return str(obj.get("error") or obj.get("message") or text)[:2000]
    return text[:2000]


class V1Transport:
    """InfluxDB 1.x: ``POST /write?db=&rp=&precision=ns`` over one keep-alive requests session."""

    def __init__(self, settings: InfluxDBSettings) -> None:
        import requests

        self._requests = requests
        self.settings = settings
        self.base = settings.url.rstrip("/")
        self.session = requests.Session()
        if settings.username is not None:
            password = settings.password.get_secret_value() if settings.password else ""
            self.session.auth = (settings.username, password)
        self.params = {"db": settings.database, "precision": "ns"}
        if settings.retention_policy:
            self.params["rp"] = settings.retention_policy
        self.headers = {"Content-Type": "text/plain; charset=utf-8"}
        if settings.gzip:
            self.headers["Content-Encoding"] = "gzip"

    def _post(self, path: str, **kwargs: Any) -> Any:
        try:
            return self.session.post(self.base + path, timeout=self.settings.timeout_s, **kwargs)
        except self._requests.RequestException as exc:
            where = redact_url(self.base)
            raise WriteFailed(None, f"InfluxDB at {where} unreachable: {exc.__class__.__name__}: {exc}") from exc

    def write(self, body: bytes) -> None:
        """Send one batch of lines."""
        if self.settings.gzip:
            body = gzip_.compress(body, compresslevel=1)
        resp = self._post("/write", params=self.params, data=body, headers=self.headers)
        if resp.status_code != 204:
            raise WriteFailed(resp.status_code, error_text(resp.content), retry_after(resp.headers.get("Retry-After")))

    def create_database(self) -> None:
        """``CREATE DATABASE`` (idempotent in InfluxDB); raises WriteFailed when refused."""
        name = self.settings.database.replace("\\", "\\\\").replace('"', '\\"')
        resp = self._post("/query", data={"q": f'CREATE DATABASE "{name}"'})
        message = error_text(resp.content)
        if resp.status_code != 200 or '"error"' in resp.text:
            raise WriteFailed(resp.status_code, message)

    def close(self) -> None:
        """Close the session's connections."""
        self.session.close()


class V2Transport:
    """InfluxDB 2.x and 1.8+: ``/api/v2/write`` through influxdb-client's synchronous write API."""

    def __init__(self, settings: InfluxDBSettings) -> None:
        try:
            from influxdb_client import InfluxDBClient, WritePrecision
            from influxdb_client.client.write_api import SYNCHRONOUS
            from influxdb_client.rest import ApiException
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise ImportError("InfluxDB 2.x needs influxdb-client: pip install 'eventsink[influxdb]'") from exc
        import urllib3.exceptions

        assert settings.token is not None and settings.bucket is not None and settings.org is not None
        self.settings = settings
        self._api_exception = ApiException
        self._http_errors = (urllib3.exceptions.HTTPError, OSError)
        self._precision: Any = WritePrecision.NS
        # retries=False: backing off is the worker runtime's job, done once for every plugin
        self.client = InfluxDBClient(
            url=settings.url,
            token=settings.token.get_secret_value(),
            org=settings.org or "",
            timeout=int(settings.timeout_s * 1000),
            enable_gzip=settings.gzip,
            retries=False,
        )
        self.api = self.client.write_api(write_options=SYNCHRONOUS)

    def write(self, body: bytes) -> None:
        """Send one batch of lines."""
        try:
            self.api.write(
                bucket=self.settings.bucket or "",
                org=self.settings.org or "",
                record=body,
                write_precision=self._precision,
            )
        except self._api_exception as exc:
            headers: Any = exc.headers or {}
            raise WriteFailed(
                exc.status, error_text(exc.body) or str(exc.reason), retry_after(headers.get("Retry-After"))
            ) from exc
        except self._http_errors as exc:
            raise WriteFailed(None, f"InfluxDB at {redact_url(self.settings.url)} unreachable: {exc!r}") from exc

    def close(self) -> None:
        """Close the client."""
        self.client.close()
