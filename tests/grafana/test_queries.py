"""Every dashboard and alert query returns data from the real InfluxDB and Prometheus.

One deployment for the module (see :mod:`tests.grafana.stack`) is filled with the event stream of
:mod:`tests.grafana.events`; then each query is rendered as Grafana would send it
(:func:`tests.grafana.grafana_files.render`) and must return at least one series with a value.
The alert rules are also checked for what they single out.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sink_lib import SinkSettings
from tests.support import IN_CI, RABBITMQ_URL, port_open, wait_for

from . import events
from .grafana_files import DASHBOARDS, Macros, Query, alert_queries, dashboard_queries, render, variable_queries
from .stack import PROMETHEUS, RABBITMQ_METRICS_PORT, Stack, start_stack

pytestmark = [pytest.mark.slow, pytest.mark.rabbitmq, pytest.mark.influxdb]

#: Workers of the stack that drain their queue, and queues nobody drains (amplitude has no process,
#: the mongodb worker waits for a server that is not there).
CONSUMING = ("influxdb", "prometheus")
IDLE = ("amplitude", "mongodb")
PANEL_QUERIES = [q for path in DASHBOARDS for q in dashboard_queries(path)]
ALERT_QUERIES = alert_queries()


def _require(ok: bool, what: str) -> None:
    if not ok:
        if IN_CI:
            pytest.fail(f"{what} is required in CI")
        pytest.skip(f"{what} is not available")


@pytest.fixture(scope="module")
def stack(rabbitmq_url: str, influxdb_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The running deployment, filled with the whole event stream and scraped at least once after it."""
    _require(Path(PROMETHEUS).exists() or shutil.which("prometheus") is not None, "the prometheus binary")
    _require(port_open("127.0.0.1", RABBITMQ_METRICS_PORT),
             "RabbitMQ's prometheus plugin on :15692 (rabbitmq-plugins enable rabbitmq_prometheus)")
    work = tmp_path_factory.mktemp("grafana-stack")
    with start_stack(influxdb_url, work) as running:
        _fill(running, work)
        yield running


def _fill(stack: Stack, work: Path) -> None:
    # the dead-letter rule needs each dead-letter queue seen before and after it grows
    dead = f'rabbitmq_queue_messages{{queue="{stack.exchange}.influxdb.dead"}}'
    wait_for(lambda: _value(stack, dead) == 0, timeout=60, interval=0.5, what="RabbitMQ's dead-letter queue metrics")
    settings = SinkSettings(amqp_url=RABBITMQ_URL, exchange=stack.exchange, spool_dir=work / "app-spool")
    total = events.emit_app_events(settings)
    total += events.post_monitor_events(stack.api_url, stack.api_key)
    events.post_rejected_requests(stack.api_url, stack.api_key)
    for expected in (1, 2):  # two rejections, so the workers' counters have an increase, not just a start
        events.publish_garbage(RABBITMQ_URL, stack.exchange)
        for worker in CONSUMING:
            query = f'eventsink_worker_events_rejected_total{{worker="{worker}"}}'
            wait_for(_equals(stack, query, expected), timeout=60, interval=0.5,
                     what=f"{expected} event(s) dead-lettered by the {worker} worker")

    def influx_has_everything() -> bool:
        stack.check()
        series = stack.influxql('SELECT count("id") FROM /.*/')
        return sum(s["values"][0][1] for s in series) == total

    wait_for(influx_has_everything, timeout=60, interval=0.5, what=f"{total} points in InfluxDB")
    wait_for(lambda: _value(stack, "sum(eventsink_events_total)") == total, timeout=60, interval=0.5,
             what=f"{total} events counted by the prometheus worker")
    for worker in CONSUMING:
        query = f'rabbitmq_queue_messages{{queue="{stack.exchange}.{worker}.dead"}}'
        wait_for(_equals(stack, query, 2), timeout=60, interval=0.5,
                 what=f"the {worker} dead letters in RabbitMQ's metrics")
    for worker in IDLE:
        query = f'rabbitmq_queue_messages_ready{{queue="{stack.exchange}.{worker}"}}'
        wait_for(_equals(stack, query, total + 2), timeout=60, interval=0.5,
                 what=f"the {worker} queue's backlog in RabbitMQ's metrics")


