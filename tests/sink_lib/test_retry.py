"""The shared backoff and Retry-After parser (RFC 9110 section 10.2.3)."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from sink_lib.retry import RETRY_AFTER_CAP_S, Backoff, parse_retry_after

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC).timestamp()


def test_backoff_doubles_from_min_to_max_with_the_upper_half_as_jitter() -> None:
    low = Backoff(1.0, 8.0, rand=lambda: 0.0)
    high = Backoff(1.0, 8.0, rand=lambda: 0.999999)
    # ceilings 1, 2, 4, 8, 8: each delay lies in [ceiling/2, ceiling], never below min_s
    assert [low.next_delay() for _ in range(5)] == [1.0, 1.0, 2.0, 4.0, 4.0]
    assert [round(high.next_delay(), 3) for _ in range(5)] == [1.0, 2.0, 4.0, 8.0, 8.0]


def test_backoff_reset_starts_again_from_min() -> None:
    backoff = Backoff(0.5, 30.0, rand=lambda: 0.999999)
    for _ in range(10):
        backoff.next_delay()
    backoff.reset()
    assert round(backoff.next_delay(), 3) == 0.5


def test_a_server_hint_raises_one_delay_but_not_the_schedule() -> None:
    backoff = Backoff(1.0, 8.0, rand=lambda: 0.0)
    assert backoff.next_delay(7.0) == 7.0
    assert backoff.next_delay(0.1) == 1.0  # a hint below the backoff does not shorten it


def test_jittered_delays_spread_between_clients() -> None:
    def fourth_delay() -> float:
        backoff = Backoff(1.0, 60.0)
        for _ in range(3):
            backoff.next_delay()
        return backoff.next_delay()  # ceiling 8: drawn from [4, 8]

    delays = {fourth_delay() for _ in range(50)}
    assert len(delays) > 10
    assert all(4.0 <= d <= 8.0 for d in delays)


@pytest.mark.parametrize(("min_s", "max_s"), [(0, 1), (-1, 1), (2, 1)])
def test_backoff_refuses_bounds_that_make_no_sense(min_s: float, max_s: float) -> None:
    with pytest.raises(ValueError, match="min_s"):
        Backoff(min_s, max_s)


@pytest.mark.parametrize(("value", "seconds"), [
    ("120", 120.0), ("0", 0.0), (" 7 ", 7.0), ("1.5", 1.5), ("999999999", RETRY_AFTER_CAP_S),
])
def test_delta_seconds(value: str, seconds: float) -> None:
    assert parse_retry_after(value, now=NOW) == seconds


def test_http_date_in_the_future_is_the_seconds_until_then() -> None:
    when = datetime.fromtimestamp(NOW + 90, tz=UTC)
    assert parse_retry_after(format_datetime(when, usegmt=True), now=NOW) == 90.0
    assert parse_retry_after("Sun, 01 Mar 2026 12:02:00 GMT", now=NOW) == 120.0


def test_http_date_in_the_past_means_now_and_far_future_is_capped() -> None:
    assert parse_retry_after("Sun, 01 Mar 2026 11:00:00 GMT", now=NOW) == 0.0
    assert parse_retry_after("Fri, 01 Mar 2030 12:00:00 GMT", now=NOW) == RETRY_AFTER_CAP_S


@pytest.mark.parametrize("value", [None, "", "   ", "-5", "soon", "nan", "inf", "١٢", "Sun, 99 Foo 2026"])
def test_unusable_values_give_none(value: str | None) -> None:
    assert parse_retry_after(value, now=NOW) is None
