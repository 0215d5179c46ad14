"""API-key authentication and scope checks for every ``/api/`` route.

A key arrives as ``X-API-Key: <key>`` or ``Authorization: Bearer <key>`` (and in the forms InfluxDB
clients use, see :func:`presented_key`). The same checks serve
the Flask views and the event-loop worker's native routes (:func:`admit`). Keys are never logged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from flask import current_app, request
from werkzeug.datastructures import Authorization

from .keys import ApiKey, KeyFileError, KeyStore
from .problems import Problem

if TYPE_CHECKING:
    from .ratelimit import RateLimiter

log = logging.getLogger(__name__)
#: routes where a key may come as the ``p`` query parameter, as InfluxDB 1.x clients send credentials
QUERY_KEY_PATHS = frozenset({"/write", "/query"})
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="eventsink", ApiKey header="X-API-Key"'}


def key_from_headers(x_api_key: str | None, authorization: str | None) -> str | None:
    """The key carried by the ``X-API-Key`` or ``Authorization`` header (Bearer, Token, or Basic with
    the key as password), if any."""
    if x_api_key:
        return x_api_key.strip()
    scheme, _, value = (authorization or "").partition(" ")
    scheme, value = scheme.lower(), value.strip()
    if scheme in ("bearer", "token") and value:
        return value
    if scheme == "basic":
        basic = Authorization.from_header(authorization)
        if basic is not None and basic.password:
            return basic.password
    return None


def presented_key() -> str | None:
    """The key the client sent, if any.

    Besides ``X-API-Key`` and ``Authorization: Bearer``, the forms InfluxDB clients send:
    ``Authorization: Token <key>`` (2.x), Basic auth with the key as password, and on ``/write`` and
    ``/query`` the ``p`` query parameter (1.x; ``u`` is ignored).
    """
    key = key_from_headers(request.headers.get("X-API-Key"), request.headers.get("Authorization"))
    if key is None and request.path in QUERY_KEY_PATHS:
        return request.args.get("p") or None
    return key


def admit(store: KeyStore, limiter: RateLimiter | None, presented: str | None, remote_addr: str | None) -> ApiKey:
    """Authenticate ``presented``, count the request against the rate limit (429: per key id, or per
    client address when no valid key came), then the key or a 401 problem.

    A keys file that cannot be read fails closed (503): revoked keys must not keep working.
    """
    try:
        key = store.authenticate(presented) if presented else None
    except KeyFileError as exc:
        log.error("%s", exc)
        raise Problem(503, "the API keys file cannot be read; try again later",
                      headers={"Retry-After": "30"}) from None
    if limiter is not None:
        limiter.check(f"key:{key.id}" if key is not None else f"addr:{remote_addr or '-'}")
    if key is None:
        detail = (
            "the API key is invalid or revoked"
            if presented
            else "send an API key as 'X-API-Key: <key>' or 'Authorization: Bearer <key>'"
        )
        raise Problem(401, detail, headers=CHALLENGE)
    return key


def require_key() -> ApiKey:
    """:func:`admit` for the Flask request being served."""
    store: KeyStore = current_app.extensions["eventsink_keys"]
    return admit(store, current_app.extensions.get("eventsink_limiter"), presented_key(), request.remote_addr)


def require_scope(key: ApiKey, types: Iterable[tuple[int, str]], what: str = "index") -> None:
    """403 naming each ``(position, type)`` outside the key's scopes."""
    refused = [
        {what: pos, "field": "type", "message": f"key {key.name!r} may not post {event_type!r}"}
        for pos, event_type in types
        if not key.allows(event_type)
    ]
    if refused:
        raise Problem(
            403,
            f"{len(refused)} event(s) have a type outside the scopes {list(key.scopes)} of key {key.name!r}",
            errors=refused,
        )
