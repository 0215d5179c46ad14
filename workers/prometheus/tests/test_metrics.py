"""What the prometheus worker serves for a stream of events, scraped over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from workers.prometheus import PrometheusWorker

from .conftest import event, scrape, value

MakeWorker = Callable[..., PrometheusWorker]


def test_counts_events_by_type_and_source(make_worker: MakeWorker) -> None:
    # Given a stream of events from two sources
    worker = make_worker()
    batch = [event(source="/web") for _ in range(3)]
    batch += [event("traffic.page.viewed", {"url": "/"}, source="/web")]
    batch += [event("traffic.page.viewed", {"url": "/"}, source="/api") for _ in range(2)]

    # When they are written
    worker.write(batch)

    # Then each (type, source) pair has its own counter
    samples = scrape(worker.port)
    assert value(samples, "eventsink_events_total", type="storage.file.uploaded", source="/web") == 3
    assert value(samples, "eventsink_events_total", type="traffic.page.viewed", source="/web") == 1
    assert value(samples, "eventsink_events_total", type="traffic.page.viewed", source="/api") == 2


def test_unknown_types_are_counted_without_other_series(make_worker: MakeWorker) -> None:
    worker = make_worker()
    worker.write([event("billing.invoice.paid", {"bytes": 5, "service": "x"}, source="/billing")])
    samples = scrape(worker.port)
    assert samples == {
        ("eventsink_events_total", frozenset({("type", "billing.invoice.paid"), ("source", "/billing")})): 1.0
    }


def test_files_and_bytes_stored_go_up_on_upload_and_down_on_delete(make_worker: MakeWorker) -> None:
    worker = make_worker()
    uploads = [event(data={"file_id": f"f{n}", "bytes": n}) for n in (10, 20, 30)]
    worker.write(uploads)
    worker.write([event("storage.file.deleted", {"file_id": "f20", "bytes": 20})])

    samples = scrape(worker.port)
    assert value(samples, "eventsink_files_stored") == 2
    assert value(samples, "eventsink_bytes_stored") == 40
    assert value(samples, "eventsink_storage_uploaded_bytes_total") == 60
    assert value(samples, "eventsink_storage_deleted_bytes_total") == 20


def test_downloaded_bytes_are_counted_by_source(make_worker: MakeWorker) -> None:
    worker = make_worker()
    worker.write([event("traffic.resource.downloaded", {"resource_id": "r", "bytes": b}) for b in (5, 7)])
    assert value(scrape(worker.port), "eventsink_traffic_downloaded_bytes_total", source="/test") == 12


def test_storage_labels_are_opt_in(make_worker: MakeWorker) -> None:
    # Given the storage metrics labelled by space
    worker = make_worker(storage_labels=["space_id"])

    worker.write(
        [
            event(data={"file_id": "a", "bytes": 1, "space_id": "s1"}),
            event(data={"file_id": "b", "bytes": 2, "space_id": "s2"}),
            event(data={"file_id": "c", "bytes": 4}),
        ]
    )

    samples = scrape(worker.port)
    assert value(samples, "eventsink_bytes_stored", space_id="s1") == 1
    assert value(samples, "eventsink_bytes_stored", space_id="s2") == 2
    assert value(samples, "eventsink_bytes_stored", space_id="") == 4  # served without the label


def test_data_that_is_not_a_number_counts_the_event_only(make_worker: MakeWorker) -> None:
    worker = make_worker()
    worker.write([event(data={"file_id": "x", "bytes": "10"}), event(data={"file_id": "y"})])

    samples = scrape(worker.port)
    assert value(samples, "eventsink_events_total", type="storage.file.uploaded", source="/test") == 2
    assert value(samples, "eventsink_files_stored") == 2
    assert value(samples, "eventsink_bytes_stored") is None


def test_health_gauges_keep_the_value_of_the_newest_event(make_worker: MakeWorker) -> None:
    # Given a service reported down, then an older "up" report delivered late
    worker = make_worker()
    now = datetime.now(UTC)
    down = event("health.status", {"service": "web", "state": "down"}, region="us-east", time=now)
    stale = event("health.status", {"service": "web", "state": "up"}, region="us-east", time=now - timedelta(1))

    # When both are written in delivery order
    worker.write([down])
    worker.write([stale])

    # Then the gauges show the newest report
    samples = scrape(worker.port)
    assert value(samples, "eventsink_service_up", service="web", region="us-east") == 0
    assert value(samples, "eventsink_service_state", service="web", region="us-east", state="down") == 1
    assert value(samples, "eventsink_service_state", service="web", region="us-east", state="up") == 0


def test_http_and_ping_checks_become_target_gauges(make_worker: MakeWorker) -> None:
    worker = make_worker()
    http = {
        "url": "https://app.example/", "ok": True, "status": 200, "dns_ms": 5, "connect_ms": 10, "tls_ms": 20,
        "ttfb_ms": 100, "total_ms": 250, "bytes": 900, "cert_expires_in_days": 30.5,
    }
    ping = {"target": "app.example", "rtt_min_ms": 1, "rtt_avg_ms": 2, "rtt_max_ms": 4, "loss_pct": 25, "ok": False}

    worker.write([event("health.http", http, region="eu"), event("health.ping", ping, region="eu")])

    samples = scrape(worker.port)
    target = {"target": "https://app.example/", "region": "eu"}
    assert value(samples, "eventsink_target_up", check="http", **target) == 1
    assert value(samples, "eventsink_http_phase_seconds", phase="total", **target) == 0.25
    assert value(samples, "eventsink_http_phase_seconds", phase="dns", **target) == 0.005
    assert value(samples, "eventsink_http_cert_expiry_days", **target) == 30.5
    pinged = {"target": "app.example", "region": "eu"}
    assert value(samples, "eventsink_target_up", check="ping", **pinged) == 0
    assert value(samples, "eventsink_ping_rtt_seconds", stat="max", **pinged) == 0.004
    assert value(samples, "eventsink_ping_loss_ratio", **pinged) == 0.25


def test_instances_in_one_process_are_independent(make_worker: MakeWorker, tmp_path) -> None:
    first = make_worker()
    second = make_worker(state_file=tmp_path / "other.sqlite3")
    first.write([event() for _ in range(2)])
    second.write([event() for _ in range(5)])
    assert value(scrape(first.port), "eventsink_files_stored") == 2
    assert value(scrape(second.port), "eventsink_files_stored") == 5
