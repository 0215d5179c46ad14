"""The GA4 Measurement Protocol's documented limits, checked before anything is sent.

GA's /mp/collect answers 2xx even for events it then drops, so every limit is enforced here:
https://developers.google.com/analytics/devguides/collection/protocol/ga4/sending-events#limitations
and the reserved names of
https://developers.google.com/analytics/devguides/collection/protocol/ga4/reference#reserved_names
"""

from __future__ import annotations

import re
from typing import Any

MAX_EVENTS_PER_REQUEST = 25
MAX_PARAMS_PER_EVENT = 25
MAX_USER_PROPERTIES = 25
MAX_EVENT_NAME_LENGTH = 40
MAX_PARAM_NAME_LENGTH = 40
MAX_PARAM_VALUE_LENGTH = 100
#: parameters GA documents with longer values
LONG_PARAM_VALUES = {"page_location": 1000, "page_referrer": 420, "page_title": 300}
MAX_USER_PROPERTY_NAME_LENGTH = 24
MAX_USER_PROPERTY_VALUE_LENGTH = 36
MAX_BODY_BYTES = 130_000
BACKDATING_LIMIT_S = 72 * 3600.0

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
RESERVED_PREFIXES = ("google_", "ga_", "firebase_")
RESERVED_EVENT_NAMES = frozenset({
    "ad_activeview", "ad_click", "ad_exposure", "ad_impression", "ad_query", "ad_reward", "adunit_exposure",
    "app_background", "app_clear_data", "app_exception", "app_remove", "app_store_refund",
    "app_store_subscription_cancel", "app_store_subscription_convert", "app_store_subscription_renew",
    "app_uninstall", "app_update", "app_upgrade", "dynamic_link_app_open", "dynamic_link_app_update",
    "dynamic_link_first_open", "error", "first_open", "first_visit", "in_app_purchase",
    "notification_dismiss", "notification_foreground", "notification_open", "notification_receive",
    "os_update", "session_start", "session_start_with_rollout", "user_engagement",
})
RESERVED_PARAM_NAMES = frozenset({"firebase_conversion"})
RESERVED_USER_PROPERTY_NAMES = frozenset({
    "first_open_time", "first_visit_time", "last_deep_link_referrer", "user_id", "first_open_after_install",
})


def name_problem(kind: str, name: str, max_length: int, reserved: frozenset[str]) -> str | None:
    """Why ``name`` cannot be a GA4 event/parameter/user-property name, or None."""
    if len(name) > max_length:
        return f"{kind} name {name!r} is longer than {max_length} characters"
    if not NAME.fullmatch(name):
        return f"{kind} name {name!r} must be letters, digits and underscores, starting with a letter"
    lowered = name.lower()
    if lowered in reserved or lowered.startswith(RESERVED_PREFIXES):
        return f"{kind} name {name!r} is reserved by Google Analytics"
    return None


def param_value_problem(name: str, value: Any) -> str | None:
    """Why ``value`` cannot be the value of parameter ``name``, or None."""
    limit = LONG_PARAM_VALUES.get(name, MAX_PARAM_VALUE_LENGTH)
    if isinstance(value, str) and len(value) > limit:
        return f"parameter {name!r} is {len(value)} characters long; GA4 takes at most {limit}"
    return None
