"""``eventsink api`` refuses bad options before starting anything."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from pytest import MonkeyPatch

from sink_lib.cli import main


@pytest.mark.parametrize(("option", "message"), [("timeout", "KEY=VALUE"), ("no_such_setting=1", "unknown")])
def test_bad_gunicorn_options_are_refused(option: str, message: str) -> None:
    result = CliRunner().invoke(main, ["api", "-o", option])
    assert result.exit_code == 2
    assert message in result.output


def test_a_bad_setting_names_its_variable(monkeypatch: MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTSINK_API_RATE_LIMIT", "lots")
    result = CliRunner().invoke(main, ["api"])
    assert result.exit_code == 1
    assert "EVENTSINK_API_RATE_LIMIT" in result.output


def test_api_and_keys_have_help() -> None:
    for args in (["api", "--help"], ["keys", "--help"], ["keys", "create", "--help"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0 and "Usage" in result.output


def test_an_unusable_keys_file_or_limit_storage_stops_the_start(tmp_path: Path, monkeypatch: MonkeyPatch) -> None:
    broken = tmp_path / "keys.json"
    broken.write_text("{oops")
    monkeypatch.setenv("EVENTSINK_API_KEYS_FILE", str(broken))
    result = CliRunner().invoke(main, ["api"])
    assert result.exit_code == 1 and "keys file" in result.output
    broken.unlink()
    monkeypatch.setenv("EVENTSINK_API_RATE_LIMIT_STORAGE_URI", "nosuch://x")
    result = CliRunner().invoke(main, ["api"])
    assert result.exit_code == 1 and "EVENTSINK_API_RATE_LIMIT_STORAGE_URI" in result.output
