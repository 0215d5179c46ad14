"""``eventsink spool status|replay``: see and drain the local spool of events waiting for RabbitMQ."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from .cli import load_settings
from .errors import EventSinkError
from .settings import SinkSettings
from .spool_report import describe, inspect_spool, inspect_spools
from .topology import redact_url

DIR_OPTION = click.option(
    "--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
    help="Spool directory (default: EVENTSINK_SPOOL_DIR, or ~/.local/state/eventsink/spool).",
)
SPOOL_FILE = "spool.sqlite3"  # the spool of EventSink and the emergency API


def _settings(directory: Path | None) -> SinkSettings:
    settings = load_settings()
    return settings.model_copy(update={"spool_dir": directory}) if directory is not None else settings


@click.group()
def spool() -> None:
    """See and replay the local spool (events kept on disk while RabbitMQ was unreachable)."""


@spool.command("status")
@DIR_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def spool_status(directory: Path | None, as_json: bool) -> None:
    """Each spool in the directory: events, bytes, oldest event, and claims by live and dead processes.

    Reads the spool without changing it.
    """
    folder = _settings(directory).spool_dir
    try:
        reports = inspect_spools(folder)
    except EventSinkError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps({"directory": str(folder), "spools": [r.to_dict() for r in reports]}, indent=2))
        return
    for line in describe(folder, reports):
        click.echo(line)


@spool.command("replay")
@DIR_OPTION
@click.option("--timeout", default=60.0, show_default=True, type=click.FloatRange(min=0),
              help="Seconds to wait for RabbitMQ to take the events.")
def spool_replay(directory: Path | None, timeout: float) -> None:
    """Publish the spooled events to the exchange (EVENTSINK_EXCHANGE), oldest first, and remove them.

    Exits 0 when nothing is left but events a running process is delivering, 1 otherwise. Events of
    the ``monitor`` spool are replayed by the monitor itself.
    """
    from .sink import EventSink

    if logging.getLogger().getEffectiveLevel() > logging.INFO:
        logging.getLogger("pika").setLevel(logging.CRITICAL)  # one line of ours says it better; -v shows all
    settings = _settings(directory)
    path = settings.spool_dir / SPOOL_FILE
    if not path.exists():
        click.echo(f"nothing to replay: no spool at {path}")
        return
    try:
        sink = EventSink(settings=settings)
    except EventSinkError as exc:
        raise click.ClickException(str(exc)) from exc
    left = sink.close(timeout)
    replayed = sink.stats()["replayed"]
    try:
        busy = inspect_spool(path).claimed(alive=True)
    except EventSinkError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"replayed {replayed} event(s) from {path}; {left} left")
    if busy:
        click.echo(f"{busy} of them are claimed by running processes, which deliver them")
    if left > busy:
        click.echo(f"error: {left - busy} event(s) not delivered within {timeout}s; is RabbitMQ reachable at "
                   f"{redact_url(settings.amqp_url)}? (-v shows why)", err=True)
        sys.exit(1)
