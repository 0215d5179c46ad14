"""PrivacyFilter: which fields are dropped, hashed or kept, and how."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest
from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from sink_lib.errors import ConfigurationError
from sink_lib.event import Event, build_envelope
from workers.plugin import WorkerSettings
from workers.privacy import PERSONAL_DATA_DROP, PrivacyFilter

KEY = b"k3y"


def make(data: dict[str, Any], **extra: Any) -> Event:
    return Event.parse(build_envelope("activity.resource.viewed", data, source="/t", userid="alice", **extra))


def digest(value: str) -> str:
    return hmac.new(KEY, value.encode(), hashlib.sha256).hexdigest()


def test_no_rules_means_no_filter() -> None:
    assert PrivacyFilter.from_settings(WorkerSettings()) is None


def test_keep_beats_drop_beats_hash() -> None:
    rules = PrivacyFilter(drop=["data.*email*"], hash_=["data.*", "userid"], keep=["data.work_email"], secret=KEY)
    out = rules.apply(make({"email": "a@x", "work_email": "w@x", "file_id": "f1"}))
    assert out.data == {"work_email": "w@x", "file_id": digest("f1")}
    assert out.userid == digest("alice")


def test_patterns_match_case_insensitively_and_across_nesting() -> None:
    rules = PrivacyFilter(drop=list(PERSONAL_DATA_DROP), hash_=[], keep=[], secret=None)
    data = {"userEmail": "a@x", "Contact": {"E_Mail": "b@x", "phone": "1"}, "IP": "1.2.3.4", "client_ip": "5",
            "ip_address": "6", "FirstName": "Al", "resource_id": "r1", "zip": "12345"}
    out = rules.apply(make(data))
    assert out.data == {"Contact": {"phone": "1"}, "resource_id": "r1", "zip": "12345"}


def test_objects_inside_lists_are_filtered_and_hashed_lists_hash_each_element() -> None:
    rules = PrivacyFilter(drop=["data.*email*"], hash_=["data.ids"], keep=[], secret=KEY)
    out = rules.apply(make({"viewers": [{"email": "a@x", "n": 1}, "plain"], "ids": ["u1", "u2"]}))
    assert out.data == {"viewers": [{"n": 1}, "plain"], "ids": [digest("u1"), digest("u2")]}


def test_extension_attributes_follow_the_rules_and_the_original_is_untouched() -> None:
    rules = PrivacyFilter(drop=["tenant"], hash_=["region"], keep=[], secret=KEY)
    original = Event.parse({**make({"a": 1}, region="us-east").to_dict(), "tenant": "acme"})
    out = rules.apply(original)
    assert "tenant" not in out.to_dict()
    assert out.region == digest("us-east")
    assert original.region == "us-east" and original.model_extra == {"tenant": "acme"}


def test_hashing_without_a_secret_names_the_workers_variable() -> None:
    class DemoSettings(WorkerSettings):
        model_config = SettingsConfigDict(env_prefix="EVENTSINK_DEMO_", extra="ignore")
        privacy_hash: list[str] = Field(default_factory=lambda: ["userid"], description="hash")

    with pytest.raises(ConfigurationError, match="EVENTSINK_DEMO_PRIVACY_SECRET"):
        PrivacyFilter.from_settings(DemoSettings())
    rules = PrivacyFilter.from_settings(DemoSettings(privacy_secret=SecretStr("k3y")))
    assert rules is not None and rules.apply(make({})).userid == digest("alice")
