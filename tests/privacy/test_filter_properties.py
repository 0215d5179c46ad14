"""Property: with the personal-data drop rules, no value stored under an e-mail, IP or name key survives,
whatever the nesting (objects, lists of objects) or the key's case; every other value does."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sink_lib.event import Event, build_envelope
from workers.privacy import PERSONAL_DATA_DROP, PrivacyFilter

PROTECTED_KEYS = ["email", "Email", "user_email", "workEmail", "ip", "IP", "client_ip", "ip_address",
                  "remote_addr", "x_forwarded_for", "name", "first_name", "LastName", "username", "file_name"]
PLAIN_KEYS = ["url", "resource_id", "bytes", "zip", "tips", "kind", "id", "ok"]

counter = iter(range(10**9))


def secret_value(_: Any) -> str:
    return f"SECRET-{next(counter)}-VALUE"


def plain_value(_: Any) -> str:
    return f"plain-{next(counter)}-value"


protected = st.builds(lambda key, v: (key, v), st.sampled_from(PROTECTED_KEYS), st.integers().map(secret_value))
plain = st.builds(lambda key, v: (key, v), st.sampled_from(PLAIN_KEYS), st.integers().map(plain_value))

trees = st.recursive(
    st.dictionaries(st.sampled_from(PLAIN_KEYS), st.integers().map(plain_value), max_size=3),
    lambda inner: st.builds(
        lambda pairs, nested, lists: {**dict(pairs), **nested, **lists},
        st.lists(st.one_of(protected, plain), max_size=4),
        st.dictionaries(st.sampled_from(["meta", "contact", "owner"]), inner, max_size=2),
        st.dictionaries(st.sampled_from(["viewers", "items"]), st.lists(inner, max_size=3), max_size=1),
    ),
    max_leaves=12,
)


def values_under(tree: Any, keep: bool, inside_protected: bool = False) -> list[str]:
    """Leaf values outside (keep=True) or inside (keep=False) a protected key."""
    out: list[str] = []
    if isinstance(tree, dict):
        for key, value in tree.items():
            out += values_under(value, keep, inside_protected or key in PROTECTED_KEYS)
    elif isinstance(tree, list):
        for value in tree:
            out += values_under(value, keep, inside_protected)
    elif inside_protected != keep:
        out.append(tree)
    return out


@settings(max_examples=150, deadline=None)
@given(trees)
def test_protected_values_never_survive_and_others_always_do(data: dict[str, Any]) -> None:
    rules = PrivacyFilter(list(PERSONAL_DATA_DROP), [], [], None)
    event = Event.parse(build_envelope("activity.resource.viewed", data, source="/t"))
    wire = json.dumps(rules.apply(event).to_dict())
    assert [v for v in values_under(data, keep=False) if v in wire] == []
    assert [v for v in values_under(data, keep=True) if v not in wire] == []
