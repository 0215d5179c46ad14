"""Configuration: a valid file loads with its defaults; each mistake is named by its key."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from monitors.config import MonitorSettings, load_config
from monitors.errors import MonitorConfigError
from monitors.targets import HttpTarget

EXAMPLE = Path(__file__).resolve().parents[2] / "monitors" / "example.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "monitor.toml"
    path.write_text(text)
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(MonitorConfigError) as caught:
        load_config(write(tmp_path, text))
    return caught.value.problems


def test_example_config_loads_with_defaults() -> None:
    config = load_config(EXAMPLE)
    assert config.region == "us-east"
    assert [t.kind for t in config.targets] == ["http", "http", "ping", "tcp", "nginx_log"]
    assert config.event_source == "/monitor/us-east"
    first = config.targets[0]
    assert isinstance(first, HttpTarget) and first.down_after == 3 and first.method == "GET"


def test_each_bad_key_is_named_by_its_path(tmp_path: Path) -> None:
    found = problems(tmp_path, """
region = "us-east"
api_url = "localhost:8000"
[[targets]]
name = "web"
kind = "http"
url = "ftp://example.org/"
[[targets]]
name = "db"
kind = "tcp"
host = "db.example"
[[targets]]
name = "x"
kind = "smtp"
[[targets]]
name = "web2"
kind = "http"
url = "https://example.org/"
body_pattern = "("
intervl_s = 5
""")
    assert any(p.startswith("api_url: must be an http://") for p in found)
    assert any(p.startswith("targets[0].url: must be an http://") for p in found)
    assert "targets[1].port: required key missing" in found
    assert any(p.startswith("targets[2].kind: 'smtp' is not one of http, ping, tcp, nginx_log") for p in found)
    assert any(p.startswith("targets[3].body_pattern: not a regular expression") for p in found)
    assert "targets[3].intervl_s: unknown key" in found


def test_duplicate_target_names_and_bad_numbers(tmp_path: Path) -> None:
    found = problems(tmp_path, """
region = "eu"
[[targets]]
name = "a"
kind = "ping"
host = "h"
interval_s = 0
[[targets]]
name = "a"
kind = "tcp"
host = "h"
port = 70000
""")
    assert any(p.startswith("targets[0].interval_s: Input should be greater than 0") for p in found)
    assert any(p.startswith("targets[1].port: Input should be less than or equal to 65535") for p in found)


def test_duplicate_names_are_refused(tmp_path: Path) -> None:
    found = problems(tmp_path, 'region = "eu"\n[[targets]]\nname = "a"\nkind = "tcp"\nhost = "h"\nport = 1\n'
                               '[[targets]]\nname = "a"\nkind = "tcp"\nhost = "h"\nport = 2\n')
    assert found == ["targets[1].name: 'a' is already used by targets[0]"]


def test_unreadable_and_invalid_toml(tmp_path: Path) -> None:
    with pytest.raises(MonitorConfigError, match="cannot read the file"):
        load_config(tmp_path / "missing.toml")
    with pytest.raises(MonitorConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "region = \n"))
    assert problems(tmp_path, 'region = "eu"\n') == ["targets: required key missing"]


def test_api_key_from_file_and_environment(tmp_path: Path) -> None:
    (tmp_path / "key.txt").write_text("from-file\n")
    base = 'region = "eu"\napi_key_file = "key.txt"\nspool_dir = "spool"\n' \
           '[[targets]]\nname = "a"\nkind = "tcp"\nhost = "h"\nport = 1\n'
    config = load_config(write(tmp_path, base))
    assert config.key() == "from-file"
    assert config.spool_dir == tmp_path / "spool"  # relative paths resolve against the file's folder
    env = MonitorSettings(api_key=SecretStr("from-env"))
    assert load_config(write(tmp_path, base), env).key() == "from-env"
    (tmp_path / "key.txt").write_text("")
    with pytest.raises(MonitorConfigError, match=r"api_key_file: .* is empty"):
        load_config(write(tmp_path, base))


def test_environment_variable_is_read_by_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTSINK_MONITOR_API_KEY", "secret")
    assert MonitorSettings().api_key is not None
    assert MonitorSettings().api_key.get_secret_value() == "secret"  # type: ignore[union-attr]
