"""The reporter against a local stand-in for the emergency API: batching, spooling, retries, refusals."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitors.reporter import Reporter, ReporterSettings
from sink_lib.spool import Spool

from ..support import wait_for
from .fake_api import KEY, FakeApi
from .targets import closed_port


def event(n: int, **data: object) -> dict:
    return {"id": str(uuid.uuid4()), "type": "health.status", "time": f"2026-11-21T08:00:{n:02d}.000000Z",
            "source": "/monitor/test", "subject": "web", "region": "test",
            "data": {"service": "web", "state": "up", **data}}


@pytest.fixture
def make_reporter(tmp_path: Path) -> Iterator:
    made: list[Reporter] = []

    def make(url: str, key: str = KEY, **options: object) -> Reporter:
        settings = ReporterSettings(api_url=url, api_key=key, spool_dir=tmp_path / "spool", flush_interval_s=0.05,
                                    retry_min_s=0.05, retry_max_s=0.2, timeout_s=1.0, **options)  # type: ignore[arg-type]
        reporter = Reporter(settings)
        made.append(reporter)
        reporter.start()
        return reporter

    yield make
    for reporter in made:
        reporter.close(timeout=0.5)


def test_events_are_posted_in_batches_with_their_original_times(fake_api: FakeApi, make_reporter) -> None:
    reporter = make_reporter(fake_api.url, batch_size=10)
    sent = [event(i) for i in range(25)]
    reporter.submit(sent)
    wait_for(lambda: len(fake_api.events) == 25, timeout=10)
    assert fake_api.events == sent  # same order, ids, times, region
    assert fake_api.requests <= 5  # batched, not one request per event
    wait_for(lambda: reporter.stats()["sent"] == 25 and reporter.stats()["spooled"] == 0, timeout=5)


def test_api_down_keeps_events_in_the_spool_and_sends_them_when_it_returns(
    make_reporter, tmp_path: Path
) -> None:
    # Given an API that is not running
    port = closed_port()
    reporter = make_reporter(f"http://127.0.0.1:{port}")
    sent = [event(i) for i in range(30)]
    reporter.submit(sent[:15])
    wait_for(lambda: reporter.stats()["spooled"] == 15 and reporter.stats()["retries"] >= 2, timeout=10)
    reporter.submit(sent[15:])
    # When it comes up on that port
    api = FakeApi(port)
    try:
        # Then every event arrives once, in order, with its original time
        wait_for(lambda: len(api.events) == 30, timeout=10)
        assert [e["id"] for e in api.events] == [e["id"] for e in sent]
        assert api.events[0]["time"] == "2026-11-21T08:00:00.000000Z"
        wait_for(lambda: reporter.stats()["spooled"] == 0, timeout=5)
    finally:
        api.close()


def test_spooled_events_survive_a_restart_of_the_monitor(tmp_path: Path, fake_api: FakeApi) -> None:
    settings = ReporterSettings(api_url=f"http://127.0.0.1:{closed_port()}", api_key=KEY,
                                spool_dir=tmp_path / "spool", retry_min_s=0.05, timeout_s=0.5)
    first = Reporter(settings)
    first.start()
    first.submit([event(i) for i in range(5)])
    first.close(timeout=0.3)  # API unreachable: the events stay on disk
    second = Reporter(ReporterSettings(api_url=fake_api.url, api_key=KEY, spool_dir=tmp_path / "spool",
                                       flush_interval_s=0.05))
    second.start()
    try:
        wait_for(lambda: len(fake_api.events) == 5, timeout=10)
    finally:
        second.close(timeout=1)


def test_503_is_retried_after_retry_after(fake_api: FakeApi, make_reporter) -> None:
    fake_api.mode, fake_api.retry_after = "unavailable", "1"
    reporter = make_reporter(fake_api.url)
    reporter.submit([event(1)])
    wait_for(lambda: fake_api.requests >= 1, timeout=5)
    first_refusal = time.monotonic()
    fake_api.mode = "ok"
    wait_for(lambda: fake_api.events, timeout=10)
    # the retry waited for the API's Retry-After (1 s), not the reporter's own 0.05 s backoff
    assert time.monotonic() - first_refusal >= 0.9
    assert fake_api.requests == 2


def test_one_invalid_event_is_rejected_alone_and_the_rest_delivered(
    fake_api: FakeApi, make_reporter, tmp_path: Path
) -> None:
    fake_api.reject_if = "bad"
    reporter = make_reporter(fake_api.url, rejected_file=tmp_path / "rejected.jsonl")
    batch = [event(0), event(1, bad=True), event(2)]
    reporter.submit(batch)
    wait_for(lambda: reporter.stats()["rejected"] == 1 and len(fake_api.events) == 2, timeout=10)
    assert [e["id"] for e in fake_api.events] == [batch[0]["id"], batch[2]["id"]]
    rejected = [json.loads(line) for line in (tmp_path / "rejected.jsonl").read_text().splitlines()]
    assert [r["event"]["id"] for r in rejected] == [batch[1]["id"]]
    assert "HTTP 422" in rejected[0]["problem"] and "data.bad" in rejected[0]["problem"]
    # not retried forever: the spool empties (the acks may land just after the answers)
    wait_for(lambda: reporter.stats()["spooled"] == 0, timeout=10, what="the spool to be empty")


def test_a_wrong_key_rejects_to_the_file_instead_of_retrying_forever(
    fake_api: FakeApi, make_reporter, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    reporter = make_reporter(fake_api.url, key="wrong", rejected_file=tmp_path / "rejected.jsonl")
    reporter.submit([event(0), event(1)])
    wait_for(lambda: reporter.stats()["rejected"] == 2, timeout=10)
    assert fake_api.requests == 1 and fake_api.events == []
    assert "HTTP 401" in caplog.text and "invalid or revoked" in caplog.text
    assert len((tmp_path / "rejected.jsonl").read_text().splitlines()) == 2


def test_submit_never_blocks_on_a_hanging_api(fake_api: FakeApi, make_reporter) -> None:
    # Given an API that takes requests and never answers (until the test releases it)
    fake_api.mode = "hang"
    reporter = make_reporter(fake_api.url)
    reporter.submit([event(0)])
    wait_for(lambda: fake_api.requests >= 1, timeout=30, what="the reporter to be stuck in a request")

    def submit_all() -> None:
        for i in range(1, 200):
            reporter.submit([event(i % 60)])

    # When 199 more events are submitted
    caller = threading.Thread(target=submit_all, daemon=True)
    caller.start()
    # Then every submit returns while the request still hangs, and all 200 events reach the spool
    wait_for(lambda: not caller.is_alive(), timeout=60, what="200 submits while the API hangs")
    assert not fake_api.release.is_set()
    wait_for(lambda: reporter.stats()["spooled"] == 200, timeout=30)


def test_bounded_queue_and_spool_drop_and_count(tmp_path: Path, fake_api: FakeApi) -> None:
    # queue of 5, sender not started: the sixth event is dropped at once
    small = Reporter(ReporterSettings(api_url=fake_api.url, api_key=KEY, spool_dir=tmp_path / "a", queue_size=5))
    small.submit([event(i) for i in range(8)])
    assert small.stats()["dropped"] == 3 and small.stats()["queued"] == 5
    small.close(timeout=1)
    # spool of 1 kB with the API away: what does not fit is dropped and counted
    tiny = Reporter(ReporterSettings(api_url=f"http://127.0.0.1:{closed_port()}", api_key=KEY,
                                     spool_dir=tmp_path / "b", spool_max_bytes=1000, flush_interval_s=0.05))
    tiny.start()
    for i in range(20):
        tiny.submit([event(i)])
        time.sleep(0.01)
    wait_for(lambda: tiny.stats()["dropped"] > 0 and tiny.stats()["queued"] == 0, timeout=10)
    assert tiny.spool.size_bytes() <= 1000
    tiny.close(timeout=0.2)


def test_close_sends_what_it_can_within_the_bound(fake_api: FakeApi, tmp_path: Path) -> None:
    # Given a reporter that holds 7 events and sends only every 10 s
    reporter = Reporter(ReporterSettings(api_url=fake_api.url, api_key=KEY, spool_dir=tmp_path / "s",
                                         flush_interval_s=10.0))
    reporter.start()
    reporter.submit([event(i) for i in range(7)])
    # When it is closed with a bound of 3 s
    closing = threading.Thread(target=reporter.close, kwargs={"timeout": 3})
    closing.start()
    # Then close returns, having sent all 7 (the API answers at once)
    wait_for(lambda: not closing.is_alive(), timeout=60, what="close() to return")
    assert len(fake_api.events) == 7


def test_close_returns_within_its_bound_while_the_api_hangs(fake_api: FakeApi, tmp_path: Path) -> None:
    # Given a reporter holding 7 events, and an API that never answers until the test releases it
    fake_api.mode = "hang"
    spool_dir = tmp_path / "s"
    reporter = Reporter(ReporterSettings(api_url=fake_api.url, api_key=KEY, spool_dir=spool_dir,
                                         flush_interval_s=0.05, timeout_s=1.0))
    reporter.start()
    reporter.submit([event(i) for i in range(7)])
    wait_for(lambda: fake_api.requests >= 1, timeout=30, what="a request to hang")
    # When it is closed with a bound of 1 s
    closing = threading.Thread(target=reporter.close, kwargs={"timeout": 1})
    closing.start()
    # Then close returns while the API still hangs (it does not wait for the answer)
    wait_for(lambda: not closing.is_alive(), timeout=60, what="close() to return while the API hangs")
    assert not fake_api.release.is_set() and fake_api.events == []
    # and the 7 undelivered events stay in the spool for the next start
    assert Spool(spool_dir, 1 << 20, name="monitor").count() == 7
