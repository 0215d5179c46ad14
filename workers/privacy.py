"""Privacy rules applied to events before a worker writes them anywhere.

Per worker, configured through its settings (``EVENTSINK_<WORKER>_PRIVACY_DROP`` / ``_HASH`` / ``_KEEP``
/ ``_SECRET``). Patterns are fnmatch patterns over field paths, matched case-insensitively (so
``data.*email*`` also catches ``data.userEmail``): ``userid``, ``subject``, ``region`` and other
extension attributes by name, and ``data.<key>`` paths for the payload. ``*`` also crosses dots, so
``data.*email*`` matches ``data.user.email``. Objects inside lists are walked with the list's own
path (``data.users.email`` for ``{"users": [{"email": ...}]}``), so a list never hides a protected field.

``keep`` wins over ``drop``, ``drop`` over ``hash``. Hashing is HMAC-SHA256 with the secret,
hex-encoded, so the same value maps to the same pseudonym across events without revealing it; a hashed
list has each element hashed.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import re
from collections.abc import Iterable
from typing import Any

from sink_lib.errors import ConfigurationError
from sink_lib.event import Event

#: Drop patterns for workers that send data to third parties (amplitude, google_analytics): e-mail
#: addresses, IP addresses, and every key containing "name" (person names, user names, and file or
#: host names, which often carry a person's name). Keep a field anyway with ``_PRIVACY_KEEP``.
PERSONAL_DATA_DROP: tuple[str, ...] = (
    "data.*email*",
    "data.*e_mail*",
    "data.ip",
    "data.*.ip",
    "data.*_ip",
    "data.*.ip_*",
    "data.ip_*",
    "data.*ipaddr*",
    "data.*ip_addr*",
    "data.*remote_addr*",
    "data.*forwarded_for*",
    "data.*name*",
)

_CACHE_LIMIT = 4096


def _compile(patterns: Iterable[str]) -> re.Pattern[str] | None:
    parts = [fnmatch.translate(p) for p in patterns]
    return re.compile("|".join(parts), re.IGNORECASE) if parts else None


class PrivacyFilter:
    """Drops, hashes or keeps fields of events according to a worker's rules."""

    def __init__(
        self,
        drop: list[str],
        hash_: list[str],
        keep: list[str],
        secret: bytes | None,
        *,
        secret_variable: str = "the worker's _PRIVACY_SECRET",
    ) -> None:
        if hash_ and not secret:
            raise ConfigurationError(
                f"privacy_hash is set ({', '.join(hash_)}) but the hash key is empty: set {secret_variable} "
                f"to a long random string, or set {secret_variable.replace('_SECRET', '_HASH')}='[]' to send "
                "those fields unhashed"
            )
        self.drop, self.hash, self.keep, self._secret = tuple(drop), tuple(hash_), tuple(keep), secret
        self._keep_re, self._drop_re, self._hash_re = _compile(keep), _compile(drop), _compile(hash_)
        self._actions: dict[str, str] = {}
        self._pseudonyms: dict[str, str] = {}  # user ids repeat a lot; HMAC each one once

    @classmethod
    def from_settings(cls, settings: Any) -> PrivacyFilter | None:
        """The filter a worker's settings describe, or None when they set no rule."""
        drop = list(getattr(settings, "privacy_drop", []) or [])
        hash_ = list(getattr(settings, "privacy_hash", []) or [])
        if not drop and not hash_:
            return None
        keep = list(getattr(settings, "privacy_keep", []) or [])
        secret = getattr(settings, "privacy_secret", None)
        raw = secret.get_secret_value().encode() if secret is not None else None
        config = getattr(settings, "model_config", {}) or {}
        prefix = config.get("env_prefix") or "EVENTSINK_<WORKER>_"
        return cls(drop, hash_, keep, raw, secret_variable=f"{prefix.upper()}PRIVACY_SECRET")

    def action(self, path: str) -> str:
        """``keep``, ``drop`` or ``hash`` for a field path."""
        act = self._actions.get(path)
        if act is None:
            act = self._decide(path)
            if len(self._actions) >= _CACHE_LIMIT:
                self._actions.clear()
            self._actions[path] = act
        return act

    def _decide(self, path: str) -> str:
        if self._keep_re is not None and self._keep_re.match(path):
            return "keep"
        if self._drop_re is not None and self._drop_re.match(path):
            return "drop"
        if self._hash_re is not None and self._hash_re.match(path):
            return "hash"
        return "keep"

    def pseudonym(self, value: Any) -> str:
        """HMAC-SHA256 of the value's text, hex."""
        if self._secret is None:
            raise ConfigurationError("no privacy secret is configured, so values cannot be hashed")
        text = str(value)
        found = self._pseudonyms.get(text)
        if found is None:
            found = hmac.new(self._secret, text.encode(), hashlib.sha256).hexdigest()
            if len(self._pseudonyms) >= _CACHE_LIMIT:
                self._pseudonyms.clear()
            self._pseudonyms[text] = found
        return found

    def apply(self, event: Event) -> Event:
        """A copy of ``event`` with the rules applied."""
        update: dict[str, Any] = {"data": self._walk(event.data, "data")}
        for name in ("userid", "region", "subject", *(event.model_extra or {})):
            value = getattr(event, name, None)
            if value is None:
                continue
            act = self.action(name)
            if act == "drop":
                update[name] = None
            elif act == "hash":
                update[name] = self.pseudonym(value)
        return event.model_copy(update=update)

    def _walk(self, value: dict[str, Any], prefix: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, item in value.items():
            path = f"{prefix}.{key}"
            act = self.action(path)
            if act == "drop":
                continue
            if act == "hash" and item is not None:
                out[key] = self._hashed(item)
            else:
                out[key] = self._inner(item, path)
        return out

    def _inner(self, item: Any, path: str) -> Any:
        if isinstance(item, dict):
            return self._walk(item, path)
        if isinstance(item, list):
            return [self._inner(element, path) for element in item]
        return item

    def _hashed(self, item: Any) -> Any:
        if isinstance(item, list):
            return [self._hashed(element) for element in item]
        return self.pseudonym(item)
