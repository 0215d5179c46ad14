"""docker-compose.yml, the Dockerfile and the env example agree with the code and with each other.

No Docker engine runs here: these tests read the files. Commands are resolved through the real
click CLI, environment variables against the pydantic-settings models the commands build, ports
against what each component listens on.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from click.testing import CliRunner

from monitors.config import load_config
from sink_lib.cli import main as cli
from sink_lib.topology import installed_workers
from tests.support import IN_CI

from .compose import (
    COMPOSE_FILE,
    DOCKERFILE,
    ENV_EXAMPLE,
    PROMETHEUS_CONFIG,
    ROOT,
    env_names,
    environment,
    interpolate,
    interpolated_names,
    invocations,
    is_bind,
    is_eventsink,
    load_compose,
    mounts,
    ports,
    read_env_file,
    resolve,
    services,
    settings_models,
    worker_plugins,
)

COMPOSE = load_compose()
SERVICES = services(COMPOSE)
EVENTSINK_SERVICES = {name: s for name, s in SERVICES.items() if is_eventsink(s)}
#: Ports the third-party images listen on (their documented defaults).
IMAGE_PORTS = {"rabbitmq": {5672, 15672}, "influxdb": {8086}, "mongo": {27017}, "prom/prometheus": {9090},
               "grafana/grafana": {3000}}
RABBITMQ_PROMETHEUS_PORT = 15692


def _example_env() -> dict[str, str]:
    # credentials left empty in the example are the user's to fill: stand in a placeholder
    return {k: v or f"placeholder-{k.lower()}" for k, v in read_env_file(ENV_EXAMPLE).items()}


def _one_shot(service: dict[str, Any]) -> bool:
    return service.get("restart") == "no"


def _listening_ports(name: str) -> set[int]:
    service = SERVICES[name]
    if is_eventsink(service):
        env = environment(service)
        found = {int(v) for k, v in env.items() if k.endswith("_METRICS_PORT")}
        if "EVENTSINK_PROMETHEUS_PORT" in env:
            found.add(int(env["EVENTSINK_PROMETHEUS_PORT"]))
        for argv in invocations(service):
            if "--bind" in argv:
                found.add(int(argv[argv.index("--bind") + 1].rsplit(":", 1)[1]))
        return found
    image = str(service["image"]).split(":")[0]
    found = set(IMAGE_PORTS.get(image, set()))
    if image == "nginx":  # deploy/nginx's template listens on PROXY_LISTEN_PORT
        found.add(int(environment(service)["PROXY_LISTEN_PORT"]))
    if image == "rabbitmq":
        plugins = [ROOT / src for src, dst in mounts(service) if dst.endswith("enabled_plugins")]
        if plugins and "rabbitmq_prometheus" in plugins[0].read_text():
            found.add(RABBITMQ_PROMETHEUS_PORT)
    return found


# -- commands ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(EVENTSINK_SERVICES))
def test_service_commands_exist_in_the_cli(name: str) -> None:
    # Given each eventsink call a service makes
    calls = invocations(EVENTSINK_SERVICES[name])
    assert calls, f"{name} runs no eventsink command"
    for argv in calls:
        # Then the command path exists and answers --help
        resolved = resolve(argv)
        result = CliRunner().invoke(cli, [*resolved.path, "--help"])
        assert result.exit_code == 0, result.output
        # and its options and arguments parse (files the container mounts from the repo are checked there)
        args = [_host_path(EVENTSINK_SERVICES[name], a) for a in resolved.args]
        resolved.command.make_context(" ".join(resolved.path), args)
        # and every file it names in the container is mounted there
        targets = [Path(dst) for _src, dst in mounts(EVENTSINK_SERVICES[name])]
        for arg in resolved.args:
            if arg.startswith("/"):
                assert any(Path(arg).is_relative_to(t) for t in targets), f"{name}: {arg} is not mounted"


def _host_path(service: dict[str, Any], arg: str) -> str:
    for source, target in mounts(service):
        if is_bind(source) and arg == target:
            return str(ROOT / source)
    return arg


def test_every_worker_service_runs_an_installed_plugin_and_every_plugin_has_a_service() -> None:
    plugins = set(worker_plugins()) - {"discard"}
    run = {resolve(argv).args[0] for s in EVENTSINK_SERVICES.values() for argv in invocations(s)
           if resolve(argv).path == ("worker", "run")}
    assert run == plugins


def test_a_plugin_installed_from_elsewhere_needs_no_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a third-party worker plugin installed into the same environment (a dist-info on sys.path)
    dist = tmp_path / "someones_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: someones-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[eventsink.workers]\nsomeones = workers.discard:DiscardWorker\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "someones" in installed_workers()

    # Then the compose checks still compare the project's own plugins with its services
    assert "someones" not in worker_plugins()
    test_every_worker_service_runs_an_installed_plugin_and_every_plugin_has_a_service()


def test_workers_needing_credentials_sit_behind_a_profile() -> None:
    for name, service in EVENTSINK_SERVICES.items():
        argv = invocations(service)[0]
        if resolve(argv).path == ("worker", "run") and argv[2] in {"amplitude", "google_analytics"}:
            assert service.get("profiles"), name


# -- environment ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(EVENTSINK_SERVICES))
def test_every_eventsink_variable_is_read_by_the_command(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the variables the service sets, and the settings models its commands build
    service = EVENTSINK_SERVICES[name]
    env = environment(service)
    models = [m for argv in invocations(service) for m in settings_models(argv)]
    known = set().union(*(env_names(m) for m in models))

    # Then every EVENTSINK_* variable is one of theirs
    unknown = {k for k in env if k.startswith("EVENTSINK_")} - known
    assert not unknown, f"{name} sets variables no model of its command reads: {sorted(unknown)}"

    # and with the example env file's values, every model accepts them
    values = _example_env()
    for key in list(os.environ):
        if key.startswith("EVENTSINK_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, interpolate(value, values))
    for model in models:
        model()


def test_no_other_service_sets_eventsink_variables() -> None:
    for name, service in SERVICES.items():
        if not is_eventsink(service):
            assert not [k for k in environment(service) if k.startswith("EVENTSINK_")], name


def test_env_example_defines_every_interpolated_variable() -> None:
    # Given every ${VAR} of the compose file / Then .env.example names it, and .env itself is not committed
    used = interpolated_names(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert used
    assert used <= set(read_env_file(ENV_EXAMPLE)), sorted(used - set(read_env_file(ENV_EXAMPLE)))
    ignored = (ROOT / ".gitignore").read_text().split()
    assert ".env" in ignored


def test_urls_in_the_environment_point_at_services() -> None:
    values = _example_env()
    for name, service in SERVICES.items():
        for key, value in environment(service).items():
            if "://" not in value or not key.endswith("_URL"):
                continue
            parts = urlsplit(interpolate(value, values))
            assert parts.hostname in SERVICES, f"{name}: {key} points at {parts.hostname}"
            assert parts.port in _listening_ports(parts.hostname), f"{name}: {key} port {parts.port}"


def test_grafana_gets_every_variable_its_datasources_read() -> None:
    datasources = (ROOT / "grafana" / "provisioning" / "datasources" / "eventsink.yaml").read_text()
    assert interpolated_names(datasources) <= set(environment(SERVICES["grafana"]))


# -- ports ------------------------------------------------------------------------------------------

def test_published_ports_are_unique_local_and_listened_on() -> None:
    published: list[int] = []
    for name, service in SERVICES.items():
        for host_ip, host_port, container_port in ports(service):
            published.append(host_port)
            assert host_ip == "127.0.0.1", f"{name} publishes {host_port} on every interface"
            assert container_port in _listening_ports(name), f"{name} does not listen on {container_port}"
    assert len(published) == len(set(published))


def _scrape_targets() -> dict[str, list[tuple[str, int]]]:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    out: dict[str, list[tuple[str, int]]] = {}
    for job in config["scrape_configs"]:
        for static in job["static_configs"]:
            for target in static["targets"]:
                host, port = target.rsplit(":", 1)
                out.setdefault(job["job_name"], []).append((host, int(port)))
    return out


def test_prometheus_scrapes_ports_the_services_listen_on() -> None:
    for job, targets in _scrape_targets().items():
        for host, port in targets:
            host = "prometheus" if host == "localhost" else host
            assert host in SERVICES, f"job {job}: {host} is not a service"
            assert port in _listening_ports(host), f"job {job}: {host} does not listen on {port}"


def test_every_metrics_endpoint_is_scraped() -> None:
    # Given every port an eventsink service serves metrics on, and RabbitMQ's plugin
    scraped = {target for targets in _scrape_targets().values() for target in targets}
    for name in EVENTSINK_SERVICES:
        for port in _listening_ports(name):
            assert (name, port) in scraped, f"{name}:{port} is not scraped"
    assert ("rabbitmq", RABBITMQ_PROMETHEUS_PORT) in scraped


def test_scraped_metrics_endpoints_listen_beyond_their_container() -> None:
    # Given the metrics ports of each eventsink service and the address each listens on (loopback by default)
    for name, service in EVENTSINK_SERVICES.items():
        env = environment(service)
        listening = {int(v): env.get(k.replace("_PORT", "_ADDRESS"), "127.0.0.1")
                     for k, v in env.items() if k.endswith("_METRICS_PORT")}
        if "EVENTSINK_PROMETHEUS_PORT" in env:
            listening[int(env["EVENTSINK_PROMETHEUS_PORT"])] = env.get("EVENTSINK_PROMETHEUS_ADDRESS", "127.0.0.1")
        # Then every one of them accepts the prometheus container's connections
        for port, address in listening.items():
            assert address in {"0.0.0.0", "::"}, f"{name}:{port} listens on {address} only"


def test_prometheus_mounts_the_checked_config() -> None:
    sources = {ROOT / src for src, _ in mounts(SERVICES["prometheus"]) if is_bind(src)}
    assert PROMETHEUS_CONFIG.resolve() in {p.resolve() for p in sources}


# -- volumes, dependencies, health ------------------------------------------------------------------

def test_volumes_are_declared_used_and_bind_sources_exist() -> None:
    declared = set(COMPOSE.get("volumes") or {})
    used = set()
    for name, service in SERVICES.items():
        for source, _ in mounts(service):
            if is_bind(source):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in declared, f"{name} uses undeclared volume {source}"
                used.add(source)
    assert used == declared


def test_depends_on_names_existing_services_with_valid_conditions() -> None:
    for name, service in SERVICES.items():
        for target, spec in (service.get("depends_on") or {}).items():
            assert target in SERVICES and target != name
            condition = spec["condition"]
            assert condition in {"service_started", "service_healthy", "service_completed_successfully"}
            if condition == "service_healthy":
                assert "test" in SERVICES[target].get("healthcheck", {}), f"{target} has no healthcheck"
            if condition == "service_completed_successfully":
                assert _one_shot(SERVICES[target]), f"{target} is not a one-shot service"


def test_long_running_services_have_healthchecks_and_restart_policies() -> None:
    for name, service in SERVICES.items():
        if _one_shot(service):
            continue
        assert service.get("restart") in {"always", "unless-stopped", "on-failure"}, name
        check = service.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no healthcheck"


def test_topology_is_declared_before_the_components_that_use_the_broker() -> None:
    paths = {name: resolve(invocations(s)[0]).path for name, s in EVENTSINK_SERVICES.items()}
    (declarer,) = [name for name, path in paths.items() if path == ("topology", "declare")]
    for name, service in EVENTSINK_SERVICES.items():
        path = resolve(invocations(service)[0]).path
        if path[0] in {"api", "worker"}:
            assert service["depends_on"][declarer]["condition"] == "service_completed_successfully", name


def test_the_monitor_config_loads_and_probes_the_api(tmp_path: Path) -> None:
    # Given the monitor's mounted config, with its key file where the api-keys service writes it
    service = SERVICES["monitor"]
    (config_source,) = [ROOT / src for src, dst in mounts(service) if dst.endswith(".toml")]
    text = config_source.read_text()
    key_file = tmp_path / "monitor.key"
    key_file.write_text("es_test\n")
    copy = tmp_path / "monitor.toml"
    copy.write_text(re.sub(r'api_key_file = "[^"]+"', f'api_key_file = "{key_file}"', text))

    # Then it is valid, and reports to (and probes) the API service on the port it binds
    config = load_config(copy)
    api = urlsplit(config.api_url)
    assert api.hostname == "api" and api.port in _listening_ports("api")
    assert any(urlsplit(getattr(t, "url", "") or "").hostname == "api" for t in config.targets)


# -- Dockerfile -------------------------------------------------------------------------------------

def _dockerfile() -> list[str]:
    return [line.strip() for line in DOCKERFILE.read_text().splitlines() if line.strip() and not line.startswith("#")]


def test_dockerfile_copies_existing_sources_and_every_package() -> None:
    copied = set()
    for line in _dockerfile():
        if line.startswith("COPY "):
            *sources, _dest = line.split()[1:]
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
                copied.add(source)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages <= copied
    assert {"pyproject.toml", project["project"]["readme"]} <= copied


def test_dockerfile_builds_the_cli_image_as_a_non_root_user() -> None:
    lines = _dockerfile()
    assert lines[0] == "FROM python:3.11-slim"
    assert any("pip install '.[all]'" in line for line in lines)
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in {"root", "0"}
    assert 'ENTRYPOINT ["eventsink"]' in lines


def test_grafana_mounts_the_provisioning_and_the_dashboards_where_the_provider_looks() -> None:
    provider = yaml.safe_load((ROOT / "grafana" / "provisioning" / "dashboards" / "eventsink.yaml").read_text())
    binds = {dst: (ROOT / src).resolve() for src, dst in mounts(SERVICES["grafana"]) if is_bind(src)}
    assert binds["/etc/grafana/provisioning"] == (ROOT / "grafana" / "provisioning").resolve()
    assert binds[provider["providers"][0]["options"]["path"]] == (ROOT / "grafana" / "dashboards").resolve()


def test_prometheus_config_passes_promtool() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if IN_CI:
            pytest.fail("promtool (Debian package prometheus) is required in CI")
        pytest.skip("promtool is not installed")
    result = subprocess.run([promtool, "check", "config", "--syntax-only", str(PROMETHEUS_CONFIG)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
