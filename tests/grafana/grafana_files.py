"""Read the Grafana provisioning files and turn their queries into what Grafana would send.

Grafana replaces macros and template variables before a query reaches the data source. The tests run
the same queries against the real InfluxDB and Prometheus, so :func:`render` does that replacement:

- InfluxQL: ``$timeFilter`` -> ``time > now() - <range>``, ``$__interval`` -> the group-by interval.
- PromQL: ``$__rate_interval`` / ``$__interval`` -> a window, ``$__range`` -> the dashboard range.
- Template variables (``$name`` / ``${name}``) -> every value of the variable as one regex
  alternation, escaped the way Grafana escapes a multi-value variable for that data source: the
  "All" selection a dashboard opens with.

Anything that still contains ``$`` afterwards used an undefined variable or macro.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
DATASOURCES_FILE = GRAFANA / "provisioning" / "datasources" / "eventsink.yaml"
PROVIDERS_FILE = GRAFANA / "provisioning" / "dashboards" / "eventsink.yaml"
ALERTS_FILE = GRAFANA / "provisioning" / "alerting" / "eventsink.yaml"

#: Macros Grafana fills in itself (not template variables).
INFLUX_MACROS = ("timeFilter", "__interval", "__interval_ms")
PROM_MACROS = ("__rate_interval", "__interval", "__interval_ms", "__range", "__range_s", "__range_ms")
VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")
_GRAFANA_REGEX_SPECIAL = re.compile(r"[\\^$.|?*+()\[\]{}/]")


def load_json(path: Path) -> Any:
    """A JSON file's content."""
    return json.loads(path.read_text(encoding="utf-8"))


def load_yaml(path: Path) -> Any:
    """A YAML file's content."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def datasource_uids() -> dict[str, str]:
    """uid -> type of every provisioned data source."""
    return {ds["uid"]: ds["type"] for ds in load_yaml(DATASOURCES_FILE)["datasources"]}


def panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


@dataclass(frozen=True)
class Query:
    """One query of a dashboard panel or alert rule, as written in the file."""

    where: str  # "<file>/<panel or rule>/<refId>", used as the test id
    kind: str  # "influxdb" or "prometheus"
    text: str
    instant: bool = False
    source: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


def dashboard_queries(path: Path) -> list[Query]:
    """The queries of every panel target of one dashboard."""
    board = load_json(path)
    out = []
    for panel in panels(board):
        for target in panel.get("targets", []):
            kind = (target.get("datasource") or panel.get("datasource") or {}).get("type", "")
            text = target.get("query") if kind == "influxdb" else target.get("expr")
            where = f"{path.stem}/{panel['id']}-{slug(panel['title'])}/{target['refId']}"
            out.append(Query(where, kind, text or "", bool(target.get("instant")), target))
    return out


def variable_queries(path: Path) -> list[Query]:
    """The queries of the dashboard's template variables, in dependency order (as listed)."""
    board = load_json(path)
    return [
        Query(f"{path.stem}/var-{v['name']}", v["datasource"]["type"], _variable_text(v), True, v)
        for v in board.get("templating", {}).get("list", [])
        if v.get("type") == "query"
    ]


def _variable_text(variable: Mapping[str, Any]) -> str:
    query = variable.get("query")
    return query.get("query", "") if isinstance(query, dict) else str(query or "")


def alert_rules() -> list[dict[str, Any]]:
    """Every provisioned alert rule."""
    return [rule for group in load_yaml(ALERTS_FILE)["groups"] for rule in group["rules"]]


def alert_queries() -> list[Query]:
    """The data-source queries (not the server-side expressions) of every alert rule."""
    types = datasource_uids()
    out = []
    for rule in alert_rules():
        for item in rule["data"]:
            uid = item["datasourceUid"]
            if uid == "__expr__":
                continue
            model = item["model"]
            kind = types.get(uid, "")
            text = model.get("query") if kind == "influxdb" else model.get("expr")
            out.append(Query(f"alerting/{rule['uid']}/{item['refId']}", kind, text or "",
                             bool(model.get("instant")), rule))
    return out


def slug(text: str) -> str:
    """A short id-friendly form of a title."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40]


def used_variables(text: str) -> set[str]:
    """Names after ``$`` in a query (template variables and macros)."""
    return {m.group(1) or m.group(2) for m in VARIABLE.finditer(text)}


@dataclass
class Macros:
    """The values :func:`render` puts in place of Grafana's macros and template variables."""

    range_s: int = 3600
    interval: str = "10s"
    rate_interval: str = "30s"
    variables: dict[str, Sequence[str]] = field(default_factory=dict)


def regex_alternation(values: Sequence[str], kind: str) -> str:
    """A multi-value variable as Grafana formats it inside a regex: ``(a|b)``, each value escaped.

    InfluxQL regexes are ``/.../`` literals (``/`` is escaped too); PromQL regexes are double-quoted
    strings, so each escaping backslash is itself escaped.
    """
    escaped = [_GRAFANA_REGEX_SPECIAL.sub(lambda m: "\\" + m.group(0), v) for v in values]
    if kind == "prometheus":
        escaped = [v.replace("\\", "\\\\") for v in escaped]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def render(query: Query, macros: Macros) -> str:
    """The query text with macros and template variables replaced; raises KeyError for unknown ones."""
    fixed: dict[str, str]
    if query.kind == "influxdb":
        fixed = {"timeFilter": f"time > now() - {macros.range_s}s", "__interval": macros.interval,
                 "__interval_ms": str(_seconds(macros.interval) * 1000)}
    else:
        fixed = {"__rate_interval": macros.rate_interval, "__interval": macros.interval,
                 "__interval_ms": str(_seconds(macros.interval) * 1000), "__range": f"{macros.range_s}s",
                 "__range_s": str(macros.range_s), "__range_ms": str(macros.range_s * 1000)}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name in fixed:
            return fixed[name]
        if name in macros.variables:
            return regex_alternation(macros.variables[name], query.kind)
        raise KeyError(f"{query.where}: ${name} is neither a macro nor a defined variable")

    return VARIABLE.sub(replace, query.text)


def _seconds(duration: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600}
    return int(duration[:-1]) * units[duration[-1]]
