"""The ``eventsink`` command line.

Commands owned by other packages (``api``, ``keys``, ``worker``, ``status``, ``dead``, ``monitor``) and
``spool`` are imported only when used, so ``eventsink emit`` works with just sink_lib's dependencies installed.
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
from typing import Any

import click

from .errors import EventSinkError, EventValidationError
from .registry import default_registry
from .settings import SinkSettings

# name -> "module:attribute" of a click command defined by another package
LAZY_COMMANDS = {
    "api": ("emergency_api.cli:api", "Serve the emergency API with gunicorn."),
    "keys": ("emergency_api.cli:keys", "Create, list and revoke emergency API keys."),
    "worker": ("workers.cli:worker", "List and run worker plugins."),
    "status": ("workers.cli:status", "Per worker queue: depth, consumers, dead letters."),
    "dead": ("workers.cli:dead", "List and replay dead-lettered events."),
    "monitor": ("monitors.cli:monitor", "Run the uptime and latency monitor of a region."),
    "spool": ("sink_lib.spool_cli:spool", "See and replay the local spool of events waiting for RabbitMQ."),
}


class LazyGroup(click.Group):
    """A click group whose subcommands from other packages are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS:
            target, _ = LAZY_COMMANDS[cmd_name]
            module, attr = target.split(":")
            try:
                command = getattr(importlib.import_module(module), attr)
            except ImportError as exc:
                raise click.ClickException(
                    f"'eventsink {cmd_name}' needs a missing package ({exc.name}); "
                    "install the project with its extras: pip install 'eventsink[all]'"
                ) from exc
            return command
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            if name in LAZY_COMMANDS:
                rows.append((name, LAZY_COMMANDS[name][1]))
            else:
                cmd = super().get_command(ctx, name)
                rows.append((name, cmd.get_short_help_str(80) if cmd else ""))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def load_settings() -> SinkSettings:
    """Settings from the environment, or a click error naming the bad variable."""
    try:
        return SinkSettings.load()
    except EventSinkError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group(cls=LazyGroup)
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
def main(verbose: int) -> None:
    """EventSink: collect events once, fan them out to every destination."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@main.command()
@click.argument("type_name", required=False)
def schema(type_name: str | None) -> None:
    """Print the JSON Schema of one event type's data, or of all built-in and plugin types."""
    registry = default_registry()
    if type_name is None:
        out: Any = registry.schemas()
    elif type_name in registry:
        out = registry.schema(type_name)
    else:
        raise click.ClickException(f"unknown event type {type_name!r}; known: {', '.join(registry.names())}")
    click.echo(json.dumps(out, indent=2, sort_keys=True))


@main.command()
@click.argument("type_name")
@click.argument("data_json")
@click.option("--source", help="CloudEvents source (default EVENTSINK_SOURCE).")
@click.option("--subject", help="CloudEvents subject.")
@click.option("--userid", help="The userid extension attribute.")
@click.option("--region", help="The region extension attribute.")
@click.option("--timeout", default=10.0, show_default=True, help="Seconds to wait for the broker confirm.")
def emit(
    type_name: str,
    data_json: str,
    source: str | None,
    subject: str | None,
    userid: str | None,
    region: str | None,
    timeout: float,
) -> None:
    """Publish one event, e.g. eventsink emit storage.file.uploaded '{"file_id":"f1","bytes":10}'.

    Prints the event id. Exits 0 once the broker confirmed the event or it is in the local spool.
    """
    from .sink import EventSink

    try:
        data = json.loads(data_json)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="DATA_JSON") from exc
    settings = load_settings()
    with EventSink(settings=settings) as sink:
        try:
            event = sink.emit(type_name, data, source=source, subject=subject, userid=userid, region=region)
        except EventValidationError as exc:
            raise click.ClickException(str(exc)) from exc
        if not sink.flush(timeout=timeout):
            click.echo(f"error: event {event.id} not confirmed or spooled within {timeout}s", err=True)
            sys.exit(1)
        spooled = sink.stats()["spooled"]
    click.echo(event.id)
    if spooled:
        click.echo("warning: RabbitMQ unreachable; the event is in the local spool", err=True)


@main.group()
def topology() -> None:
    """Broker topology: exchange, worker queues, dead-letter queues."""


@topology.command("declare")
@click.option("--worker", "workers", multiple=True, help="Worker queue to declare (default: every installed).")
def topology_declare(workers: tuple[str, ...]) -> None:
    """Declare the exchange and per-worker queues; safe to run any number of times."""
    from .topology import declare

    settings = load_settings()
    try:
        declared = declare(settings, list(workers) or None)
    except EventSinkError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"exchange {settings.exchange} (fanout, durable)")
    for queue in declared:
        click.echo(f"queue {queue} ({settings.queue_type}, dead letters -> {queue}.dead)")


@topology.command("delete")
@click.option("--worker", "workers", multiple=True, required=True, help="Worker whose queues to delete (repeatable).")
@click.option("--force", is_flag=True, help="Delete even with consumers attached, messages or dead letters in them.")
def topology_delete(workers: tuple[str, ...], force: bool) -> None:
    """Delete the queue of each worker, events.NAME, and its dead-letter queue events.NAME.dead.

    Refuses while the queue has a consumer or messages, or dead letters wait (unless --force): events
    that landed there since the worker stopped would be lost. Events keep being published to the
    exchange; only this worker stops receiving them.
    """
    from .teardown import delete_worker_queues

    settings = load_settings()
    logging.getLogger("pika").setLevel(logging.CRITICAL)  # our errors say what failed
    failed = False
    for worker in workers:
        try:
            gone = delete_worker_queues(settings, worker, force=force)
        except EventSinkError as exc:
            click.echo(f"error: {exc}", err=True)
            failed = True
            continue
        for queue, count, what in ((gone.queue, gone.messages, "message(s)"),
                                   (gone.dead_queue, gone.dead_letters, "dead letter(s)")):
            if count is None:
                click.echo(f"queue {queue} did not exist")
            else:
                click.echo(f"deleted queue {queue} ({count} {what} dropped)")
    if failed:
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
