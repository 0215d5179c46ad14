"""The Grafana files are in the format Grafana's provisioning loads, and consistent with each other."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from .grafana_files import (
    ALERTS_FILE,
    DASHBOARDS,
    INFLUX_MACROS,
    PROM_MACROS,
    PROVIDERS_FILE,
    alert_queries,
    alert_rules,
    dashboard_queries,
    datasource_uids,
    load_json,
    load_yaml,
    panels,
    used_variables,
    variable_queries,
)

EXPECTED_DASHBOARDS = {"service-health", "activity", "pipeline"}
#: Core panel types (no plugin to install).
PANEL_TYPES = {"row", "timeseries", "table", "stat", "bargauge", "gauge", "state-timeline", "status-history", "text"}
DURATION = re.compile(r"^\d+[smhd]$")


def test_the_three_dashboards_exist() -> None:
    # Given the dashboards folder / Then it holds the service health, activity and pipeline dashboards
    assert {p.stem for p in DASHBOARDS} == EXPECTED_DASHBOARDS


def test_datasources_have_fixed_uids_and_the_influxql_settings() -> None:
    # Given the data source provisioning file
    doc = load_yaml(Path(ALERTS_FILE).parents[1] / "datasources" / "eventsink.yaml")

    # Then it is apiVersion 1 with unique names and uids, InfluxDB in InfluxQL mode on database eventsink
    assert doc["apiVersion"] == 1
    sources = doc["datasources"]
    assert len({s["uid"] for s in sources}) == len({s["name"] for s in sources}) == len(sources)
    by_type = {s["type"]: s for s in sources}
    assert set(by_type) == {"influxdb", "prometheus"}
    influx = by_type["influxdb"]
    assert influx["jsonData"]["version"] == "InfluxQL"
    assert influx["jsonData"]["dbName"] == "eventsink"
    for source in sources:
        assert source["access"] == "proxy"
        assert source["url"].startswith(("http", "$"))
    assert sum(bool(s.get("isDefault")) for s in sources) == 1


def test_dashboard_provider_points_at_the_mounted_dashboards_folder() -> None:
    doc = load_yaml(PROVIDERS_FILE)
    assert doc["apiVersion"] == 1
    (provider,) = doc["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards/eventsink"
    assert provider["folder"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_has_the_keys_grafana_requires(path: Path) -> None:
    # Given a dashboard JSON
    board = load_json(path)

    # Then it has a stable uid, a title, a current schema and a time range
    assert re.fullmatch(r"[a-z0-9-]{1,40}", board["uid"])
    assert board["title"]
    assert 36 <= board["schemaVersion"] <= 41
    assert set(board["time"]) == {"from", "to"}
    assert isinstance(board["panels"], list) and board["panels"]
    assert "id" not in board or board["id"] is None  # provisioning assigns ids


def test_dashboard_uids_and_titles_are_unique() -> None:
    boards = [load_json(p) for p in DASHBOARDS]
    assert len({b["uid"] for b in boards}) == len({b["title"] for b in boards}) == len(boards)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_panels_have_unique_ids_and_fit_the_grid(path: Path) -> None:
    # Given every panel of a dashboard
    all_panels = list(panels(load_json(path)))
    ids = [p["id"] for p in all_panels]

    # Then ids are unique integers, and each gridPos is inside the 24-column grid without overlaps
    assert len(ids) == len(set(ids)) and all(isinstance(i, int) for i in ids)
    cells: set[tuple[int, int]] = set()
    for panel in all_panels:
        pos = panel["gridPos"]
        assert {"h", "w", "x", "y"} <= set(pos), panel["title"]
        assert pos["w"] > 0 and pos["h"] > 0 and pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        area = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
        assert not area & cells, f"panel {panel['title']!r} overlaps another"
        cells |= area


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_panels_query_provisioned_datasources(path: Path) -> None:
    # Given the provisioned data sources
    uids = datasource_uids()

    # Then every non-row panel has a title, a type and targets whose datasource uid exists with its type
    for panel in panels(load_json(path)):
        assert panel["type"] in PANEL_TYPES and panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            ds = target.get("datasource") or panel["datasource"]
            assert uids.get(ds["uid"]) == ds["type"], f"{panel['title']}: unknown datasource {ds}"
            if ds["type"] == "influxdb":
                assert target["rawQuery"] is True and target["query"].lstrip().upper().startswith("SELECT")
            else:
                assert target["expr"].strip()


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_template_variables_are_defined_where_used(path: Path) -> None:
    # Given the dashboard's variables (each may use the ones defined before it)
    board = load_json(path)
    defined: list[str] = []
    uids = datasource_uids()
    for variable in board.get("templating", {}).get("list", []):
        assert uids.get(variable["datasource"]["uid"]) == variable["datasource"]["type"]
        assert variable["type"] == "query"
        text = variable["query"] if isinstance(variable["query"], str) else variable["query"]["query"]
        assert text.upper().startswith("SHOW TAG VALUES")
        assert used_variables(text) <= set(defined), f"variable {variable['name']} uses a later variable"
        defined.append(variable["name"])

    # Then every $name in a panel query is a variable of this dashboard or a macro of its data source
    for query in dashboard_queries(path):
        macros = INFLUX_MACROS if query.kind == "influxdb" else PROM_MACROS
        unknown = used_variables(query.text) - set(defined) - set(macros)
        assert not unknown, f"{query.where} uses undefined {sorted(unknown)}"
    for query in variable_queries(path):
        assert query.kind == "influxdb"


def test_service_health_has_region_and_target_variables_used_by_its_panels() -> None:
    path = next(p for p in DASHBOARDS if p.stem == "service-health")
    names = [v["name"] for v in load_json(path)["templating"]["list"]]
    assert names == ["region", "target"]
    used = set().union(*(used_variables(q.text) for q in dashboard_queries(path)))
    assert {"region", "target"} <= used


def _rule_by_uid() -> dict[str, dict[str, Any]]:
    return {rule["uid"]: rule for rule in alert_rules()}


def test_alert_rules_have_the_fields_grafana_requires() -> None:
    # Given the alerting provisioning file
    doc = load_yaml(ALERTS_FILE)
    assert doc["apiVersion"] == 1
    uids = datasource_uids()
    for group in doc["groups"]:
        assert group["name"] and group["folder"] and DURATION.match(group["interval"])
        for rule in group["rules"]:
            # Then each rule has a uid, a title, a condition that names one of its queries, valid states
            assert re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", rule["uid"])
            assert rule["title"]
            refs = [item["refId"] for item in rule["data"]]
            assert len(refs) == len(set(refs))
            assert rule["condition"] in refs
            assert rule["noDataState"] in {"Alerting", "NoData", "OK", "KeepLast"}
            assert rule["execErrState"] in {"Alerting", "Error", "OK", "KeepLast"}
            assert DURATION.match(rule["for"])
            for item in rule["data"]:
                # and each query names a provisioned data source, or is an expression over earlier refIds
                assert item["model"]["refId"] == item["refId"]
                assert {"from", "to"} <= set(item["relativeTimeRange"])
                if item["datasourceUid"] == "__expr__":
                    assert item["model"]["type"] in {"reduce", "threshold", "math", "resample", "classic_conditions"}
                    assert item["model"]["expression"] in refs[: refs.index(item["refId"])]
                else:
                    assert item["datasourceUid"] in uids


def test_alert_rule_uids_are_unique_and_cover_the_three_conditions() -> None:
    rules = alert_rules()
    assert len({r["uid"] for r in rules}) == len(rules)
    assert set(_rule_by_uid()) == {
        "eventsink-target-down-regions", "eventsink-dead-letters-growing", "eventsink-worker-not-consuming",
    }


def test_alert_queries_contain_no_dollar_that_provisioning_would_expand() -> None:
    # Grafana expands $NAME in provisioning files from its environment; a $ in PromQL would vanish
    for query in alert_queries():
        assert "$" not in query.text, query.where


def test_down_from_n_regions_threshold_is_the_documented_constant() -> None:
    # Given the rule's query / Then N appears once, as ">= N", and the README tells how to change it
    (query,) = [q for q in alert_queries() if "target-down-regions" in q.where]
    assert len(re.findall(r">=\s*(\d+)", query.text)) == 1
    readme = (ALERTS_FILE.parents[2] / "README.md").read_text(encoding="utf-8")
    assert "eventsink-target-down-regions" in readme and ">= 2" in readme
