"""Request building within the Measurement Protocol's size limits, without a server."""

from __future__ import annotations

from workers.google_analytics import limits
from workers.google_analytics.mapping import Outgoing
from workers.google_analytics.transport import build_requests


def outgoing(event_id: str, size: int, client_id: str = "1.2") -> Outgoing:
    body = {"name": "big", "params": {"blob": "x" * size}, "timestamp_micros": 1_700_000_000_000_000}
    return Outgoing(event_id, client_id, None, (), body, 1_700_000_000_000_000)


def test_requests_stay_under_130_kB_and_oversize_events_are_refused() -> None:
    # Given events of ~30 kB, and one larger than a whole request may be
    items = [outgoing(f"e{i}", 30_000) for i in range(9)] + [outgoing("huge", 140_000)]
    # When requests are built
    built, too_large = build_requests(items)
    # Then no body reaches the limit, every normal event is in exactly one request, the huge one is refused
    # (GA4's documented limit: a request body of at most 130 kB)
    assert all(len(r.body) < 130_000 for r in built)
    assert sorted(i.event_id for r in built for i in r.items) == sorted(f"e{i}" for i in range(9))
    assert list(too_large) == ["huge"]
    assert len(built) == 3


def test_one_request_per_client() -> None:
    items = [outgoing("a1", 10, "1.1"), outgoing("b1", 10, "2.2"), outgoing("a2", 10, "1.1")]
    built, _ = build_requests(items)
    assert [[i.event_id for i in r.items] for r in built] == [["a1", "a2"], ["b1"]]


def test_a_name_with_a_trailing_newline_is_refused() -> None:
    assert limits.name_problem("event", "page_view", 40, frozenset()) is None
    assert limits.name_problem("event", "page_view\n", 40, frozenset()) is not None


def test_the_130_kB_limit_is_where_ga_puts_it() -> None:
    # Given one event whose request would be just under GA4's 130 kB, and one just over it
    overhead = len(build_requests([outgoing("probe", 0)])[0][0].body)
    under, over = outgoing("under", 130_000 - overhead - 20, "1.1"), outgoing("over", 130_000 - overhead + 20, "2.2")
    # When requests are built
    built, too_large = build_requests([under, over])
    # Then the first is sent alone, in a body below 130 kB, and the second is refused
    assert [[i.event_id for i in r.items] for r in built] == [["under"]]
    assert 129_900 < len(built[0].body) < 130_000
    assert list(too_large) == ["over"]
