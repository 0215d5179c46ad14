"""``python -m workers.google_analytics validate FILE``: check events against GA4's validation server.

Reads events (a JSON array, or one JSON object per line; ``-`` for stdin), applies the worker's privacy
rules, mapping and limits, sends them to ``/debug/mp/collect`` (nothing is recorded) and prints, per
event, ``ok`` or why it would be refused. Settings come from ``EVENTSINK_GOOGLE_ANALYTICS_*``.
"""

from __future__ import annotations

import json
from typing import Any

import click

from sink_lib.errors import EventSinkError
from sink_lib.event import Event
from sink_lib.settings import build_settings
from workers.errors import RejectEvents, RetryLater

from .settings import GoogleAnalyticsSettings
from .worker import GoogleAnalyticsWorker


def _read(text: str) -> list[dict[str, Any]]:
    stripped = text.strip()
    if stripped.startswith("["):
        return list(json.loads(stripped))
    return [json.loads(line) for line in stripped.splitlines() if line.strip()]


@click.command("validate")
@click.argument("source", type=click.File("r"), default="-")
def validate(source: Any) -> None:
    """Validate the events in SOURCE (JSON array or JSON lines; default stdin) with GA4's debug endpoint."""
    try:
        settings = build_settings(GoogleAnalyticsSettings, validate_only=True)
        events = [Event.parse(raw) for raw in _read(source.read())]
        plugin = GoogleAnalyticsWorker(settings)
    except (EventSinkError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    plugin.open()
    problems: dict[str, str] = {}
    try:
        plugin.deliver([e for e in events if plugin.takes(e)])
    except RejectEvents as exc:
        problems = exc.reasons
    except RetryLater as exc:
        raise click.ClickException(f"the validation server could not be reached: {exc.reason}") from exc
    finally:
        plugin.close()
    for event in events:
        verdict = "not taken (type)" if not plugin.takes(event) else problems.get(event.id, "ok")
        click.echo(f"{event.id}\t{event.type}\t{verdict}")
    if problems:
        raise SystemExit(1)


@click.group()
def main() -> None:
    """Google Analytics 4 worker tools."""


main.add_command(validate)
