"""``eventsink worker list|run``, ``eventsink status`` and ``eventsink dead list|replay``.

Wired into the main CLI lazily (``sink_lib.cli.LAZY_COMMANDS``). Settings are built here, at the edge.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import click

from sink_lib.cli import load_settings
from sink_lib.errors import EventSinkError
from sink_lib.foreign import foreign_queues
from sink_lib.settings import SinkSettings
from sink_lib.spool_report import describe, inspect_spools
from sink_lib.topology import QueueStatus, installed_workers, queue_status

from .idle_queues import idle_queues
from .runtime import describe_plugins, run_worker, tune_gc
from .runtime.deadqueue import list_dead, replay_dead


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]
    return "\n".join(lines)


def _dash(value: Any) -> str:
    return "-" if value is None else str(value)


def _quiet_pika() -> None:
    """Keep pika's own tracebacks out of the output: our errors and warnings already say what failed."""
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("pika").setLevel(logging.CRITICAL)


def set_worker_log_level(log_level: str) -> None:
    """Log at ``log_level`` from every logger of the process, a plugin's own included.

    The level goes on the root logger, which a plugin's ``logging.getLogger(__name__)`` inherits
    whatever its package is called; pika's connection chatter stays out unless ``debug`` is asked.
    """
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    root.setLevel(log_level.upper())
    logging.getLogger("workers").setLevel(logging.NOTSET)  # follow the root, not an earlier setting
    if log_level != "debug":
        _quiet_pika()


@click.group()
def worker() -> None:
    """List and run worker plugins."""


@worker.command("list")
def worker_list() -> None:
    """Installed worker plugins, their description, and whether their dependencies are installed."""
    rows = []
    for info in describe_plugins():
        rows.append([info.name, "yes" if info.available else "no", info.description or info.problem])
    click.echo(_table(rows, ["NAME", "AVAILABLE", "DESCRIPTION"]))


@worker.command("run")
@click.argument("name")
@click.option("--dry-run", is_flag=True, help="Consume and parse, log what would be written; write and ack nothing.")
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    help="Log level of the worker: the runtime's and the plugin's own loggers alike.",
)
def worker_run(name: str, dry_run: bool, log_level: str) -> None:
    """Run worker NAME (an installed plugin, or package.module:Class for one that is not installed).

    Stops gracefully on SIGTERM/SIGINT: the batch in flight is finished or returned to the queue,
    nothing unwritten is acked. Settings: EVENTSINK_* and the plugin's EVENTSINK_<NAME>_* variables.
    """
    set_worker_log_level(log_level)
    settings = load_settings()
    try:
        tune_gc()  # this process is the worker: its garbage collector is ours to tune
        run_worker(name, settings, dry_run=dry_run)
    except EventSinkError as exc:
        raise click.ClickException(str(exc)) from exc


@click.command()
@click.option("--worker", "workers", multiple=True, help="Worker to show (default: every installed one).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--interval", "interval_s", default=2.0, show_default=True, type=click.FloatRange(min=0),
              help="Seconds between two readings of queues with no consumer, to tell whether they grow (0: one).")
def status(workers: tuple[str, ...], as_json: bool, interval_s: float) -> None:
    """Per worker queue: messages ready, consumers, dead letters ('-' where a queue is not declared).

    Warns (on stderr) about queues with no consumer that hold messages or grow: every event lands in
    them until their worker runs or `eventsink topology delete --worker NAME` removes them.
    """
    _quiet_pika()
    settings = load_settings()
    try:
        rows = queue_status(settings, list(workers) or installed_workers())
    except EventSinkError as exc:
        if not as_json:
            _echo_local_spool(settings)  # most useful exactly when the broker cannot be reached
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps([r.__dict__ for r in rows], indent=2))
    else:
        table = [[r.worker, r.queue, _dash(r.messages), _dash(r.consumers), _dash(r.dead_letters)] for r in rows]
        click.echo(_table(table, ["WORKER", "QUEUE", "MESSAGES", "CONSUMERS", "DEAD"]))
        _foreign_section(settings)
        _echo_local_spool(settings)
    _warn_idle_queues(settings, rows, interval_s)


def _foreign_section(settings: SinkSettings) -> None:
    """Other queues bound to the exchange with no consumer: their messages pile up unread."""
    try:
        queues = foreign_queues(settings)
    except EventSinkError as exc:
        click.echo(f"note: other queues bound to {settings.exchange!r} not checked: {exc}", err=True)
        return
    if not queues:
        return
    click.echo(
        f"\n{len(queues)} other queue(s) bound to {settings.exchange!r} have no consumer; their messages pile up "
        "(an expiry policy removes them: README, 'Connect Clowder'):"
    )
    click.echo(_table([[q.queue, _dash(q.messages)] for q in queues], ["QUEUE", "MESSAGES"]))


def _echo_local_spool(settings: SinkSettings) -> None:
    """The spool of this host (events waiting for RabbitMQ); JSON: ``eventsink spool status --json``."""
    folder = settings.spool_dir
    click.echo(f"\nLocal spool ({folder}):")
    try:
        lines = describe(folder, inspect_spools(folder))
    except EventSinkError as exc:
        lines = [f"cannot read it: {exc}"]
    for line in lines:
        click.echo(f"  {line}")


def _warn_idle_queues(settings: SinkSettings, rows: list[QueueStatus], interval_s: float) -> None:
    """Warn on stderr about queues with no consumer that hold messages or grow."""
    try:
        found = idle_queues(settings, rows, interval_s)
    except EventSinkError as exc:
        raise click.ClickException(str(exc)) from exc
    for queue in found:
        click.echo(queue.warning(interval_s), err=True)


@click.group()
def dead() -> None:
    """List and replay dead-lettered events of a worker."""


@dead.command("list")
@click.argument("worker_name", metavar="WORKER")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(min=1), help="Most to show.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def dead_list(worker_name: str, limit: int, as_json: bool) -> None:
    """Show dead letters of WORKER (id, type, reason, failed-at); they stay in the queue."""
    _quiet_pika()
    settings = load_settings()
    try:
        letters = list_dead(settings, worker_name, limit)
    except EventSinkError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps([d.to_dict() for d in letters], indent=2))
        return
    if not letters:
        click.echo(f"no dead letters for worker {worker_name}")
        return
    rows = [[d.id, d.type, d.failed_at, d.reason] for d in letters]
    click.echo(_table(rows, ["ID", "TYPE", "FAILED_AT", "REASON"]))


@dead.command("replay")
@click.argument("worker_name", metavar="WORKER")
@click.option("--type", "type_pattern", help="Only events whose type matches this pattern (fnmatch).")
@click.option("--id", "ids", multiple=True, help="Only this event id (repeatable).")
@click.option("--limit", type=click.IntRange(min=1), help="Replay at most this many.")
def dead_replay(worker_name: str, type_pattern: str | None, ids: tuple[str, ...], limit: int | None) -> None:
    """Move dead letters of WORKER back to its live queue; those not matching the filters stay."""
    _quiet_pika()
    settings = load_settings()
    try:
        result = replay_dead(settings, worker_name, type_pattern=type_pattern, ids=ids, limit=limit)
    except EventSinkError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"replayed {len(result.replayed)} dead letter(s) to the live queue; {result.kept} left")