def _equals(stack: Stack, expr: str, expected: float) -> Callable[[], bool]:
    return lambda: _value(stack, expr) == expected


def _value(stack: Stack, expr: str) -> float | None:
    result = stack.promql(expr, instant=True)
    return float(result[0]["value"][1]) if result else None


@pytest.fixture(scope="module")
def macros(stack: Stack) -> Macros:
    """Macro values for a one-hour range, and every template variable set to all of its values."""
    found = Macros(range_s=3600, interval="1m", rate_interval="30s")
    for path in DASHBOARDS:
        for query in variable_queries(path):
            series = stack.influxql(render(query, found))
            values = sorted({row[1] for s in series for row in s["values"]})
            assert values, f"{query.where} lists no values"
            found.variables[query.source["name"]] = values
    return found


def test_template_variables_list_what_the_monitors_reported(macros: Macros) -> None:
    # Given the events of three regions' monitors / Then the variables offer those regions and targets
    assert macros.variables["region"] == sorted(events.REGIONS)
    assert set(macros.variables["target"]) == {*events.SITES, *events.SITES.values(), events.PING_HOST}


def _has_values(kind: str, series: list[dict[str, Any]]) -> bool:
    if kind == "influxdb":
        return any(v is not None for s in series for row in s["values"] for v in row[1:])
    samples = [s["value"] for s in series if "value" in s] + [v for s in series for v in s.get("values", [])]
    return any(math.isfinite(float(v[1])) for v in samples)


def _run(stack: Stack, query: Query, macros: Macros) -> list[dict[str, Any]]:
    text = render(query, macros)
    if query.kind == "influxdb":
        return stack.influxql(text)
    return stack.promql(text, instant=query.instant)


@pytest.mark.parametrize("query", PANEL_QUERIES, ids=lambda q: q.where)
def test_dashboard_query_returns_data(stack: Stack, macros: Macros, query: Query) -> None:
    # Given the deployment filled with half an hour of events / When Grafana's query runs
    series = _run(stack, query, macros)

    # Then the panel has something to draw
    assert series and _has_values(query.kind, series), f"{query.where}: no data for {render(query, macros)}"


@pytest.mark.parametrize("query", ALERT_QUERIES, ids=lambda q: q.where)
def test_alert_query_returns_data(stack: Stack, macros: Macros, query: Query) -> None:
    series = _run(stack, query, macros)
    assert series and _has_values(query.kind, series), f"{query.where}: no data"


def _labels(stack: Stack, rule_uid: str, macros: Macros) -> list[dict[str, str]]:
    (query,) = [q for q in ALERT_QUERIES if q.where == f"alerting/{rule_uid}/A"]
    return [s["metric"] for s in _run(stack, query, macros)]


def test_down_alert_fires_for_a_service_down_in_two_regions_only(stack: Stack, macros: Macros) -> None:
    # Given "web" down from two regions and "search" from one / Then only "web" reaches N=2
    assert [m["service"] for m in _labels(stack, "eventsink-target-down-regions", macros)] == ["web"]


def test_dead_letter_alert_names_the_queue_and_the_worker(stack: Stack, macros: Macros) -> None:
    # Given garbage dead-lettered by both consuming workers / Then both queues and both workers are named
    labels = _labels(stack, "eventsink-dead-letters-growing", macros)
    assert {m.get("queue") for m in labels} - {None} == {f"{stack.exchange}.{w}.dead" for w in CONSUMING}
    assert {m.get("worker") for m in labels} - {None} == set(CONSUMING)


