"""Privacy rules applied to events before a worker writes them anywhere.

Per worker, configured through its settings (``EVENTSINK_<WORKER>_PRIVACY_DROP`` / ``_HASH`` / ``_KEEP``
/ ``_SECRET``). Patterns are fnmatch patterns over field paths: ``userid`` (the extension attribute)
and ``data.<key>`` paths (``data.email``, ``data.*.ip``). ``keep`` wins over ``drop``, ``drop`` over
``hash``. Hashing is HMAC-SHA256 with the secret, hex-encoded, so the same value maps to the same
pseudonym across events without revealing it.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
from typing import Any

from sink_lib.errors import ConfigurationError
from sink_lib.event import Event


class PrivacyFilter:
    """Drops, hashes or keeps fields of events according to a worker's rules."""

    def __init__(self, drop: list[str], hash_: list[str], keep: list[str], secret: bytes | None) -> None:
        if hash_ and not secret:
            raise ConfigurationError("privacy_hash is set but privacy_secret is empty: set the _PRIVACY_SECRET")
        self.drop, self.hash, self.keep, self._secret = tuple(drop), tuple(hash_), tuple(keep), secret

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
        return cls(drop, hash_, keep, raw)

    def action(self, path: str) -> str:
        """``keep``, ``drop`` or ``hash`` for a field path."""
        if any(fnmatch.fnmatchcase(path, p) for p in self.keep):
            return "keep"
        if any(fnmatch.fnmatchcase(path, p) for p in self.drop):
            return "drop"
        if any(fnmatch.fnmatchcase(path, p) for p in self.hash):
            return "hash"
        return "keep"

    def pseudonym(self, value: Any) -> str:
        """HMAC-SHA256 of the value's text, hex."""
        assert self._secret is not None
        return hmac.new(self._secret, str(value).encode(), hashlib.sha256).hexdigest()

    def apply(self, event: Event) -> Event:
        """A copy of ``event`` with the rules applied."""
        update: dict[str, Any] = {"data": self._walk(event.data, "data")}
        if event.userid is not None:
            act = self.action("userid")
            if act == "drop":
                update["userid"] = None
            elif act == "hash":
                update["userid"] = self.pseudonym(event.userid)
        return event.model_copy(update=update)

    def _walk(self, value: dict[str, Any], prefix: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, item in value.items():
            path = f"{prefix}.{key}"
            act = self.action(path)
            if act == "drop":
                continue
            if act == "hash" and item is not None:
                out[key] = self.pseudonym(item)
            elif isinstance(item, dict):
                out[key] = self._walk(item, path)
            else:
                out[key] = item
        return out
