"""Fuzzing the monitor's configuration loader: any file is a config or a MonitorConfigError naming why."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitors.config import load_config
from monitors.errors import MonitorConfigError

VALUES = st.recursive(
    st.one_of(st.integers(), st.floats(allow_nan=False), st.text(max_size=20), st.booleans()),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
KEYS = st.sampled_from(["region", "api_url", "api_key", "interval_s", "timeout_s", "targets", "spool_dir", "x"])


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if value == value and abs(value) != float("inf") else "0"
    if isinstance(value, str):
        return '"' + value.encode("unicode_escape").decode().replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f'"{k}" = {_toml_value(v)}' for k, v in value.items()) + "}"


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=150)
@given(st.one_of(
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    st.dictionaries(KEYS, VALUES, max_size=6).map(lambda d: "\n".join(f"{k} = {_toml_value(v)}" for k, v in d.items())),
))
def test_any_file_is_a_config_or_a_named_error(tmp_path: Path, text: str) -> None:
    # Given any file text (garbage, or TOML with the right keys and arbitrary values)
    path = tmp_path / "monitor.toml"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    # When it is loaded
    try:
        config = load_config(path)
    except MonitorConfigError as exc:
        # Then a refusal says what is wrong
        assert str(exc).strip()
        return
    assert config.region
