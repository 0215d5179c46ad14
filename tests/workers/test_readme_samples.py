"""Every plugin's README carries a sample `.env` that its settings model accepts, variable by variable."""

from __future__ import annotations

import os
import re
from importlib.metadata import entry_points
from pathlib import Path

import pytest

import workers
from sink_lib import SinkSettings

PLUGINS = sorted(entry_points(group="eventsink.workers"), key=lambda ep: ep.name)
SAMPLE = re.compile(r"## Sample configuration\n.*?```dotenv\n(.*?)```", re.S)


def sample_of(readme: Path) -> dict[str, str]:
    found = SAMPLE.search(readme.read_text())
    assert found, f"{readme} has no '## Sample configuration' with a dotenv block"
    lines = [line for line in found.group(1).splitlines() if line.strip() and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


@pytest.mark.parametrize("ep", PLUGINS, ids=[ep.name for ep in PLUGINS])
def test_the_readme_sample_configures_the_plugin(ep, monkeypatch: pytest.MonkeyPatch):
    # Given the plugin's README sample, as the environment
    cls = ep.load()
    readme = Path(workers.__file__ or "").parent / ep.name / "README.md"
    sample = sample_of(readme)
    for key in list(os.environ):
        if key.startswith("EVENTSINK_"):
            monkeypatch.delenv(key)
    for key, value in sample.items():
        monkeypatch.setenv(key, value)
    model = cls.settings_model
    prefix = model.model_config.get("env_prefix", "")
    shared = {f"EVENTSINK_{name.upper()}" for name in SinkSettings.model_fields}
    variables = env_names(model, prefix)
    # Then every variable is either a shared one or a setting of this plugin's model ...
    own = [key for key in sample if key not in shared]
    unknown = [key for key in own if key not in variables]
    assert not unknown, f"{ep.name} README sample names unknown settings: {unknown}"
    # ... and the model loads it (a wrong value would raise, naming the variable)
    settings = model()
    for key in own:
        assert getattr(settings, variables[key]) is not None


def env_names(model, prefix: str) -> dict[str, str]:
    """Environment variable -> field name, aliases included."""
    names = {f"{prefix}{field}".upper(): field for field in model.model_fields}
    for field, info in model.model_fields.items():
        for choice in getattr(info.validation_alias, "choices", []):
            if isinstance(choice, str):
                names[choice.upper()] = field
    return names
