"""Our events -> GA4 Measurement Protocol events, checked against the documented limits.

- ``name``: the configured mapping (``traffic.page.viewed`` -> ``page_view`` ...), else the type with
  dots and dashes as underscores.
- ``client_id``: ``data.<client_id_field>`` when the app sends one (a raw ``_ga`` cookie value
  ``GA1.1.<n>.<t>`` is reduced to ``<n>.<t>``); else derived from ``userid`` (after
  the privacy rules, so a pseudonym by default): HMAC-SHA256 keyed with the privacy secret (or, without
  one, the measurement id), its first 8 bytes read as two numbers and written ``"<10 digits>.<10 digits>"``,
  the shape of a gtag.js client id. The same user always gets the same client id.
- ``user_id``: ``userid`` (a pseudonym by default) unless ``send_user_id`` is off.
- ``timestamp_micros``: the event time; events older than ``max_age_s`` (GA4: 72 h) are refused,
  times in the future are sent as now.
- ``params``: ``data`` keys (renamed by ``param_names``), nested objects flattened with ``_``
  (``{"a": {"b": 1}}`` -> ``a_b``), lists sent as JSON text, booleans as ``"true"``/``"false"``, nulls left out;
  plus ``event_id`` (``event_id_param``) = our event id.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass
from typing import Any

from sink_lib.event import Event
from workers.thirdparty import Unsendable

from . import limits
from .settings import GoogleAnalyticsSettings

# the value of a ``_ga`` cookie ("GA1.1.<random>.<timestamp>"): the client id is its last two parts
_GA_COOKIE = re.compile(r"^GA\d+\.\d+\.(\d+\.\d+)$")


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One mapped event: our id, who it is about (the request-level fields), and its GA4 event."""

    event_id: str
    client_id: str
    user_id: str | None
    user_properties: tuple[tuple[str, Any], ...]
    body: dict[str, Any]
    micros: int

    @property
    def group(self) -> tuple[str, str | None, tuple[tuple[str, Any], ...]]:
        """Events sharing this key can go in one request."""
        return self.client_id, self.user_id, self.user_properties


class Mapper:
    """Maps events with one worker's settings (the client-id key is derived once)."""

    def __init__(self, settings: GoogleAnalyticsSettings) -> None:
        self.settings = settings
        secret = settings.privacy_secret
        self._key = secret.get_secret_value().encode() if secret else settings.measurement_id.encode()
        self._names: dict[str, str] = {}
        self._client_ids: dict[str, str] = {}
        self._good_params: set[str] = set()

    def client_id_for(self, userid: str) -> str:
        """The deterministic GA client id of a user id."""
        found = self._client_ids.get(userid)
        if found is None:
            digest = hmac.new(self._key, userid.encode(), hashlib.sha256).digest()
            high = int.from_bytes(digest[:4], "big") % 10**10
            low = int.from_bytes(digest[4:8], "big") % 10**10
            found = f"{high:010d}.{low:010d}"
            if len(self._client_ids) >= 4096:
                self._client_ids.clear()
            self._client_ids[userid] = found
        return found

    def event_name(self, type_: str) -> str:
        """GA4 event name of one of our types; raises Unsendable when GA would refuse it."""
        name = self._names.get(type_)
        if name is None:
            name = self.settings.event_names.get(type_) or type_.replace(".", "_").replace("-", "_")
            problem = limits.name_problem("event", name, limits.MAX_EVENT_NAME_LENGTH, limits.RESERVED_EVENT_NAMES)
            if problem:
                raise Unsendable(problem + f" (type {type_}; map it with EVENT_NAMES)")
            self._names[type_] = name
        return name

    def map(self, event: Event, now: float | None = None) -> Outgoing:
        """Map one event; raises :class:`Unsendable` when GA4 could not take it."""
        settings = self.settings
        data = event.data
        name = self.event_name(event.type)
        client_id = data.get(settings.client_id_field)
        if isinstance(client_id, str) and (cookie := _GA_COOKIE.match(client_id)):
            client_id = cookie.group(1)
        if not isinstance(client_id, str) or not client_id:
            if not event.userid:
                raise Unsendable(f"no {settings.client_id_field} in data and no userid", skip=True)
            client_id = self.client_id_for(event.userid)
        now = time.time() if now is None else now
        stamp = event.time.timestamp()
        if now - stamp > settings.max_age_s:
            raise Unsendable(
                f"event is {(now - stamp) / 3600:.1f} h old; GA4 takes events backdated at most 72 h "
                f"(MAX_AGE_S={settings.max_age_s:g})"
            )
        micros = int(min(stamp, now) * 1_000_000)
        params: dict[str, Any] = {}
        user_properties: dict[str, Any] = {}
        skip = {settings.client_id_field}
        for key, value in data.items():
            if key in skip or value is None:
                continue
            if key in settings.user_property_fields:
                user_properties[key] = value
                continue
            self._add_param(params, settings.param_names.get(key, key), value)
        if settings.event_id_param:
            params[settings.event_id_param] = event.id
        self._check_params(params)
        body: dict[str, Any] = {"name": name, "params": params, "timestamp_micros": micros}
        return Outgoing(event.id, client_id, event.userid if settings.send_user_id else None,
                        _user_properties(user_properties), body, micros)

    def _add_param(self, params: dict[str, Any], name: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                if inner is not None:
                    self._add_param(params, f"{name}_{key}", inner)
        elif isinstance(value, bool):
            params[name] = "true" if value else "false"
        elif isinstance(value, list):
            params[name] = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        else:
            params[name] = value

    def _check_params(self, params: dict[str, Any]) -> None:
        if len(params) > limits.MAX_PARAMS_PER_EVENT:
            raise Unsendable(f"{len(params)} parameters; GA4 takes at most {limits.MAX_PARAMS_PER_EVENT} per event")
        for name, value in params.items():
            if name not in self._good_params:
                problem = limits.name_problem("parameter", name, limits.MAX_PARAM_NAME_LENGTH,
                                              limits.RESERVED_PARAM_NAMES)
                if problem:
                    raise Unsendable(problem)
                if len(self._good_params) < 4096:  # parameter names repeat; check each once
                    self._good_params.add(name)
            if isinstance(value, str):
                problem = limits.param_value_problem(name, value)
                if problem:
                    raise Unsendable(problem)


def _user_properties(values: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    if len(values) > limits.MAX_USER_PROPERTIES:
        raise Unsendable(f"{len(values)} user properties; GA4 takes at most {limits.MAX_USER_PROPERTIES}")
    out = []
    for name, value in sorted(values.items()):
        problem = limits.name_problem("user property", name, limits.MAX_USER_PROPERTY_NAME_LENGTH,
                                      limits.RESERVED_USER_PROPERTY_NAMES)
        if problem:
            raise Unsendable(problem)
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            value = json.dumps(value, separators=(",", ":"))
        if isinstance(value, str) and len(value) > limits.MAX_USER_PROPERTY_VALUE_LENGTH:
            limit = limits.MAX_USER_PROPERTY_VALUE_LENGTH
            raise Unsendable(f"user property {name!r} is longer than {limit} characters")
        out.append((name, value))
    return tuple(out)
