"""The plugin of the README ("Write a plugin") is run here as the README runs it, so it stays true."""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

import pytest

from sink_lib.settings import SinkSettings
from tests.support import wait_for
from workers.runtime import build_plugin, load_plugin_class

from .helpers import make_event, publish, running

README = Path(__file__).resolve().parents[2] / "README.md"
SOURCE = re.search(r"cat > myplugins/printer\.py <<'EOF'\n(.*?)\nEOF\n", README.read_text(), re.S)
SPEC = re.search(r"PYTHONPATH=\. eventsink worker run (\S+)", README.read_text())


@pytest.mark.rabbitmq
def test_the_readme_plugin_logs_every_event_it_receives(
    sink_settings: SinkSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Given the README's plugin written where it says, and its folder on the import path (PYTHONPATH=.)
    assert SOURCE and SPEC, "the README no longer shows the plugin and how to run it"
    (tmp_path / "myplugins").mkdir()
    (tmp_path / "myplugins" / "printer.py").write_text(SOURCE.group(1) + "\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "myplugins.printer", raising=False)
    plugin = build_plugin(load_plugin_class(SPEC.group(1)), batch_timeout_s=0.1)
    caplog.set_level(logging.INFO)

    # When an event reaches its queue while it runs
    event = make_event("health.status", service="clowder", state="down")
    publish(sink_settings, plugin.name, [event])
    with running(plugin, sink_settings):
        # Then it logs the event's type, id and data at INFO through its own logger
        record = wait_for(lambda: next((r for r in caplog.records if event["id"] in r.getMessage()), None), 30,
                          what="the event logged")
    assert record.name == "myplugins.printer" and record.levelno == logging.INFO
    assert record.getMessage().startswith(f"health.status {event['id']} ") and "clowder" in record.getMessage()
