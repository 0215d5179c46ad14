"""Reading docker-compose.yml the way Compose does, as far as the structural tests need it.

No Docker engine runs here, so the tests read the file themselves: YAML anchors and ``<<`` merges
(PyYAML resolves them), ``${VAR}`` interpolation from an env file, short-syntax ports and volumes,
and which settings models each service's ``eventsink`` command reads.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import click
import yaml
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from emergency_api.settings import ApiSettings
from monitors.config import MonitorSettings
from sink_lib.cli import main as cli
from sink_lib.settings import SinkSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
#: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, $VAR; $$ is a literal $
INTERPOLATION = re.compile(r"\$\$|\$\{(\w+)(?:(:?[-?+])([^}]*))?\}|\$(\w+)")
SHELL_OPERATORS = {"|", "||", "&&", ";", ">", ">>", "<", "&"}


def load_compose() -> dict[str, Any]:
    """docker-compose.yml with anchors and merges resolved (not interpolated)."""
    return dict(yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8")))


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of an env file (comments and blank lines skipped)."""
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def interpolated_names(text: str) -> set[str]:
    """Every variable name Compose would substitute in ``text``."""
    return {m.group(1) or m.group(4) for m in INTERPOLATION.finditer(text) if m.group(0) != "$$"}


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """``value`` with variables substituted as Compose does (defaults honoured, unset -> empty)."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1) or match.group(4)
        op, default = match.group(2), match.group(3)
        current = env.get(name)
        if op in (":-", "-") and (current is None or (op == ":-" and current == "")):
            return default or ""
        return current or ""

    return INTERPOLATION.sub(replace, value)


def services(compose: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The services, by name."""
    return dict(compose["services"])


def is_eventsink(service: Mapping[str, Any]) -> bool:
    """True for the services that run the project image."""
    return "build" in service or str(service.get("image", "")).startswith("eventsink:")


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    """The service's environment (mapping or KEY=VALUE list form), values as strings."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.partition("=")[::2] for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def invocations(service: Mapping[str, Any]) -> list[list[str]]:
    """The ``eventsink`` argument lists a service runs: its command, or each call in a shell script."""
    entrypoint = service.get("entrypoint")
    command = service.get("command") or []
    if isinstance(command, str):
        command = shlex.split(command)
    if not entrypoint:
        return [list(command)]
    script = " ".join(command)
    calls: list[list[str]] = []
    current: list[str] | None = None
    for token in shlex.split(script):
        if token == "eventsink":
            current = []
            calls.append(current)
        elif token in SHELL_OPERATORS:
            current = None
        elif current is not None:
            current.append(token)
    return calls


@dataclass(frozen=True)
class ResolvedCommand:
    """An ``eventsink`` invocation split into its command path and its arguments."""

    path: tuple[str, ...]
    command: click.Command
    args: list[str]


def resolve(argv: list[str]) -> ResolvedCommand:
    """Walk the CLI's groups along ``argv``; raises LookupError for an unknown command."""
    command: click.Command = cli
    path: list[str] = []
    args = list(argv)
    while isinstance(command, click.Group) and args and not args[0].startswith("-"):
        sub = command.get_command(click.Context(command), args[0])
        if sub is None:
            raise LookupError(f"eventsink {' '.join([*path, args[0]])}: no such command")
        path.append(args.pop(0))
        command = sub
    return ResolvedCommand(tuple(path), command, args)


def worker_plugins() -> dict[str, Any]:
    """The project's own worker plugin classes by entry-point name, as pyproject.toml registers them.

    Read from pyproject.toml rather than the installed entry points: a plugin someone else installed
    into the same environment has no service in this compose file, and should not need one.
    """
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {name: EntryPoint(name, target, "eventsink.workers").load()
            for name, target in project["entry-points"]["eventsink.workers"].items()}


def settings_models(argv: list[str]) -> list[type[BaseSettings]]:
    """The settings models an ``eventsink`` invocation builds from the environment."""
    resolved = resolve(argv)
    top = resolved.path[0]
    if top == "worker" and resolved.path[1:] == ("run",):
        return [SinkSettings, worker_plugins()[resolved.args[0]].settings_model]
    if top == "monitor":
        return [MonitorSettings]
    if top in ("api", "keys"):
        return [SinkSettings, ApiSettings]
    return [SinkSettings]


def env_names(model: type[BaseSettings]) -> set[str]:
    """The environment variable names a pydantic-settings model reads (prefix + field, or its aliases)."""
    prefix = str(model.model_config.get("env_prefix", ""))
    names = set()
    for name, info in model.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            names |= {str(choice).upper() for choice in alias.choices if isinstance(choice, str)}
        elif isinstance(alias, str):
            names.add(alias.upper())
        else:
            names.add(f"{prefix}{name}".upper())
    return names


def ports(service: Mapping[str, Any]) -> Iterator[tuple[str, int, int]]:
    """(host address, host port, container port) of each published port."""
    for spec in service.get("ports", []):
        if isinstance(spec, dict):
            yield spec.get("host_ip", "0.0.0.0"), int(spec["published"]), int(spec["target"])
            continue
        parts = str(spec).split("/")[0].split(":")
        if len(parts) == 3:
            yield parts[0], int(parts[1]), int(parts[2])
        elif len(parts) == 2:
            yield "0.0.0.0", int(parts[0]), int(parts[1])


def mounts(service: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(source, container path) of each volume or bind mount."""
    for spec in service.get("volumes", []):
        if isinstance(spec, dict):
            yield str(spec["source"]), str(spec["target"])
        else:
            source, target, *_ = str(spec).split(":")
            yield source, target


def is_bind(source: str) -> bool:
    """True for a host path (bind mount) rather than a named volume."""
    return source.startswith((".", "/", "~"))
