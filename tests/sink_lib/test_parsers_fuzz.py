"""Fuzzing the small parsers of sink_lib: Retry-After values and AMQP URL lists.

Whatever text arrives (a hostile server's header, a mistyped setting), they answer with their documented
result or their documented error, never anything else.
"""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from sink_lib.nodes import redact_url, split_amqp_urls
from sink_lib.retry import RETRY_AFTER_CAP_S, parse_retry_after

HEADERISH = st.one_of(
    st.text(max_size=60),
    st.from_regex(r"\A[0-9]{1,6000}\Z"),  # delta-seconds of any length, past int()'s digit limit too
    st.from_regex(r"\A[+-]?[0-9.eE]{1,40}\Z"),
)


@given(HEADERISH)
def test_retry_after_is_none_or_a_wait_within_the_cap(value: str) -> None:
    # Given any header value, When it is parsed
    seconds = parse_retry_after(value, now=1_700_000_000.0)
    # Then it is unusable (None) or a finite wait between 0 and the cap
    assert seconds is None or (math.isfinite(seconds) and 0 <= seconds <= RETRY_AFTER_CAP_S)


def test_retry_after_of_thousands_of_digits_is_the_cap() -> None:
    assert parse_retry_after("9" * 5000) == RETRY_AFTER_CAP_S


@given(st.text(max_size=200))
def test_a_url_list_is_accepted_or_refused_with_a_value_error(value: str) -> None:
    # Given any setting text, When it is split into broker URLs
    try:
        urls = split_amqp_urls(value)
    except ValueError as exc:
        # Then a refusal names no password it was given
        assert "secretpw" not in str(exc)
        return
    # Or every URL is an amqp(s) URL with a host
    assert urls and all(u.startswith(("amqp://", "amqps://")) for u in urls)


@given(st.lists(st.text(alphabet=st.characters(blacklist_characters=",@/:", blacklist_categories=("Cs",)),
                        min_size=1, max_size=10), min_size=1, max_size=3))
def test_refusals_and_redaction_never_show_the_password(hosts: list[str]) -> None:
    value = ",".join(f"amqp://guest:secretpw@{h}:5672/%2F" for h in hosts)
    try:
        split_amqp_urls(value)
    except ValueError as exc:
        assert "secretpw" not in str(exc)
    assert "secretpw" not in redact_url(value)