def test_not_consuming_alert_names_the_idle_queue_and_the_stuck_worker(stack: Stack, macros: Macros) -> None:
    # Given amplitude's queue without a worker, and the mongodb worker waiting for its server
    labels = _labels(stack, "eventsink-worker-not-consuming", macros)

    # Then both backlogged queues and the stuck worker are singled out; the busy workers are not
    assert {m.get("queue") for m in labels} - {None, ""} == {f"{stack.exchange}.{w}" for w in IDLE}
    assert {m.get("worker") for m in labels} - {None, ""} == {"mongodb"}


# -- the values are the right ones for the stream the tests produced (tests/grafana/events.py) ---------

APP = events.app_events()
MONITORS = [e for region in events.REGIONS for e in events.monitor_events(region)]


def _query(where: str) -> Query:
    (query,) = [q for q in PANEL_QUERIES if q.where == where]
    return query


def _influx_totals(series: list[dict[str, Any]], *tags: str) -> dict[tuple[str, ...], float]:
    """Sum of the first value column over every row of each series, keyed by the series' tags."""
    totals: dict[tuple[str, ...], float] = {}
    for s in series:
        key = tuple(s.get("tags", {}).get(t, "") for t in tags)
        totals[key] = totals.get(key, 0.0) + sum(row[1] for row in s["values"] if row[1] is not None)
    return totals


def _app(type_: str) -> list[dict[str, Any]]:
    return [data for kind, data, _ in APP if kind == type_]


def test_uploads_and_deletes_are_counted_and_summed_exactly(stack: Stack, macros: Macros) -> None:
    counts = _influx_totals(_run(stack, _query("activity/2-uploads-and-deletes/A"), macros), "type")
    sums = _influx_totals(_run(stack, _query("activity/3-bytes-uploaded-and-deleted/A"), macros), "type")
    for type_ in ("storage.file.uploaded", "storage.file.deleted"):
        assert counts[(type_,)] == len(_app(type_))
        assert sums[(type_,)] == sum(d["bytes"] for d in _app(type_))


def test_files_and_bytes_stored_are_uploads_minus_deletes(stack: Stack, macros: Macros) -> None:
    uploaded, deleted = _app("storage.file.uploaded"), _app("storage.file.deleted")
    for where, expected in (("activity/5-bytes-stored/A", sum(d["bytes"] for d in uploaded) - sum(
            d["bytes"] for d in deleted)), ("activity/6-files-stored/A", len(uploaded) - len(deleted))):
        query = _query(where)
        series = stack.promql(render(query, macros), instant=True)
        assert [float(s["value"][1]) for s in series] == [expected], where


def test_extraction_totals_per_extractor_and_outcome(stack: Stack, macros: Macros) -> None:
    got = _influx_totals(_run(stack, _query("activity/14-extraction-totals/A"), macros), "extractor", "type")
    expected: dict[tuple[str, ...], float] = {}
    for kind, data, _ in APP:
        if kind.startswith("extraction."):
            expected[(data["extractor"], kind)] = expected.get((data["extractor"], kind), 0) + 1
    assert got == expected


def test_current_state_shows_the_regions_where_each_service_is_down(stack: Stack, macros: Macros) -> None:
    series = _run(stack, _query("service-health/2-current-state-per-region-and-service/A"), macros)
    state = {(s["tags"]["region"], s["tags"]["service"]): s["values"][-1][s["columns"].index("state")]
             for s in series}
    expected = {(region, service): "down" if region in events.DOWN_AT_THE_END[service] else "up"
                for region in events.REGIONS for service in events.SITES}
    assert state == expected


def test_failed_http_checks_are_counted_per_url_and_region(stack: Stack, macros: Macros) -> None:
    got = _influx_totals(_run(stack, _query("service-health/8-failed-http-checks/A"), macros), "url", "region")
    expected: dict[tuple[str, ...], float] = {}
    for e in MONITORS:
        if e["type"] == "health.http" and not e["data"]["ok"]:
            key = (e["data"]["url"], e["region"])
            expected[key] = expected.get(key, 0) + 1
    assert got == expected
