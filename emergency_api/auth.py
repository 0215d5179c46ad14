"""API-key authentication and scope checks for every ``/api/`` route.

A key arrives as ``X-API-Key: <key>`` or ``Authorization: Bearer <key>`` (and in the forms InfluxDB
clients use, see :func:`presented_key`). The result is cached on
``flask.g`` so the rate limiter (which runs first) and the views check the key once per request.
Keys are never logged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from flask import current_app, g, request

from .keys import ApiKey, KeyFileError, KeyStore
from .problems import Problem

log = logging.getLogger(__name__)
_UNSET = object()
#: routes where a key may come as the ``p`` query parameter, as InfluxDB 1.x clients send credentials
QUERY_KEY_PATHS = frozenset({"/write", "/query"})
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="eventsink", ApiKey header="X-API-Key"'}


def key_store() -> KeyStore:
    """The app's key store."""
    store: KeyStore = current_app.extensions["eventsink_keys"]
    return store


def presented_key() -> str | None:
    """The key the client sent, if any.

    Besides ``X-API-Key`` and ``Authorization: Bearer``, the forms InfluxDB clients send:
    ``Authorization: Token <key>`` (2.x), Basic auth with the key as password, and on ``/write`` and
    ``/query`` the ``p`` query parameter (1.x; ``u`` is ignored).
    """
    key = request.headers.get("X-API-Key")
    if key:
        return key.strip()
    auth = request.headers.get("Authorization", "")
    scheme, _, value = auth.partition(" ")
    scheme, value = scheme.lower(), value.strip()
    if scheme in ("bearer", "token") and value:
        return value
    if scheme == "basic" and request.authorization is not None and request.authorization.password:
        return request.authorization.password
    if request.path in QUERY_KEY_PATHS:
        return request.args.get("p") or None
    return None


def current_key() -> ApiKey | None:
    """The authenticated key of this request, or None (computed once per request)."""
    cached = g.get("api_key", _UNSET)
    if cached is _UNSET:
        presented = presented_key()
        try:
            cached = key_store().authenticate(presented) if presented else None
        except KeyFileError as exc:
            # fail closed: a broken keys file must not keep accepting keys that were just revoked
            log.error("%s", exc)
            raise Problem(503, "the API keys file cannot be read; try again later",
                          headers={"Retry-After": "30"}) from None
        g.api_key = cached
    return cached


def require_key() -> ApiKey:
    """Count the request against the rate limit (429), then the authenticated key or a 401 problem."""
    limiter = current_app.extensions.get("eventsink_limiter")
    if limiter is not None:
        limiter.check()
    key = current_key()
    if key is None:
        detail = (
            "the API key is invalid or revoked"
            if presented_key()
            else "send an API key as 'X-API-Key: <key>' or 'Authorization: Bearer <key>'"
        )
        raise Problem(401, detail, headers=CHALLENGE)
    return key


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
