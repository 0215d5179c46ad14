"""``eventsink api`` (serve with gunicorn) and ``eventsink keys create|list|revoke``."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import click

from sink_lib.errors import EventSinkError
from sink_lib.settings import SinkSettings

from .keys import KeyFileError, KeyStore, create_key, read_keys, revoke_key
from .ratelimit import RateLimiter
from .settings import ApiSettings


def _api_settings(**overrides: object) -> ApiSettings:
    try:
        return ApiSettings.load(**{k: v for k, v in overrides.items() if v is not None})
    except EventSinkError as exc:
        raise click.ClickException(str(exc)) from exc


def _multiprocess_metrics() -> None:
    """Give the workers a fresh shared folder for their metrics (before prometheus-client values exist)."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        folder = tempfile.mkdtemp(prefix="eventsink-api-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
        atexit.register(shutil.rmtree, folder, True)
    from prometheus_client import values

    values.ValueClass = values.get_value_class()


@click.command()
@click.option("--bind", help="HOST:PORT to listen on (default EVENTSINK_API_BIND, 127.0.0.1:8000).")
@click.option("--workers", type=int, help="Worker processes (default EVENTSINK_API_WORKERS, 2).")
@click.option("--worker-class",
              help="gunicorn worker class (default EVENTSINK_API_WORKER_CLASS, eventsink: an event loop per worker).")
@click.option("--threads", type=int,
              help="Threads per worker (default EVENTSINK_API_THREADS, 16; eventsink: routes served through WSGI).")
@click.option("--gunicorn-option", "-o", "options", multiple=True, metavar="KEY=VALUE",
              help="Any gunicorn setting, e.g. -o timeout=90 -o limit_request_field_size=16380. Repeatable.")
def api(bind: str | None, workers: int | None, worker_class: str | None, threads: int | None,
        options: tuple[str, ...]) -> None:
    """Serve the emergency API with gunicorn (GUNICORN_CMD_ARGS is honoured too)."""
    from gunicorn.config import KNOWN_SETTINGS

    from .app import create_app
    from .serving import AddressInUseError, ApiServer

    settings = _api_settings()
    try:
        sink_settings = SinkSettings.load()
        # fail here, with a message, rather than in every worker at boot
        KeyStore(settings.keys_file)
        if settings.rate_limit_enabled:
            RateLimiter(settings)
    except EventSinkError as exc:  # KeyFileError included
        raise click.ClickException(str(exc)) from exc
    overrides: dict[str, object] = {}
    known = {setting.name for setting in KNOWN_SETTINGS}
    for option in options:
        key, sep, value = option.partition("=")
        key = key.strip().replace("-", "_").lower()
        if not sep or not key:
            raise click.BadParameter(f"{option!r} is not KEY=VALUE", param_hint="--gunicorn-option")
        if key not in known:
            raise click.BadParameter(f"unknown gunicorn setting {key!r}", param_hint="--gunicorn-option")
        overrides[key] = value
    for key, cli_value in (("bind", bind), ("workers", workers), ("worker_class", worker_class),
                           ("threads", threads)):
        if cli_value is not None:
            overrides[key] = cli_value
    base = {"bind": settings.bind, "workers": settings.workers, "worker_class": settings.worker_class,
            "threads": settings.threads}
    server = ApiServer(lambda: create_app(settings, sink_settings=sink_settings), base, overrides)
    try:
        server.prepare_listening()  # before anything in this process changes
    except AddressInUseError as exc:
        raise click.ClickException(str(exc)) from exc
    _multiprocess_metrics()
    server.run()


keys_file_option = click.option(
    "--keys-file", type=click.Path(dir_okay=False, path_type=Path),
    help="The keys file (default EVENTSINK_API_KEYS_FILE).",
)


@click.group()
def keys() -> None:
    """Create, list and revoke emergency API keys (stored hashed in the keys file)."""


@keys.command("create")
@click.option("--name", required=True, help="Key name; events get source /api/<name>.")
@click.option("--scope", "scopes", multiple=True, required=True,
              help="Event types the key may post, as patterns: 'health.*', 'metric.*', '*'. Repeatable.")
@keys_file_option
def keys_create(name: str, scopes: tuple[str, ...], keys_file: Path | None) -> None:
    """Create a key; the key is printed once, alone on the last line of stdout."""
    path = _api_settings(keys_file=keys_file).keys_file
    try:
        entry, key = create_key(path, name, scopes)
    except KeyFileError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"created key {entry.name!r} (id {entry.id}, scopes {', '.join(entry.scopes)}) in {path}")
    click.echo("store it now; it cannot be shown again:")
    click.echo(key)


@keys.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include revoked keys.")
@keys_file_option
def keys_list(show_all: bool, keys_file: Path | None) -> None:
    """List keys: id, name, scopes, created, revoked (never the keys themselves)."""
    path = _api_settings(keys_file=keys_file).keys_file
    try:
        entries = read_keys(path)
    except KeyFileError as exc:
        raise click.ClickException(str(exc)) from exc
    rows = [e for e in entries if show_all or not e.revoked]
    click.echo(f"{'ID':<12}  {'NAME':<24}  {'SCOPES':<30}  {'CREATED':<27}  REVOKED")
    for e in rows:
        click.echo(f"{e.id:<12}  {e.name:<24}  {','.join(e.scopes):<30}  {e.created:<27}  {e.revoked or '-'}")


@keys.command("revoke")
@click.argument("name_or_id")
@keys_file_option
def keys_revoke(name_or_id: str, keys_file: Path | None) -> None:
    """Revoke the active key with this name or id; the running API refuses it at once."""
    path = _api_settings(keys_file=keys_file).keys_file
    try:
        revoked = revoke_key(path, name_or_id)
    except KeyFileError as exc:
        raise click.ClickException(str(exc)) from exc
    if not revoked:
        raise click.ClickException(f"no active key named or with id {name_or_id!r} in {path}")
    for entry in revoked:
        click.echo(f"revoked key {entry.name!r} (id {entry.id})")
